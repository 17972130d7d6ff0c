"""``ehrqa cds …``: decision-support commands, thin shells over :mod:`ehrqa.cds`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ehrqa.cds.base import Advice
from ehrqa.cds.narrate import check_mode
from ehrqa.cds.tasks import (
    model_factory,
    run_ask,
    run_differential,
    run_summarize_patient,
    run_treat,
)
from ehrqa.cli.support import (
    ADAPTER_HELP,
    err,
    open_store,
    out,
    parse_day,
    print_json,
    print_sources,
    state,
)
from ehrqa.core.config import EhrqaConfig
from ehrqa.core.errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from ehrqa.docs import DocumentLibrary
    from ehrqa.store.base import RecordStore

cds_app = typer.Typer(
    help="Clinical decision support grounded in the hospital's documents and the record.",
    no_args_is_help=True,
)
MAX_SOURCES_SHOWN = 12

Patient = Annotated[str | None, typer.Option("--patient", "-p", help="Patient resource id.")]
Now = Annotated[str | None, typer.Option(help="Date taken as today (YYYY-MM-DD).")]
Model = Annotated[
    str | None, typer.Option(help="smollm2 | gemma3-270m | PATH.gguf | hf:DIR | URL#name")
]
Adapter = Annotated[str | None, typer.Option(help=ADAPTER_HELP)]
Mode = Annotated[
    str | None,
    typer.Option(
        "--answer-mode",
        help="extractive (the default: the sources' text, no model) | hybrid (a model's "
        "wording only when it checks out) | model",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


@contextmanager
def _resources(
    cfg: EhrqaConfig, need_store: bool
) -> Iterator[tuple[RecordStore | None, DocumentLibrary]]:
    """The record store (when needed) and the document library, closed afterwards."""
    from ehrqa.docs import open_library

    library = open_library(cfg.home, embedder=cfg.embedder)
    store = open_store(cfg) if need_store else None
    try:
        if len(library) == 0:
            raise NotFoundError(
                f"the document library in {cfg.home} is empty: add the hospital's documents "
                "with `ehrqa docs add PATH…` (or run `ehrqa demo` for the demo corpus)"
            )
        yield store, library
    finally:
        library.close()
        if store is not None:
            store.close()


def _config(
    ctx: typer.Context, model: str | None, adapter: str | None, mode: str | None
) -> EhrqaConfig:
    cfg = state(ctx).config(model=model, adapter=adapter, answer_mode=mode)
    check_mode(cfg.answer_mode)
    return cfg


@cds_app.command()
def differential(
    ctx: typer.Context,
    symptoms: Annotated[str, typer.Option(help='Symptoms, e.g. "fever, flank pain, dysuria".')],
    patient: Patient = None,
    now: Now = None,
    model: Model = None,
    adapter: Adapter = None,
    answer_mode: Mode = None,
    json_out: Json = False,
) -> None:
    """A ranked differential diagnosis with the evidence for and against each item."""
    cfg = _config(ctx, model, adapter, answer_mode)
    day = parse_day(now) or date.today()
    with _resources(cfg, patient is not None) as (store, library):
        advice = run_differential(
            library,
            symptoms,
            day,
            store=store,
            patient_id=patient,
            model=model_factory(cfg),
            mode=cfg.answer_mode,
        )
    _show(advice, json_out)


@cds_app.command()
def treat(
    ctx: typer.Context,
    condition: Annotated[str, typer.Option(help='The condition, e.g. "type 2 diabetes".')],
    patient: Annotated[str, typer.Option("--patient", "-p", help="Patient resource id.")],
    now: Now = None,
    model: Model = None,
    adapter: Adapter = None,
    answer_mode: Mode = None,
    json_out: Json = False,
) -> None:
    """Treatment options from the local protocol, checked against the patient's record."""
    cfg = _config(ctx, model, adapter, answer_mode)
    day = parse_day(now) or date.today()
    with _resources(cfg, True) as (store, library):
        assert store is not None  # need_store was True
        advice = run_treat(
            library, store, patient, condition, day, model=model_factory(cfg), mode=cfg.answer_mode
        )
    _show(advice, json_out)


@cds_app.command()
def summarize(
    ctx: typer.Context,
    patient: Patient = None,
    report: Annotated[
        str | None, typer.Option(help="A DiagnosticReport, e.g. DiagnosticReport/abc.")
    ] = None,
    file: Annotated[Path | None, typer.Option(help="A note or report as a text file.")] = None,
    now: Now = None,
    model: Model = None,
    adapter: Adapter = None,
    answer_mode: Mode = None,
    json_out: Json = False,
) -> None:
    """A concise summary of a record, a report or a note; every statement cited."""
    from ehrqa.cds.summarize import summarize_report, summarize_text

    if sum(x is not None for x in (patient, report, file)) != 1:
        raise ConfigError("give exactly one of --patient, --report and --file")
    cfg = _config(ctx, model, adapter, answer_mode)
    day = parse_day(now) or date.today()
    chat, mode = model_factory(cfg), cfg.answer_mode
    if file is not None:
        if not file.is_file():
            raise NotFoundError(f"no file {file}")
        text = file.read_text(encoding="utf-8", errors="replace")
        advice = summarize_text(text, file.name, model=chat, mode=mode)
    else:
        store = open_store(cfg)
        try:
            if report is not None:
                advice = summarize_report(store, report, day, model=chat, mode=mode)
            else:
                advice = run_summarize_patient(store, str(patient), day, model=chat, mode=mode)
        finally:
            store.close()
    _show(advice, json_out)


@cds_app.command()
def ask(
    ctx: typer.Context,
    question: Annotated[str, typer.Argument(help="The question, in plain language.")],
    patient: Patient = None,
    now: Now = None,
    model: Model = None,
    adapter: Adapter = None,
    answer_mode: Mode = None,
    json_out: Json = False,
) -> None:
    """A free question over the hospital's documents (and the patient's record)."""
    cfg = _config(ctx, model, adapter, answer_mode)
    day = parse_day(now) or date.today()
    with _resources(cfg, patient is not None) as (store, library):
        advice = run_ask(
            library,
            question,
            day,
            store=store,
            patient_id=patient,
            model=model_factory(cfg),
            mode=cfg.answer_mode,
        )
    _show(advice, json_out)


def _show(advice: Advice, json_out: bool) -> None:
    if json_out:
        print_json(advice.to_dict())
        return
    print_advice(advice)


def print_advice(advice: Advice) -> None:
    """The advice as a reader sees it: text, sources, and the notice."""
    out.print(advice.text, markup=False)
    if advice.fallback_reason and advice.source != "model":
        err.print(
            f"(model text not shown: {advice.fallback_reason}; showing the sources' text)",
            markup=False,
        )
    elif advice.fallback_reason:
        err.print(f"warning: the model's text failed a check: {advice.fallback_reason}")
    lines = [f"[{source.ref}] {source.title}" for source in advice.sources.values()]
    print_sources(lines, MAX_SOURCES_SHOWN)
    out.print(f"\n{advice.notice}", style="dim", markup=False)
