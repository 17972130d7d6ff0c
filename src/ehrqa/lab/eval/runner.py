"""The benchmark harness: run a QA dataset through selectors and the answerer, keep everything.

For each selector named in the config, every question is asked through
:class:`~ehrqa.qa.QASystem` (or, with ``answer_mode="none"``, only selected), and the
per-question outcome is kept as a :class:`QuestionResult`. Scoring and reporting live in
:mod:`ehrqa.lab.eval.scoring` and :mod:`ehrqa.lab.eval.report`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ehrqa.answer.answerer import ANSWER_MODES
from ehrqa.core.config import EhrqaConfig
from ehrqa.core.errors import ConfigError, NotFoundError
from ehrqa.ingest.files import IngestReport, ingest_paths
from ehrqa.lab.data.qa import QAItem, dataset_hash, read_dataset
from ehrqa.lab.eval.provenance import git_commit
from ehrqa.llm import load_chat_model
from ehrqa.llm.base import ChatModel
from ehrqa.qa import QASystem
from ehrqa.select.base import SELECTORS, Selection, Selector, get_selector
from ehrqa.select.followup import remembered, resolve_followup
from ehrqa.store.base import RecordStore


@dataclass
class EvalConfig:
    """What to evaluate and how. Stored, resolved, in every report."""

    dataset: str = field(metadata={"help": "QA dataset (JSONL)"})
    bundles: tuple[str, ...] = field(default=(), metadata={"help": "patients' FHIR files"})
    selectors: tuple[str, ...] = field(default=("default",), metadata={"help": "Task 1 strategies"})
    model: str = field(default="smollm2", metadata={"help": "chat model spec"})
    adapter: str = field(
        default="auto",
        metadata={"help": "LoRA adapter: auto (packaged) | none | PATH (ehrqa train output)"},
    )
    answer_mode: str = field(
        default="extractive", metadata={"help": "extractive|hybrid|model|none"}
    )
    split: str | None = field(default=None, metadata={"help": "only this split (train/val/test)"})
    limit: int | None = field(default=None, metadata={"help": "seeded sample of N questions"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})
    n_ctx: int = field(default=4096, metadata={"help": "model context window"})
    ks: tuple[int, ...] = field(default=(5, 10, 20, 50), metadata={"help": "k for recall@k"})

    def __post_init__(self) -> None:
        if self.answer_mode not in (*ANSWER_MODES, "none"):
            raise ConfigError(
                f"answer mode {self.answer_mode!r} is unknown: use one of "
                f"{', '.join((*ANSWER_MODES, 'none'))}"
            )
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be at least 1, got {self.limit}")
        if not self.selectors:
            raise ConfigError("name at least one selector")
        for name in self.selectors:
            SELECTORS.get(name)  # unknown names fail now, with "did you mean"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


@dataclass
class QuestionResult:
    """One question through one selector: what was chosen, said and spent."""

    id: str
    selector: str
    patient_id: str
    question: str
    intent: str
    perspective: str
    answerable: bool
    tags: list[str]
    gold_ids: list[str]
    reference: str
    answer_values: list[str]
    selected: list[dict[str, Any]]
    ranked: list[str]
    answer: str | None = None
    citations: list[str] = field(default_factory=list)
    verified: bool | None = None
    source: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def selected_ids(self) -> list[str]:
        """References of the selected resources, best first."""
        return [s["ref"] for s in self.selected]

    @property
    def abstained(self) -> bool:
        """Whether the system declined to answer (nothing was selected)."""
        return self.source == "abstain"


@dataclass
class EvalRun:
    """Everything one evaluation produced, before scoring."""

    config: EvalConfig
    items: list[QAItem]
    results: dict[str, list[QuestionResult]]
    dataset_sha256: str
    dataset_size: int
    ingest: dict[str, Any]
    seconds: float
    model_name: str | None = None
    # Taken when the run starts: the code that produced the numbers, not the code at the end.
    git_commit: str = "unknown"


def select_items(items: Sequence[QAItem], config: EvalConfig) -> list[QAItem]:
    """The questions of the requested split, then a seeded sample of ``limit`` of them."""
    chosen = [i for i in items if config.split is None or i.split == config.split]
    if not chosen:
        raise NotFoundError(f"the dataset has no questions in split {config.split!r}")
    if config.limit is not None and config.limit < len(chosen):
        chosen = random.Random(config.seed).sample(chosen, config.limit)
    return sorted(chosen, key=lambda i: i.id)


def ensure_patients(
    store: RecordStore, items: Sequence[QAItem], bundles: Sequence[str], dataset: Path
) -> IngestReport | None:
    """Ingest the bundles and the dataset's ``injections.json``; check every patient is there.

    Ingestion is idempotent, so a reused store costs one unchanged pass.
    """
    paths = list(bundles)
    injections = dataset.parent / "injections.json"
    if injections.is_file():
        paths.append(str(injections))
    report = ingest_paths(store, paths) if paths else None
    missing = sorted({i.patient_id for i in items} - {p.id for p in store.patients()})
    if missing:
        raise NotFoundError(
            f"{len(missing)} patients of the dataset are not in the store (e.g. {missing[0]}): "
            "pass --bundles with their FHIR files"
        )
    return report


def _wants_model(name: str) -> bool:
    return bool(getattr(SELECTORS.get(name), "uses_chat_model", False))


def _make_selector(name: str, model: ChatModel | None, config: EhrqaConfig) -> Selector:
    """The selector ``name``, built from ``config`` as ``ehrqa ask`` builds it (so ``ehrqa
    --home D eval --selector auto`` uses the reranker trained in ``D``)."""
    # Selectors that judge with a model share one, loaded once.
    if _wants_model(name):
        return SELECTORS.get(name)(model=model)  # type: ignore[call-arg]
    return get_selector(name, config)


def _result(
    item: QAItem, name: str, selection: Selection, seconds: float, keep: int
) -> QuestionResult:
    return QuestionResult(
        id=item.id,
        selector=name,
        patient_id=item.patient_id,
        question=item.question,
        intent=item.intent,
        perspective=item.perspective,
        answerable=item.answerable,
        tags=list(item.tags),
        gold_ids=list(item.relevant_ids),
        reference=item.answer,
        answer_values=list(item.answer_values),
        selected=[s.to_dict() for s in selection.items],
        # Recall@k needs only the top max(k); whole-record rankings run to thousands.
        ranked=list(selection.details.get("ranked") or [s.record.ref for s in selection.items])[
            :keep
        ],
        timings_ms={"select": round(seconds * 1000, 3)},
        details={k: v for k, v in selection.details.items() if k != "ranked"},
    )


def run_selector(
    system: QASystem,
    name: str,
    items: Sequence[QAItem],
    answer_mode: str,
    on_question: Callable[[str, QAItem], None] | None = None,
    keep_ranked: int = 50,
) -> list[QuestionResult]:
    """Every question through one selector (and the answerer unless ``answer_mode`` is none)."""
    results: list[QuestionResult] = []
    # A dataset's conversations (extra keys "conversation" and "turn"): each follow-up is
    # asked after its earlier turns, as resolved, like a person asking in one chat.
    asked: dict[str, list[str]] = {}
    for item in sorted(items, key=_turn_order):
        thread = item.extra.get("conversation")
        history = asked.setdefault(f"{item.patient_id}/{thread or item.id}", [])
        question = resolve_followup(item.question, history, item.now_date)
        if answer_mode == "none":
            started = time.perf_counter()
            selection = system.selector.select(
                system.store, item.patient_id, question, item.now_date
            )
            elapsed = time.perf_counter() - started
            results.append(_result(item, name, selection, elapsed, keep_ranked))
        else:
            qa = system.ask(item.patient_id, question, now=item.now_date)
            selection = qa.selection
            result = _result(item, name, selection, qa.timings["select"], keep_ranked)
            a = qa.answer
            result.answer, result.citations = a.text, list(a.citations)
            result.verified, result.source = a.verified, a.source
            result.timings_ms = {k: round(v * 1000, 3) for k, v in qa.timings.items()}
            result.tokens = {"prompt": a.prompt_tokens, "completion": a.completion_tokens}
            result.details["fallback_reason"] = a.fallback_reason
            if a.draft is not None and a.source != "model":
                # The model's text that was not shown: to study the hybrid guard offline.
                result.details["draft"] = a.draft
            results.append(result)
        # The conversation keeps the question as resolved, and what a "why" answer named.
        history.append(remembered(question, selection))
        if question != item.question:
            results[-1].details["resolved_question"] = question
        if on_question is not None:
            on_question(name, item)
    order = {item.id: i for i, item in enumerate(items)}
    return sorted(results, key=lambda r: order[r.id])


def _turn_order(item: QAItem) -> int:
    """A stable sort key that puts every conversation's turns in turn order."""
    turn = item.extra.get("turn")
    return turn if isinstance(turn, int) else 0


def run_eval(
    config: EvalConfig,
    store: RecordStore,
    *,
    home: str,
    model: ChatModel | None = None,
    on_question: Callable[[str, QAItem], None] | None = None,
) -> EvalRun:
    """Run every selected question through every configured selector."""
    started = time.perf_counter()
    commit = git_commit()
    dataset = Path(config.dataset)
    all_items = read_dataset(dataset)
    items = select_items(all_items, config)
    ingest = ensure_patients(store, items, config.bundles, dataset)
    mode = "extractive" if config.answer_mode == "none" else config.answer_mode
    base = EhrqaConfig(
        home=home,
        model=config.model,
        adapter=config.adapter,
        answer_mode=mode,
        n_ctx=config.n_ctx,
        seed=config.seed,
    )
    judged = any(_wants_model(n) for n in config.selectors)
    needs_model = mode in ("hybrid", "model") or judged
    judge = model
    if model is None and needs_model:
        model = judge = load_chat_model(
            config.model, n_ctx=config.n_ctx, seed=config.seed, adapter=config.adapter or None
        )
        if config.adapter == "auto" and judged:
            # The packaged adapter answers (Task 2): a model-judged selector gets the plain
            # model. An adapter named by path is shared (a T1→T2 sequential adapter).
            judge = load_chat_model(config.model, n_ctx=config.n_ctx, seed=config.seed)
    results: dict[str, list[QuestionResult]] = {}
    for name in config.selectors:
        system = QASystem(base, store, selector=_make_selector(name, judge, base), model=model)
        results[name] = run_selector(
            system, name, items, config.answer_mode, on_question, keep_ranked=max(config.ks)
        )
    return EvalRun(
        config=config,
        items=items,
        results=results,
        dataset_sha256=dataset_hash(dataset),
        dataset_size=len(all_items),
        ingest=ingest.to_dict() if ingest else {},
        seconds=time.perf_counter() - started,
        model_name=model.name if model is not None else None,
        git_commit=commit,
    )
