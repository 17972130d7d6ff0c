"""The advice tasks as the CLI and the HTTP API run them: one call per task.

Each function gathers what its task needs from the record store (the patient context, the
recent encounters, Task 1's selection) and calls the task in :mod:`ehrqa.cds`, so that
``ehrqa cds …`` and ``POST /v1/…/cds/…`` give the same advice for the same input.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from ehrqa.cds.base import Advice
from ehrqa.cds.narrate import check_mode
from ehrqa.core.config import EhrqaConfig
from ehrqa.meds.context import PatientContext, context_from_store

if TYPE_CHECKING:
    from ehrqa.cds.sources import Library
    from ehrqa.llm.base import ChatModel
    from ehrqa.store.base import RecordStore


def model_factory(cfg: EhrqaConfig) -> Callable[[], ChatModel]:
    """A factory for the configured chat model, so it is loaded only when text is narrated."""

    def load() -> ChatModel:
        from ehrqa.llm import load_chat_model

        return load_chat_model(
            cfg.model,
            n_ctx=cfg.n_ctx,
            n_threads=cfg.n_threads or None,
            adapter=cfg.adapter or None,
            seed=cfg.seed,
            task="cds",
        )

    return load


def patient_context(store: RecordStore, patient_id: str, now: date) -> PatientContext:
    """The context of a stored patient (NotFoundError when the store lacks it)."""
    return context_from_store(store, store.patient(patient_id).id, now)


def run_differential(
    library: Library,
    symptoms: str,
    now: date,
    *,
    store: RecordStore | None = None,
    patient_id: str | None = None,
    model: ChatModel | Callable[[], ChatModel] | None = None,
    mode: str = "extractive",
) -> Advice:
    """A differential for ``symptoms``, weighed against the patient's record when given."""
    from ehrqa.cds.differential import differential

    context = None
    if store is not None and patient_id is not None:
        context = patient_context(store, patient_id, now)
    return differential(library, context, symptoms, model=model, mode=check_mode(mode))


def run_treat(
    library: Library,
    store: RecordStore,
    patient_id: str,
    condition: str,
    now: date,
    *,
    model: ChatModel | Callable[[], ChatModel] | None = None,
    mode: str = "extractive",
) -> Advice:
    """Treatment options for ``condition`` from the protocol, checked against the record."""
    from ehrqa.cds.treat import treat

    context = patient_context(store, patient_id, now)
    return treat(library, context, condition, model=model, mode=check_mode(mode))


def run_summarize_patient(
    store: RecordStore,
    patient_id: str,
    now: date,
    *,
    model: ChatModel | Callable[[], ChatModel] | None = None,
    mode: str = "extractive",
) -> Advice:
    """A cited summary of the patient's record, with the latest vital signs (however old)
    and the recent encounters."""
    from ehrqa.cds.summarize import latest_vitals, recent_encounters, summarize_patient

    context = patient_context(store, patient_id, now)
    recent = recent_encounters(store, context.patient_id, now)
    vitals = latest_vitals(store, context.patient_id, now)
    return summarize_patient(
        context, model=model, mode=check_mode(mode), recent=recent, vitals=vitals
    )


def run_ask(
    library: Library,
    question: str,
    now: date,
    *,
    store: RecordStore | None = None,
    patient_id: str | None = None,
    selector: str = "default",
    model: ChatModel | Callable[[], ChatModel] | None = None,
    mode: str = "extractive",
) -> Advice:
    """A free question over the documents, and over the patient's selected records when
    a store and a patient are given.

    The records are selected by the rule-based ``default`` selector, not the product's
    ``auto``: the reranker judges whether a record *answers* a records question, and it
    drops what is context for a guideline question (the patient's metformin prescription
    for "At what eGFR should metformin be stopped?").
    """
    from ehrqa.cds.ask import ask
    from ehrqa.select.base import get_selector

    selection, found_id = None, None
    if store is not None and patient_id is not None:
        found_id = store.patient(patient_id).id
        selection = get_selector(selector).select(store, found_id, question, now)
    return ask(
        library,
        question,
        selection=selection,
        patient_id=found_id,
        model=model,
        mode=check_mode(mode),
    )
