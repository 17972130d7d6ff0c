"""Task 1 with a fine-tuned cross-encoder re-scoring the default selector's candidates.

1. The default selector runs as usual (question analysis, candidates, intent-aware cut-off).
2. The top ``depth`` candidates of its ranking are scored by the cross-encoder
   (:mod:`ehrqa.lab.train.reranker`), as probabilities of relevance.
3. A cut-off mode decides what is kept:

   - ``filter``: the default's selection, minus items scored below ``threshold``
     (``threshold=0`` is the default selector itself). Keeps the intent-aware semantics
     ("newest match", "active only") that a pointwise scorer cannot see.
   - ``union``: the default's selection plus every candidate scored at least ``threshold``.
   - ``threshold``: only the candidates scored at least ``threshold``.

   Whatever the mode, questions for the newest/oldest N records, about drug classes or
   panels, and counts and trends keep the default's choice, unscored (:func:`keeps_default`).

The mode and threshold are tuned on the val split for micro-F1 by :func:`tune_cutoff`
(``train_t1`` does it) and stored in the model's ``ehrqa_config.json``; arguments override.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from ehrqa.core.errors import BackendUnavailableError, ConfigError, NotFoundError
from ehrqa.fhir.record import Record
from ehrqa.knowledge.scanner import fold
from ehrqa.llm.reranker import (
    CONFIG_FILE,
    check_onnx_reranker,
    load_onnx_reranker,
    pair_document,
    pair_query,
    prepare_onnx_reranker,
    read_reranker_config,
    score_pairs,
)
from ehrqa.select.base import Selected, Selection, kind_listing

# Private helpers of the default strategy, reused so an empty or report-holding selection
# behaves exactly as the default's. A public hook in default.py would be cleaner.
from ehrqa.select.default import (
    LINK_REASONS,
    NEAREST_SHOWN,
    DefaultSelector,
    empty_reason,
    with_report_results,
)
from ehrqa.select.lexicon import words
from ehrqa.select.query import DUE_RE, QueryPlan, asks_yes_no
from ehrqa.select.semantic import LazyConceptMatcher
from ehrqa.store.base import RecordStore
from ehrqa.text.names import plain_name

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

    from ehrqa.core.config import EhrqaConfig
    from ehrqa.llm.onnx_encoder import PairScorer

MODES = ("filter", "union", "threshold")
MODEL_ENV = "EHRQA_RERANKER"


@dataclass
class Scored:
    """The default selector's outcome and the cross-encoder's scores of its top candidates."""

    selection: Selection
    records: list[Record]
    scores: dict[str, float]


def packaged_model_path() -> Path | None:
    """The reranker shipped with ehrqa (a LoRA adapter on the packaged MiniLM), if any."""
    folder = Path(__file__).resolve().parents[1] / "models" / "reranker"
    return folder if (folder / CONFIG_FILE).is_file() else None


def default_model_path(home: str | Path | None = None) -> str:
    """``$EHRQA_RERANKER``; else ``<home>/models/reranker`` when a model was trained there
    (``home``: the configured data directory, else the default one); else the packaged
    model; else that home path (whose absence the loader reports with how to train one)."""
    if os.environ.get(MODEL_ENV):
        return os.environ[MODEL_ENV]
    trained = _home(home) / "models" / "reranker"
    packaged = packaged_model_path()
    if (trained / CONFIG_FILE).is_file() or packaged is None:
        return str(trained)
    return str(packaged)


def _home(home: str | Path | None) -> Path:
    """The data directory the models are kept in: ``home`` as configured, else the default."""
    from ehrqa.core.config import default_home

    return Path(home) if home else default_home()


class RerankSelector:
    """The default selector's candidates re-scored by a fine-tuned MiniLM cross-encoder."""

    name = "rerank"

    def __init__(
        self,
        model_path: str | None = None,
        *,
        depth: int = 50,
        mode: str | None = None,
        threshold: float | None = None,
        cross_encoder: CrossEncoder | PairScorer | None = None,
        home: str | Path | None = None,
    ) -> None:
        self.home = _home(home)
        self.model_path = model_path or default_model_path(self.home)
        tuned = read_reranker_config(self.model_path).selector
        self.mode = mode or (tuned.mode if tuned else "filter")
        default_threshold = tuned.threshold if tuned else 0.5
        self.threshold = default_threshold if threshold is None else threshold
        if self.mode not in MODES:
            raise ConfigError(f"rerank mode {self.mode!r} is unknown: use one of {MODES}")
        if depth < 1:
            raise ConfigError(f"depth must be at least 1, got {depth}")
        self.depth = depth
        # Not named `model`: the harness hands its chat model to selectors with that parameter.
        self._cross_encoder = cross_encoder
        if cross_encoder is None:
            # Checked now (so AutoSelector can fall back), loaded on the first question the
            # rules leave to it: most questions are decided by the rules and never need it.
            _check_loadable(self.model_path)
        self._default = DefaultSelector(matcher=shared_matcher(str(self.home)))

    def warm(self) -> None:
        """Load the cross-encoder and the semantic matcher now, not on a first question
        (the service does this at start, so no reader waits on a model load)."""
        _ = self.cross_encoder
        shared_matcher(str(self.home)).warm()

    @classmethod
    def from_config(cls, config: EhrqaConfig) -> RerankSelector:
        """The selector for ``config``: its models and caches in ``config.home``."""
        return cls(home=config.home or None)

    @property
    def cross_encoder(self) -> CrossEncoder | PairScorer:
        """The cross-encoder, loaded on first use (once per process, see :func:`_load_once`)."""
        if self._cross_encoder is None:
            self._cross_encoder = _load_once(self.model_path)
        return self._cross_encoder

    def score(
        self,
        store: RecordStore,
        patient_id: str,
        question: str,
        now: date,
        *,
        chosen_only: bool = False,
    ) -> Scored:
        """Run the default selector and score its top ``depth`` candidates (with
        ``chosen_only``, only those of them the rules chose: all that ``filter`` mode reads)."""
        selection = self._default.select(store, patient_id, question, now)
        if rules_decide(selection):
            return Scored(selection, [], {})  # the rules decide: nothing to score
        ranked = list(selection.details.get("ranked") or selection.refs)[: self.depth]
        if chosen_only:
            chosen = set(selection.refs)
            ranked = [ref for ref in ranked if ref in chosen]
        records = store.get_many(ranked)
        # The question as the rules read it (the patient's own name said as "the patient").
        query = pair_query(selection.plan.question, now.isoformat())
        probs = score_pairs(self.cross_encoder, [(query, pair_document(r)) for r in records])
        return Scored(selection, records, {r.ref: p for r, p in zip(records, probs, strict=True)})

    def select(self, store: RecordStore, patient_id: str, question: str, now: date) -> Selection:
        """Select the patient's resources that answer ``question`` as of ``now``."""
        # "filter" keeps or drops the rules' own choices: scoring the other candidates would
        # change nothing it selects (it orders the ranking's head only), so they are skipped.
        only = self.mode == "filter"
        scored = self.score(store, patient_id, question, now, chosen_only=only)
        return apply_cutoff(store, patient_id, scored, self.mode, self.threshold)


@functools.cache
def shared_matcher(home: str | None = None) -> LazyConceptMatcher:
    """The process's semantic matcher for a data directory (MiniLM on ONNX Runtime from the
    shared model cache, display vectors cached in ``<home>/cache/semantic``)."""
    from ehrqa.core.config import shared_model_home

    cache = _home(home) / "cache" / "semantic"
    return LazyConceptMatcher("minilm", cache, home=shared_model_home())


def _check_loadable(path: str) -> None:
    """Raise what loading the reranker at ``path`` would, without loading it."""
    from ehrqa.core.config import shared_model_home

    check_onnx_reranker(path, shared_model_home())


def _load_once(path: str) -> PairScorer:
    """The cross-encoder at ``path`` run by ONNX Runtime (no torch), loaded once per process
    (and again after retraining). Its ONNX form is prepared on first use where torch is
    installed; elsewhere a missing one is a :class:`BackendUnavailableError` naming
    ``ehrqa models prepare``, on which :class:`AutoSelector` falls back to the rules."""
    from ehrqa.core.config import shared_model_home

    config = Path(path) / CONFIG_FILE
    stamp = config.stat().st_mtime_ns if config.is_file() else 0
    with _LOADING:  # concurrent first questions (the service) load and export it once
        return _cached_reranker(str(Path(path).resolve()), stamp, str(shared_model_home()))


_LOADING = threading.Lock()


@functools.lru_cache(maxsize=4)
def _cached_reranker(path: str, stamp: int, home: str) -> PairScorer:
    read_reranker_config(path)  # a folder that is no reranker says how to train one
    return load_onnx_reranker(path, home)


class AutoSelector:
    """The product's Task 1 default: the fine-tuned reranker when one is available (see
    :func:`default_model_path`) and its libraries are installed, else the rule-based
    ``default`` selector. ``name`` says which one runs; the fallback is logged once."""

    name = "auto"

    def __init__(self, home: str | Path | None = None) -> None:
        try:
            self.inner: RerankSelector | DefaultSelector = RerankSelector(home=home)
            self.fallback_reason: str | None = None
        except (NotFoundError, BackendUnavailableError) as exc:
            self.inner = DefaultSelector()
            self.fallback_reason = str(exc)
            _warn_once(f"the reranker is not available ({exc}); selecting with the rules alone")
        self.name = self.inner.name

    def warm(self) -> None:
        """Load the reranker's models now (see :meth:`RerankSelector.warm`)."""
        if isinstance(self.inner, RerankSelector):
            self.inner.warm()

    @classmethod
    def from_config(cls, config: EhrqaConfig) -> AutoSelector:
        """The selector for ``config``: the reranker and caches of ``config.home``."""
        return cls(home=config.home or None)

    def select(self, store: RecordStore, patient_id: str, question: str, now: date) -> Selection:
        """Select the patient's resources that answer ``question`` as of ``now``."""
        return self.inner.select(store, patient_id, question, now)


@functools.lru_cache(maxsize=8)
def _warn_once(message: str) -> None:
    logging.getLogger(__name__).warning(message)


def apply_cutoff(
    store: RecordStore, patient_id: str, scored: Scored, mode: str, threshold: float
) -> Selection:
    """The selection that ``mode`` and ``threshold`` keep (a pure choice over ``scored``).

    Two kinds of question keep the default's choice (:func:`keeps_default`).
    """
    base = scored.selection
    scores = scored.scores
    if rules_decide(base):
        rules = {"mode": "rules", "threshold": None, "scored": 0}
        return dataclasses.replace(base, details={**base.details, "rerank": rules})
    if _whole_kind(base, yes_no=False) and not any(
        scores.get(s.record.ref, 0.0) >= threshold for s in base.items
    ):
        # "Which conditions has she had with her spleen?": the rules found the kind, the
        # reranker none of it about the other words. Keeping its best guess answered "Found:
        # Acute viral pharyngitis"; the whole kind stays, said to match nothing.
        details = {**base.details, "unmatched_words": True}
        return dataclasses.replace(base, details=details)
    if mode == "threshold":
        kept: list[Selected] = []
    else:
        # Items the model did not score (beyond depth, report results) keep the default's say.
        kept = [
            s
            for s in base.items
            if scores.get(s.record.ref, 1.0) >= threshold
            or any(r.startswith(LINK_REASONS) for r in s.reasons)
            or _coded_answer_to_yes_no(s, base.plan)
        ]
    kept += _sole_matches(base, kept, scores)
    kept += _named_whole(base, kept)
    kept += _same_facts(base, kept)
    kept += _same_reading(base, kept)
    kept += _visit_anchors(base, kept)
    if mode in ("union", "threshold"):
        chosen = {s.record.ref for s in kept}
        extra = [
            Selected(r, scores[r.ref], ("reranker",))
            for r in scored.records
            if scores[r.ref] >= threshold and r.ref not in chosen
        ]
        kept = with_report_results(store, kept + extra)
    items = [
        Selected(s.record, scores.get(s.record.ref, s.score), _reasons(s, scores)) for s in kept
    ]
    items.sort(key=lambda s: -s.score)
    selection = Selection(base.plan, items, candidates=base.candidates, nearby=base.nearby)
    reranked = sorted(scores, key=lambda ref: -scores[ref])
    rest = [ref for ref in base.details.get("ranked", []) if ref not in scores]
    selection.details = {
        **base.details,
        "ranked": reranked + rest,
        "rerank": {"mode": mode, "threshold": threshold, "scored": len(scores)},
    }
    if not items and base.items:
        # The rules found records only by shared words and the reranker kept none: never
        # "does not contain information" ("hx hip fx?" over a closed fracture of the hip).
        # What was searched is said, and the best-scored of those records shown beside it.
        best = sorted(base.items, key=lambda s: -scores.get(s.record.ref, 0.0))
        selection.nearby = [*best[:NEAREST_SHOWN], *base.nearby][:NEAREST_SHOWN]
        searched = " ".join(base.plan.keywords) or base.plan.question.strip(" ?")
        selection.empty_reason = f'I could not match "{searched}" to a record with confidence.'
    elif not items:
        selection.empty_reason, selection.negative = base.empty_reason, base.negative
        if selection.empty_reason is None:
            types = base.plan.target_types
            selection.empty_reason, selection.negative = empty_reason(
                store, patient_id, base.plan, types
            )
    return selection


def _sole_matches(
    base: Selection, kept: Sequence[Selected], scores: dict[str, float]
) -> list[Selected]:
    """The rules' items the cut-off would leave a recognised concept (or the question) without.

    The reranker may reorder or trim, never empty what a recognised concept found: when
    every item the rules chose for a concept of the question is scored below the cut-off,
    that concept's best-scored item stays, and so does the best record of an asked-for kind
    (the Patient record for "how old was she when she died?"). An emptied selection would
    read as "No: the record has no …" for something the record holds. Items found only by
    shared words (BM25) are the reranker's to drop: "What color are my eyes?" is not about
    "Color of Urine".
    """
    kept_refs = {s.record.ref for s in kept}
    groups: dict[str, list[Selected]] = {}
    for item in base.items:
        for concept in base.plan.concepts:
            if any(reason.startswith(f"{concept.name}: ") for reason in item.reasons):
                groups.setdefault(concept.name, []).append(item)
    # Records of an asked-for kind (the Patient for "how old was she", visits of a class)
    # count as found by a path; records that only share words with the question do not.
    grouped = {item.record.ref for members in groups.values() for item in members}
    structured = [i for i in base.items if i.record.ref not in grouped and not _lexical(i)]
    if structured:
        groups[""] = structured
    rescued: list[Selected] = []
    for members in groups.values():
        if any(m.record.ref in kept_refs for m in members):
            continue
        best = max(members, key=lambda m: scores.get(m.record.ref, m.score))
        # The reranker found none of them relevant, so it prefers none of that day: its
        # records of the concept stay together (the PHQ-9 beside the PHQ-2 of a check-up).
        day = best.record.day
        for member in [m for m in members if m.record.day == day] if day else [best]:
            if member.record.ref not in kept_refs:
                kept_refs.add(member.record.ref)
                rescued.append(member)
    return rescued


def _named_whole(base: Selection, kept: Sequence[Selected]) -> list[Selected]:
    """With nothing else kept, the rules' items whose name holds every word the question
    searched: "what else happened the day of the episiotomy?" over a procedure named
    "Episiotomy", which the reranker scored below the cut-off. Words shared in part are
    still the reranker's to judge ("What color are my eyes?" is not "Color of Urine")."""
    asked = {fold(w) for w in base.plan.keywords}
    if kept or not asked:
        return []
    return [
        item
        for item in base.items
        if asked <= {fold(w) for w in words(plain_name(item.record.display))}
    ]


def _same_facts(base: Selection, kept: Sequence[Selected]) -> list[Selected]:
    """The rules' items that state a kept item's fact on another day (the same code): the
    reranker judges whether a fact is relevant, and a second zoster dose is as relevant as
    the first."""
    kept_refs = {s.record.ref for s in kept}
    codes = {(c.system, c.code) for s in kept for c in s.record.codes[:1]}
    return [
        item
        for item in base.items
        if item.record.ref not in kept_refs
        and any((c.system, c.code) in codes for c in item.record.codes[:1])
    ]


def _same_reading(base: Selection, kept: Sequence[Selected]) -> list[Selected]:
    """The rules' items that are one reading with a kept item: a panel and its parts recorded
    apart on its day (a blood pressure's systolic and diastolic beside the panel): "what's
    her blood pressure been like lately?" kept the systolic alone."""
    kept_refs = {s.record.ref for s in kept}
    # (part code, day) -> the panels of that day that hold the part
    parts = {
        (c.code, i.record.day): i.record.ref
        for i in base.items
        for c in i.record.components
        if c.code is not None
    }

    def reading(item: Selected) -> set[str]:
        """The panels this item is one reading with (itself when it is one)."""
        own = {parts[(c.code, item.record.day)] for c in item.record.codes[:1]
               if (c.code, item.record.day) in parts}  # fmt: skip
        if item.record.components:
            own.add(item.record.ref)
        return own

    read = {panel for s in kept for panel in reading(s)}
    return [
        item for item in base.items if item.record.ref not in kept_refs and reading(item) & read
    ]


def _visit_anchors(base: Selection, kept: Sequence[Selected]) -> list[Selected]:
    """The records whose visit a kept item was brought in from ("same visit as X"): the
    findings of a visit are read against it, so it stays when they do."""
    kept_refs = {s.record.ref for s in kept}
    anchors = {
        reason.removeprefix("same visit as ")
        for s in kept
        for reason in s.reasons
        if reason.startswith("same visit as ")
    }
    return [i for i in base.items if i.record.ref in anchors and i.record.ref not in kept_refs]


def _coded_answer_to_yes_no(item: Selected, plan: QueryPlan) -> bool:
    """Whether the item answers a "have I ever" question by a code or a display term of its
    concept: every fracture the code list names answers "Have I ever broken a bone?", and
    "History of single seizure" answers "did the baby have fits?", whatever its score."""
    names = {c.name for c in plan.concepts}
    # "I lost a pregnancy last year, is that in my chart?" is a list asked yes or no.
    yes_no = plan.intent == "exists" or (plan.intent == "list" and asks_yes_no(plan.question))
    return yes_no and any(
        (": code " in r and r.split(": code ", 1)[0] in names)
        or (": term " in r and r.split(": term ", 1)[0] in names)
        for r in item.reasons
    )


def _lexical(item: Selected) -> bool:
    """Whether only shared words (BM25) brought the item in."""
    return all(r.startswith(("lexical", "reranker", "status ", "category ")) for r in item.reasons)


def rules_decide(selection: Selection) -> bool:
    """Whether the rules' selection stands unscored: :func:`keeps_default` for its plan, a
    question of several parts (each part the rules' choice), a disease's risk factors or
    whether a condition turned into another (knowledge the cross-encoder never saw),
    readings at the time of an event (a comparison of dates, which a pointwise scorer
    cannot make), visits chosen by what
    their own records name ("what did they do for my ankle at the ER?"), or visits of a
    class asked alone."""
    return (
        keeps_default(selection.plan)
        or bool(selection.facets)
        or "risk" in selection.details
        or "progression" in selection.details
        or "anchor" in selection.details
        or "visits_about" in selection.details
        or _whole_kind(selection)
        or _class_listing(selection)
    )


def _class_listing(selection: Selection) -> bool:
    """Visits of one class asked with no other subject ("has she ever been in the hospital
    overnight?"): every visit of that class answers it alike, and one trimmed is a wrong
    count ("Yes, 2" over three hospital stays, the reranker having kept the two stays of one
    code)."""
    plan = selection.plan
    return (
        not plan.concepts
        and not plan.keywords
        and bool(selection.items)
        and all(
            any(r.startswith("encounter class ") for r in item.reasons) for item in selection.items
        )
    )


def _whole_kind(selection: Selection, *, yes_no: bool = True) -> bool:
    """:func:`~ehrqa.select.base.kind_listing` of records the rules did not cut to the
    newest: a list cut to the latest ("who was paying at the end") stays the reranker's to
    trim, as it was when the rule was measured."""
    return kind_listing(selection, yes_no=yes_no) and not any(
        "newest match" in s.reasons for s in selection.items
    )


def keeps_default(plan: QueryPlan) -> bool:
    """Whether the reranker leaves the default's selection for ``plan`` as it is.

    - Questions for the newest or oldest N records (a ``limit``): which record is the latest
      is a comparison across records, which a pointwise scorer cannot make, and dropping
      that one record leaves the question unanswered.
    - Questions about a drug class ("am I on an antihypertensive?"): the lexicon's member
      list is pharmacology the cross-encoder was never taught; on the val split it dropped
      3 members, all of them gold, and no other item of such questions.
    - Panels ("my most recent CBC"), for the same reason: which tests a panel holds is
      lexicon knowledge; on unseen patients the reranker dropped CBC members.
    - Counts and trends ("how many flu shots since 2010?", "how has my weight changed?"):
      the answer is every record the filters keep, so dropping one makes the count or the
      series wrong, and a pointwise score has nothing to add.
    - Lists of everything current of a kind ("active med list at time of death", "what
      are my current problems?"), for the same reason: on a fresh dev split (val2) the
      reranker dropped 3 of 7 active medicines; and lists of a whole kind with no other
      word ("list my diagnoses": it kept 1 of 9 conditions).
    - Whether shots are due ("is my son up to date on his shots?"): the schedule is read
      against every dose; one dropped dose reads as a missed one.

    The last two were found on a development set of unseen patients
    (``benchmarks/heldout_benchmark.sh`` with seeds 5000/11), not on the test split.
    """
    return (
        plan.limit is not None
        or plan.intent in ("count", "trend")
        or (plan.intent == "list_active" and not plan.concepts)
        or (plan.intent == "list" and not plan.concepts and not plan.keywords)
        or bool(DUE_RE.search(plan.question))
        or any(c.kind in ("drug_class", "panel") for c in plan.concepts)
    )


def _reasons(item: Selected, scores: dict[str, float]) -> tuple[str, ...]:
    if item.record.ref not in scores:
        return item.reasons
    return (*item.reasons, f"reranker {scores[item.record.ref]:.3f}")


def prepare_onnx_models(
    home: str | Path, reranker: str | Path | None = None, *, cache: str | Path | None = None
) -> list[Path]:
    """Export the reranker (``reranker``, else the one ``ehrqa --home HOME ask`` would use:
    trained in ``home``, else the packaged one) and the MiniLM embedder of the semantic
    matcher to ONNX, so that questions are answered without torch. Packaged weights go to
    ``cache`` (default: the shared model cache). Returns the prepared folders; already
    prepared ones are kept."""
    from ehrqa.core.config import shared_model_home
    from ehrqa.llm.onnx_export import ensure_minilm_onnx

    path = Path(reranker or default_model_path(home))
    cache = cache or shared_model_home()
    # A reranker named on the command line must be one (its loader says what is wrong); the
    # default may be absent (no packaged model and none trained): then only MiniLM is made.
    exists = reranker is not None or (path / CONFIG_FILE).is_file()
    folders = [prepare_onnx_reranker(path, cache)] if exists else []
    return [*folders, ensure_minilm_onnx(cache)]
