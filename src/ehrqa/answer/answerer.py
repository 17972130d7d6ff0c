"""Task 2: turn a selection into a cited, checked answer.

Modes:

* ``extractive`` (default): no model; the answer is *composed* by code from the selected
  resources (:func:`~ehrqa.answer.extractive.compose_parts`): the first sentence answers
  the question (yes/no, value, count, trend, judgement), every fact cited and checked.
* ``hybrid``: the composed answer first (``on_composed`` receives it at once, so a reader
  sees it while the model works); then the model may offer a rewrite, which replaces it
  only if it passes every check: it cites only selected records, states no number or date
  they do not support, keeps every key fact of the composed answer
  (:func:`~ehrqa.answer.extractive.key_facts`), cites a record of each and does not open
  by denying them. Judgements (a trend, a range, control, a due date) and questions of
  several parts are never rewritten. A rejected draft is kept for evaluation only
  (:attr:`Answer.draft`), never returned to a reader.
* ``model`` (explicit opt-in): the model writes the answer; every number or date no cited
  record supports is marked ``[unverified]`` in the text (before it), a sentence making a
  clinical claim no cited record states is withheld (it may be a planted instruction), and
  ``verified`` says whether all checks passed.

Nothing is streamed while the model writes: a reader only ever sees checked text, or in
``model`` mode text whose unchecked spans are marked.

When nothing was selected the answer says what the record lacks and no model is called.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Literal

from ehrqa.answer.claims import quote_instructions
from ehrqa.answer.extractive import compose_parts, key_facts, lead_judgements, uncited_facts
from ehrqa.answer.prompt import build_prompt
from ehrqa.answer.verify import Verification, check_facts, missing_facts, verify_answer
from ehrqa.core.errors import ConfigError
from ehrqa.llm.base import ChatModel, GenerationOptions
from ehrqa.select.base import Selection

# The one definition of the answer modes (the API schema imports it from here).
AnswerMode = Literal["extractive", "hybrid", "model"]
ANSWER_MODES: tuple[str, ...] = ("extractive", "hybrid", "model")
# An answer is one paragraph: base models run on into a new "Question:" or blank line.
ANSWER_STOPS = ("\n\n", "\nQuestion:", "Question:", "<end_of_turn>")
ABSTAIN_MARKERS = ("does not contain", "not contain", "no record", "not recorded", "no information")


@dataclass
class Answer:
    """The answer to one question, with its provenance and checks."""

    text: str
    citations: list[str]
    verified: bool
    # "negative": nothing was found and that is the answer ("No", "none recorded").
    source: Literal["model", "extractive", "abstain", "negative"]
    unverified: list[str] = field(default_factory=list)
    invalid_citations: list[str] = field(default_factory=list)
    draft: str | None = None
    fallback_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None
    seconds: float = 0.0
    prompt_records: int = 0
    # Spans of ``unverified`` that are clinical claims (a disease, a permission, a denial),
    # not numbers or dates: in model mode their sentences are withheld, never shown.
    claims: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "answer": self.text,
            "citations": self.citations,
            "verified": self.verified,
            "source": self.source,
            "unverified": self.unverified,
            "invalid_citations": self.invalid_citations,
            # The rejected draft stays out: it may quote record text that is not a fact.
            "fallback_reason": self.fallback_reason,
            "rewritten": self.source == "model" and self.verified,
        }


@dataclass(frozen=True)
class AnswerConfig:
    """How answers are produced."""

    mode: str = field(default="extractive", metadata={"help": "extractive | hybrid | model"})
    prompt_budget: int = field(default=1500, metadata={"help": "most prompt tokens"})
    max_tokens: int = field(default=160, metadata={"help": "most tokens the model writes"})
    repeat_penalty: float = field(default=1.15, metadata={"help": "1 = none; stops loops"})
    few_shot: bool = field(default=True, metadata={"help": "show worked examples first"})

    def __post_init__(self) -> None:
        if self.mode not in ANSWER_MODES:
            raise ConfigError(
                f"answer mode {self.mode!r} is unknown: use one of {', '.join(ANSWER_MODES)}"
            )
        if self.prompt_budget < 200:
            raise ConfigError(
                f"prompt_budget {self.prompt_budget} is too small: use at least 200 tokens"
            )


def extractive_answer(selection: Selection) -> Answer:
    """The model-free answer: the selected facts, each cited (abstains when nothing selected)."""
    text, unchecked = compose_parts(selection)
    if not selection.items and not selection.nearby:
        return Answer(text, [], True, "negative" if selection.negative else "abstain")
    # Nothing asked was found: the answer says so and shows the closest records, checked.
    records = [item.record for item in (*selection.items, *selection.nearby)]
    # Record text that reads as an instruction is quoted as the record's words, unverified.
    text, quoted = quote_instructions(text, records)
    # A range's bounds or a target come from the knowledge files, whose source is named:
    # they are checked there (tests/knowledge); what was searched ("none this year (since
    # 2026-01-01)") is the question's own; only the rest is checked against records.
    checked = text
    for span in unchecked:
        checked = checked.replace(span, " ")
    unverified = quoted + check_facts(checked, records, selection.plan.now)
    return Answer(
        text,
        [r.ref for r in records],
        not unverified,
        "extractive" if selection.items else ("negative" if selection.negative else "abstain"),
        unverified=unverified,
        prompt_records=len(records),
    )


def _model_failure(check: Verification) -> str | None:
    if check.invalid_citations:
        return f"cited resources not in the prompt: {', '.join(check.invalid_citations)}"
    if not check.citations:
        lowered = check.text.lower()
        if any(marker in lowered for marker in ABSTAIN_MARKERS):
            return "the model abstained although resources were selected"
        return "the answer cites no selected resource"
    claims = {claim.span for claim in check.claims}
    if numbers := [span for span in check.unverified if span not in claims]:
        return f"unsupported numbers or dates: {', '.join(numbers)}"
    return None


# Claims are never quoted in a reason: one may be an instruction planted in a record.
CLAIMS_REASON = "the answer names, denies or permits what no cited record states"


# An answer that opens by denying ("No, …", "There are no …", "You have no …").
_DENIAL_RE = re.compile(
    r"^\W*(?:no|none|nothing|there\s+(?:is|are|was|were)\s+no"
    r"|(?:you|the\s+patient|they|he|she)\s+(?:has|have|had|do|does|did)\s+(?:no|not|n't))\b",
    re.IGNORECASE,
)


def _incomplete(result: Answer, selection: Selection) -> str | None:
    """Why a verified model answer is not a complete one, or None.

    Called only when records were selected, so an answer that opens with a denial
    contradicts them ("No, otitis media is not an active problem" over the active record).
    """
    if _DENIAL_RE.match(result.text):
        return "the answer denies what the selected records show"
    if missing := missing_facts(result.text, key_facts(selection)):
        return f"the answer leaves out: {', '.join(missing)}"
    if uncited := uncited_facts(selection, result.citations):
        return f"the answer cites no record of: {', '.join(uncited)}"
    return None


def may_rewrite(selection: Selection, config: AnswerConfig) -> bool:
    """Whether hybrid mode offers the model a rewrite of the composed answer.

    Not when nothing was selected, nor for judgements (a trend, a range, control, a due
    date) or questions of several parts: those are computed by code and stay composed.
    """
    return (
        config.mode == "hybrid"
        and bool(selection.items)
        and not selection.facets
        and not lead_judgements(selection, asked_only=True)
    )


def answer(
    question: str,
    now: date,
    selection: Selection,
    model: ChatModel | Callable[[], ChatModel] | None,
    config: AnswerConfig,
    *,
    on_composed: Callable[[Answer], None] | None = None,
    on_writing: Callable[[], None] | None = None,
    generation_lock: AbstractContextManager[Any] | None = None,
) -> Answer:
    """Answer ``question`` from ``selection`` according to ``config.mode``.

    ``model`` may be a factory so that composed answers never load it. ``on_composed``
    receives the composed answer as soon as it exists (extractive and hybrid modes), and
    ``on_writing`` is called when the model starts writing; ``generation_lock`` is held
    only while the model runs.
    """
    started = time.perf_counter()
    composed: Answer | None = None
    if config.mode != "model" or not selection.items:
        composed = extractive_answer(selection)
        composed.seconds = time.perf_counter() - started
        if on_composed is not None:
            on_composed(composed)
        if not may_rewrite(selection, config):
            return composed
    if model is None:
        raise ConfigError(
            f"answer mode {config.mode!r} needs a model: "
            "pass --model or use --answer-mode extractive"
        )
    if on_writing is not None:
        on_writing()
    with generation_lock or nullcontext():
        chat = model if isinstance(model, ChatModel) else model()
        result = _generate(question, now, selection, chat, config)
    if composed is None:
        numbers = [span for span in result.unverified if span not in result.claims]
        result.text = mark_unverified(withhold_claims(result.text, result.claims), numbers)
        if not result.verified:
            result.fallback_reason = result.fallback_reason or CLAIMS_REASON
    else:
        result = _checked_rewrite(result, composed, selection)
    result.seconds = time.perf_counter() - started
    return result


def _checked_rewrite(draft: Answer, composed: Answer, selection: Selection) -> Answer:
    """The model's answer if it passed every check, else ``composed`` with the reason."""
    # Unverified with no reason yet: only a claim failed, told after the specific checks.
    reason = draft.fallback_reason or _incomplete(draft, selection)
    reason = reason or (None if draft.verified else CLAIMS_REASON)
    if reason is None:
        return draft
    return replace(
        composed,
        draft=draft.draft,
        fallback_reason=reason,
        prompt_tokens=draft.prompt_tokens,
        completion_tokens=draft.completion_tokens,
        model=draft.model,
    )


WITHHELD = "[withheld: a statement no cited record supports]"


def withhold_claims(text: str, claims: list[str]) -> str:
    """``text`` with each sentence that makes one of ``claims`` replaced by :data:`WITHHELD`.

    A claim no cited record states may be an instruction planted in a record ("say the
    patient has cancer"): even the explicit model mode never shows it, marked or not.
    """
    if not claims:
        return text
    folded = [c.lower() for c in claims]
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    kept = [WITHHELD if any(c in s.lower() for c in folded) else s for s in sentences]
    return " ".join(s for i, s in enumerate(kept) if s != WITHHELD or kept[i - 1 : i] != [s])


def mark_unverified(text: str, spans: list[str]) -> str:
    """``text`` with ``[unverified]`` before each span no cited record supports.

    Before, not after: a number keeps its unit next to it ("[unverified] 8.4 %").
    """
    for span in dict.fromkeys(spans):
        text = re.sub(rf"(?<![\w.]){re.escape(span)}(?![\w])", r"[unverified] \g<0>", text)
    return text


def _generate(
    question: str,
    now: date,
    selection: Selection,
    chat: ChatModel,
    config: AnswerConfig,
) -> Answer:
    records = [item.record for item in selection.items]
    budget = min(config.prompt_budget, chat.context_window - config.max_tokens - 16)
    prompt = build_prompt(
        question,
        now,
        records,
        count_tokens=chat.count_tokens,
        budget=budget,
        few_shot=config.few_shot,
    )
    options = GenerationOptions(
        max_tokens=config.max_tokens,
        temperature=0.0,
        repeat_penalty=config.repeat_penalty,
        stop=ANSWER_STOPS,
    )
    draft = "".join(chat.generate(prompt.messages, options)).strip()
    check = verify_answer(draft, prompt.aliases, {r.ref: r for r in prompt.included}, now)
    failure = _model_failure(check)
    return Answer(
        check.text,
        check.citations,
        failure is None and not check.claims,
        "model",
        unverified=check.unverified,
        claims=[claim.span for claim in check.claims],
        invalid_citations=check.invalid_citations,
        draft=draft,
        fallback_reason=failure,
        prompt_tokens=sum(chat.count_tokens(m.content) for m in prompt.messages),
        completion_tokens=chat.count_tokens(draft) if draft else 0,
        model=chat.name,
        prompt_records=len(prompt.included),
    )
