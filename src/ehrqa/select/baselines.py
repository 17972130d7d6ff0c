"""Baseline Task 1 strategies: what the default selector is benchmarked against.

* ``whole-record`` — naive RAG: the patient's whole clinical record, newest first, cut to
  what fits the answer model's context. No ranking at all.
* ``newest-n`` — the LLMonFHIR approach: guess the resource type(s) from the question and
  take the newest ``n`` resources of those types.
* ``bm25`` — lexical retrieval only: the question's content words through the store's
  BM25 index, no understanding of types or time beyond "nothing after ``now``".
* ``llm-pairwise`` — the published Task 1 approach: a language model judges every
  (question, resource) pair relevant or not. Judging all of a 3,000-resource record is
  hours of model time, so candidates are capped (see :class:`LlmPairwiseSelector`).

Every baseline returns a :class:`~ehrqa.select.base.Selection` whose ``details`` say what
it cost (``model_calls``, and for the LLM prompt and completion tokens) and hold
``ranked``: the candidate references in rank order, from which the benchmark computes
recall@k of the candidate stage. Nothing dated after ``now`` is ever a candidate; records
without a date are kept, since they are not "in the future" (the Patient resource).
"""

from __future__ import annotations

import inspect
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar

from ehrqa.core.errors import ConfigError
from ehrqa.core.registry import Registry
from ehrqa.fhir.record import Record
from ehrqa.llm.base import ChatMessage, ChatModel, GenerationOptions
from ehrqa.select.base import Selected, Selection, Selector
from ehrqa.select.default import ADMIN_TYPES
from ehrqa.select.lexicon import words
from ehrqa.select.query import STOP_WORDS, QueryPlan, analyze
from ehrqa.store.base import RecordQuery, RecordStore

__all__ = [
    "BASELINES",
    "RELEVANCE_SCHEMA",
    "Bm25Selector",
    "LlmPairwiseSelector",
    "NewestNSelector",
    "WholeRecordSelector",
    "approx_tokens",
    "judge_messages",
    "parse_relevance",
    "question_terms",
    "register_baselines",
]

# (registry name, lazy target, help) of every baseline, for :func:`register_baselines`.
BASELINES: tuple[tuple[str, str, str], ...] = (
    (
        "whole-record",
        "ehrqa.select.baselines:WholeRecordSelector",
        "baseline: the whole clinical record, newest first, cut to a token budget",
    ),
    (
        "newest-n",
        "ehrqa.select.baselines:NewestNSelector",
        "baseline: the newest n resources of the question's guessed types (LLMonFHIR)",
    ),
    (
        "bm25",
        "ehrqa.select.baselines:Bm25Selector",
        "baseline: BM25 over the question's words, top k within half the best score",
    ),
    (
        "llm-pairwise",
        "ehrqa.select.baselines:LlmPairwiseSelector",
        "baseline: an LLM judges each of up to 30 candidates relevant or not (slow)",
    ),
)
CHARS_PER_TOKEN = 3.5  # rough English/code average when no tokenizer is given
EMPTY_REASON = "The record does not contain information about this."


def register_baselines(registry: Registry[type[Selector]]) -> None:
    """Register the four baselines (lazily, by ``"module:attr"``) in a selector registry."""
    for name, target, help_text in BASELINES:
        registry.register(name, target, help_text)


def approx_tokens(text: str) -> int:
    """Approximate token count of ``text``: one token per 3.5 characters, rounded up."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def question_terms(question: str) -> list[str]:
    """The question's lower-case content words, without stop words (``query.STOP_WORDS``).

    Words are deduplicated in order of appearance. One-letter words are dropped; numbers
    are kept (a year can match a record's date text).
    """
    terms: list[str] = []
    for word in words(question):
        if len(word) < 2 or word in STOP_WORDS or word in terms:
            continue
        terms.append(word)
    return terms


def _not_after(record: Record, now: date) -> bool:
    """True unless the record is dated after ``now`` (undated records are kept)."""
    day = record.day
    return day is None or day <= now.isoformat()


def _newest(store: RecordStore, patient_id: str, types: Sequence[str], now: date) -> list[Record]:
    """The patient's records of ``types`` (all clinical types when empty), newest first.

    The date filter is applied here rather than in the query because the store's ``end``
    bound also drops undated records.
    """
    query = RecordQuery(
        patient_id,
        types=tuple(types),
        exclude_types=() if types else ADMIN_TYPES,
        order="newest",
    )
    return [r for r in store.query(query) if _not_after(r, now)]


def _bm25(
    store: RecordStore, patient_id: str, question: str, now: date, limit: int
) -> list[tuple[Record, float]]:
    """BM25 hits of the question's words dated up to ``now``, best first.

    Equal scores are ordered by reference so runs are reproducible; ordering them by date
    would give this baseline an understanding of time it is meant to lack.
    """
    hits = store.search(patient_id, question_terms(question), limit=limit)
    hits = [(r, s) for r, s in hits if _not_after(r, now)]
    return sorted(hits, key=lambda hit: (-hit[1], hit[0].ref))


def _selection(
    plan: QueryPlan, items: list[Selected], ranked: Sequence[str], **details: Any
) -> Selection:
    selection = Selection(plan, items, candidates=len(ranked))
    selection.details = {**details, "ranked": list(ranked)}
    if not items:
        selection.empty_reason = EMPTY_REASON
    return selection


@dataclass
class WholeRecordSelector:
    """The whole clinical record, newest first, truncated to a token budget.

    What naive RAG users do: no ranking, so every resource that fits scores 1.0. Renderings
    (``record.text``) are added newest first until the next one would exceed
    ``token_budget``; administrative types (``ADMIN_TYPES``) are skipped.
    """

    name = "whole-record"

    token_budget: int = field(
        default=3500, metadata={"help": "tokens of record text the answer model can read"}
    )
    count_tokens: Callable[[str], int] | None = field(
        default=None,
        metadata={"help": "the answer model's token counter; default len(text)/3.5"},
        repr=False,
    )

    def __post_init__(self) -> None:
        if self.token_budget < 1:
            raise ConfigError(f"token_budget must be >= 1, got {self.token_budget}")

    def select(self, store: RecordStore, patient_id: str, question: str, now: date) -> Selection:
        """Fill the budget with the patient's clinical records, newest first."""
        count = self.count_tokens or approx_tokens
        records = _newest(store, patient_id, (), now)
        used = 0
        items: list[Selected] = []
        for record in records:
            cost = count(record.text)
            if used + cost > self.token_budget:
                break
            used += cost
            items.append(Selected(record, 1.0, ("in context window",)))
        return _selection(
            analyze(question, now),
            items,
            [r.ref for r in records],
            model_calls=0,
            context_tokens=used,
            token_budget=self.token_budget,
            dropped=len(records) - len(items),
        )


@dataclass
class NewestNSelector:
    """The newest ``n`` resources of the question's guessed types (the LLMonFHIR approach).

    Types come from :attr:`QueryPlan.target_types`; when it names none, every clinical type
    is taken.
    Scores fall linearly with rank, from 1.0 for the newest to ``1/len`` for the last.
    """

    name = "newest-n"

    n: int = field(default=64, metadata={"help": "how many of the newest resources to take"})

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ConfigError(f"n must be >= 1, got {self.n}")

    def select(self, store: RecordStore, patient_id: str, question: str, now: date) -> Selection:
        """Select the newest ``n`` records of the guessed types dated up to ``now``."""
        plan = analyze(question, now)
        types = plan.target_types
        records = _newest(store, patient_id, types, now)
        top = records[: self.n]
        items = [
            Selected(r, (len(top) - i) / len(top), (f"{r.resource_type}: newest #{i + 1}",))
            for i, r in enumerate(top)
        ]
        return _selection(plan, items, [r.ref for r in records], model_calls=0, types=list(types))


@dataclass
class Bm25Selector:
    """BM25 only: the question's content words through the store's full-text index.

    Keeps the top ``k`` hits whose score is at least ``relative_cutoff`` × the best one;
    scores are divided by the best. Knows nothing of types, concepts or time windows, only
    that records dated after ``now`` are excluded.
    """

    name = "bm25"

    k: int = field(default=10, metadata={"help": "most hits to select"})
    relative_cutoff: float = field(
        default=0.5, metadata={"help": "keep hits scoring at least this fraction of the best"}
    )
    search_limit: int = field(
        default=200, metadata={"help": "hits fetched from the index (the ranked candidates)"}
    )

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"k must be >= 1, got {self.k}")
        if not 0.0 <= self.relative_cutoff <= 1.0:
            raise ConfigError(f"relative_cutoff must be in [0, 1], got {self.relative_cutoff}")
        if self.search_limit < self.k:
            raise ConfigError(f"search_limit must be >= k ({self.k}), got {self.search_limit}")

    def select(self, store: RecordStore, patient_id: str, question: str, now: date) -> Selection:
        """Select the best BM25 matches of the question's words."""
        hits = _bm25(store, patient_id, question, now, self.search_limit)
        best = hits[0][1] if hits else 0.0
        items = [
            Selected(r, s / best, (f"bm25 {s:.2f}",))
            for r, s in hits[: self.k]
            if best > 0 and s >= self.relative_cutoff * best
        ]
        return _selection(
            analyze(question, now),
            items,
            [r.ref for r, _ in hits],
            model_calls=0,
            terms=question_terms(question),
        )


# The grammar-constrained answer, for backends that support JSON-schema grammars.
RELEVANCE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"relevant": {"type": "boolean"}},
    "required": ["relevant"],
}
JUDGE_SYSTEM = (
    "You judge the relevance of ONE health record to a question about the patient. "
    "A record is relevant if it helps answer the question. "
)
JUDGE_ASK_TEXT = 'Is this record relevant to the question? Answer with exactly "yes" or "no".'
JUDGE_ASK_JSON = (
    'Is this record relevant to the question? Answer {"relevant": true} or {"relevant": false}.'
)
_NEGATIONS = re.compile(r"\b(?:not\s+relevant|irrelevant|not\s+related|unrelated)\b")
_RELEVANT_KEY = re.compile(r'"relevant"\s*:?', re.IGNORECASE)
_YES = frozenset({"yes", "y", "yeah", "yep", "true", "relevant"})
_NO = frozenset({"no", "n", "nope", "false", "not"})
_MESSAGE_OVERHEAD = 4  # template tokens per chat message, as in ehrqa.answer.prompt


def parse_relevance(reply: str) -> bool | None:
    """Read a relevance judgement from a model's reply; ``None`` when there is none.

    In order:

    1. A JSON object decides by its ``relevant`` value alone: ``{"relevant": true}``,
       ``{"relevant": "no"}``; any other object is ``None``. In JSON cut short by
       ``max_tokens`` the key ``"relevant"`` is ignored, so ``{"relevant": fal`` is ``None``.
    2. A negated phrase anywhere ("not relevant", "irrelevant", "not related",
       "unrelated") is no.
    3. A first word yes/y/yeah/yep/true/relevant is yes, no/n/nope/false/not is no, so
       "Yes.", "No, the record…", "Relevant" and "Not at all" read as meant.
    4. Else the first of yes/true/relevant/no/false anywhere ("The answer is yes").

    Case and punctuation are ignored.
    """
    text = reply.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            value = data.get("relevant")
            if isinstance(value, bool):
                return value
            # The key's name must not read as a yes: judge its value alone.
            return parse_relevance(value) if isinstance(value, str) else None
        text = _RELEVANT_KEY.sub(" ", text)
    lowered = text.lower()
    if _NEGATIONS.search(lowered):
        return False
    tokens = re.findall(r"[a-z]+", lowered)
    if tokens and tokens[0] in _YES | _NO:
        return tokens[0] in _YES
    for token in tokens:
        if token in ("yes", "true", "relevant"):
            return True
        if token in ("no", "false"):
            return False
    return None


def judge_messages(
    question: str, now: date, record: Record, *, json_answer: bool
) -> list[ChatMessage]:
    """The chat prompt that asks whether ``record`` is relevant to ``question``.

    The record is shown as its resource type and rendering without the ``[Type/id]``
    prefix: a 36-character id is noise to a small model. It comes last, on its own
    ``Record:`` line, so every candidate of a question shares the prompt up to it and
    llama.cpp re-evaluates only the record's tokens (it reuses a cached common prefix).
    """
    text = record.text
    prefix = f"[{record.ref}]"
    if text.startswith(prefix):
        text = text[len(prefix) :].strip()
    user = (
        f"Question: {question.strip()}\nToday is {now.isoformat()}.\n"
        f"{JUDGE_ASK_JSON if json_answer else JUDGE_ASK_TEXT}\n"
        f"Record: {record.resource_type} {text}"
    )
    return [ChatMessage("system", JUDGE_SYSTEM), ChatMessage("user", user)]


def _interleave(*rankings: Iterable[Record], cap: int) -> list[Record]:
    """Round-robin over ``rankings`` (first of each, then second of each, …), deduplicated."""
    chosen: dict[str, Record] = {}
    iterators = [iter(r) for r in rankings]
    while iterators and len(chosen) < cap:
        for it in list(iterators):
            record = next(it, None)
            if record is None:
                iterators.remove(it)
            elif len(chosen) < cap:
                chosen.setdefault(record.ref, record)
    return list(chosen.values())


@dataclass
class _Cost:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    unparsed: int = 0


@dataclass
class LlmPairwiseSelector:
    """An LLM judges each (question, resource) pair; the ones it calls relevant are selected.

    **Candidates.** Judging a whole record would take thousands of model calls, so at most
    ``candidate_cap`` resources are judged: the BM25 hits of the question's words and the
    newest resources of its guessed types (as ``bm25`` and ``newest-n`` rank them),
    interleaved one from each in turn, BM25 first, without duplicates.

    **Judging.** One greedy call per candidate with a short prompt (:func:`judge_messages`).
    When the model supports grammars (``supports_grammar`` and a ``json_schema`` keyword on
    ``generate``, as the llama.cpp backend has), the reply is constrained to
    :data:`RELEVANCE_SCHEMA`; otherwise it is free text read by :func:`parse_relevance`. A
    reply that says neither yes nor no counts as "not relevant" (and as ``unparsed``).

    **Cost.** ``details`` holds ``model_calls``, ``prompt_tokens`` (the model's own
    ``count_tokens`` over each message, plus 4 template tokens per message),
    ``completion_tokens`` and ``model_seconds``, so a benchmark can report cost per question.

    The model is given, or made by a factory, or loaded from ``model_spec`` — on the first
    question that has candidates, never before, and then kept.
    """

    # The harness hands selectors with this capability the answerer's chat model.
    uses_chat_model: ClassVar[bool] = True

    name = "llm-pairwise"

    model: ChatModel | Callable[[], ChatModel] | None = field(
        default=None, metadata={"help": "a chat model or a factory of one"}, repr=False
    )
    model_spec: str = field(
        default="smollm2", metadata={"help": "what load_chat_model loads when model is None"}
    )
    candidate_cap: int = field(default=30, metadata={"help": "most candidates judged"})
    threshold: float = field(
        default=0.5, metadata={"help": "least relevance score (1 yes, 0 no) to be selected"}
    )
    n_ctx: int = field(default=2048, metadata={"help": "context window when loading by spec"})
    use_grammar: bool = field(
        default=True, metadata={"help": "constrain replies to JSON when the backend can"}
    )
    _loaded: ChatModel | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.candidate_cap < 1:
            raise ConfigError(f"candidate_cap must be >= 1, got {self.candidate_cap}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be in [0, 1], got {self.threshold}")

    @property
    def loaded(self) -> bool:
        """Whether the judging model has been loaded (or was given ready)."""
        return self._loaded is not None or isinstance(self.model, ChatModel)

    def chat_model(self) -> ChatModel:
        """The judging model, loading it on first use."""
        if self._loaded is None:
            if isinstance(self.model, ChatModel):
                self._loaded = self.model
            elif self.model is not None:
                self._loaded = self.model()
            else:
                from ehrqa.llm import load_chat_model

                self._loaded = load_chat_model(self.model_spec, n_ctx=self.n_ctx)
        return self._loaded

    def candidates(
        self, store: RecordStore, patient_id: str, plan: QueryPlan
    ) -> tuple[list[Record], dict[str, int]]:
        """The capped candidate list, and how many each source offered."""
        cap = self.candidate_cap
        hits = [r for r, _ in _bm25(store, patient_id, plan.question, plan.now, cap)]
        newest = _newest(store, patient_id, plan.target_types, plan.now)[:cap]
        return _interleave(hits, newest, cap=cap), {"bm25_hits": len(hits), "newest": len(newest)}

    def select(self, store: RecordStore, patient_id: str, question: str, now: date) -> Selection:
        """Judge each capped candidate with the model; select those judged relevant."""
        plan = analyze(question, now)
        pool, sources = self.candidates(store, patient_id, plan)
        cost = _Cost()
        items: list[Selected] = []
        model_name = None
        if pool:
            model = self.chat_model()
            model_name = model.name
            grammar = self.use_grammar and takes_schema(model)
            for record in pool:
                score = self._judge(model, question, now, record, grammar, cost)
                if score >= self.threshold and score > 0:
                    items.append(Selected(record, score, (f"judged relevant by {model.name}",)))
        return _selection(
            plan,
            items,
            [r.ref for r in pool],
            **sources,
            model=model_name,
            candidates_judged=len(pool),
            model_calls=cost.calls,
            prompt_tokens=cost.prompt_tokens,
            completion_tokens=cost.completion_tokens,
            model_seconds=round(cost.seconds, 3),
            relevant=len(items),
            unparsed=cost.unparsed,
        )

    def _judge(
        self, model: ChatModel, question: str, now: date, record: Record, grammar: bool, cost: _Cost
    ) -> float:
        """One model call: 1.0 for relevant, 0.0 for not (or unreadable)."""
        messages = judge_messages(question, now, record, json_answer=grammar)
        options = GenerationOptions(max_tokens=16 if grammar else 6, temperature=0.0)
        started = time.perf_counter()
        if grammar:
            stream = model.generate(messages, options, json_schema=RELEVANCE_SCHEMA)  # type: ignore[call-arg]
        else:
            stream = model.generate(messages, options)
        reply = "".join(stream)
        cost.seconds += time.perf_counter() - started
        cost.calls += 1
        cost.prompt_tokens += sum(
            model.count_tokens(m.content) + _MESSAGE_OVERHEAD for m in messages
        )
        cost.completion_tokens += model.count_tokens(reply)
        verdict = parse_relevance(reply)
        if verdict is None:
            cost.unparsed += 1
        return 1.0 if verdict else 0.0


def takes_schema(model: ChatModel) -> bool:
    """Whether ``model`` can constrain its reply to a JSON schema."""
    if not getattr(model, "supports_grammar", False):
        return False
    try:
        return "json_schema" in inspect.signature(model.generate).parameters
    except (TypeError, ValueError):  # builtins and C extensions may have no signature
        return False
