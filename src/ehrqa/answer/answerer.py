"""Task 2: turn a selection into a cited, checked answer.

Modes:

* ``model``: the chat model writes the answer; citations and facts are checked and the
  result says whether it verified.
* ``extractive``: no model; the facts of the selected resources, each cited.
* ``hybrid`` (default): the model writes, except where code judges (a trend, a value
  against its range, a condition's control, a vaccine due date) or the question has
  several parts: those are composed answers. If the model's answer cites nothing valid, states a
  number or date that no cited resource supports, or leaves out a key fact of the
  extractive answer (:func:`~ehrqa.answer.extractive.key_facts`: the age, sex or count
  asked for, or each fact's name, value with its unit and — when the question asks for
  it — date), cites no record of one of those facts or opens by denying them ("No, …"),
  the extractive answer is returned instead and the model's draft and the reason are kept
  in the result. Unverified or incomplete answers never reach a reader as if they were
  facts.

When nothing was selected the answer says what the record lacks and no model is called.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from ehrqa.answer.extractive import compose_parts, key_facts, lead_judgements, uncited_facts
from ehrqa.answer.prompt import build_prompt
from ehrqa.answer.verify import Verification, check_facts, missing_facts, verify_answer
from ehrqa.errors import ConfigError
from ehrqa.llm.base import ChatModel, GenerationOptions
from ehrqa.select.base import Selection

AnswerMode = Literal["model", "extractive", "hybrid"]
ANSWER_MODES: tuple[str, ...] = ("hybrid", "model", "extractive")
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "answer": self.text,
            "citations": self.citations,
            "verified": self.verified,
            "source": self.source,
            "unverified": self.unverified,
            "invalid_citations": self.invalid_citations,
            "draft": self.draft,
            "fallback_reason": self.fallback_reason,
        }


@dataclass(frozen=True)
class AnswerConfig:
    """How answers are produced."""

    mode: str = field(default="hybrid", metadata={"help": "hybrid | model | extractive"})
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
    text, knowledge = compose_parts(selection)
    if not selection.items:
        return Answer(text, [], True, "negative" if selection.negative else "abstain")
    records = [item.record for item in selection.items]
    # A range's bounds or a target come from the knowledge files, whose source is named:
    # they are checked there (tests/knowledge), so only the rest is checked against records.
    checked = text
    for span in knowledge:
        checked = checked.replace(span, " ")
    unverified = check_facts(checked, records, selection.plan.now)
    return Answer(
        text,
        [r.ref for r in records],
        not unverified,
        "extractive",
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
    if check.unverified:
        return f"unsupported numbers or dates: {', '.join(check.unverified)}"
    return None


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


def answer(
    question: str,
    now: date,
    selection: Selection,
    model: ChatModel | Callable[[], ChatModel] | None,
    config: AnswerConfig,
    *,
    on_token: Callable[[str], None] | None = None,
) -> Answer:
    """Answer ``question`` from ``selection`` according to ``config.mode``.

    ``model`` may be a factory so that abstentions and extractive answers never load it.
    ``on_token`` receives the model's text as it streams.
    """
    started = time.perf_counter()
    # Judgements (a trend, a range, control, a due date) and questions of several parts are
    # computed by code: in hybrid mode no model rewrites them.
    composed_only = config.mode == "hybrid" and (
        bool(selection.facets) or bool(lead_judgements(selection, asked_only=True))
    )
    if not selection.items or config.mode == "extractive" or composed_only:
        result = extractive_answer(selection)
        result.seconds = time.perf_counter() - started
        return result
    if model is None:
        raise ConfigError(
            f"answer mode {config.mode!r} needs a model: "
            "pass --model or use --answer-mode extractive"
        )
    chat = model if isinstance(model, ChatModel) else model()
    result = _generate(question, now, selection, chat, config, on_token)
    if config.mode == "hybrid" and not result.fallback_reason:
        result.fallback_reason = _incomplete(result, selection)
    if config.mode == "hybrid" and result.fallback_reason:
        fallback = extractive_answer(selection)
        fallback.draft, fallback.fallback_reason = result.draft, result.fallback_reason
        fallback.prompt_tokens, fallback.completion_tokens = (
            result.prompt_tokens,
            result.completion_tokens,
        )
        fallback.model = result.model
        result = fallback
    result.seconds = time.perf_counter() - started
    return result


def _generate(
    question: str,
    now: date,
    selection: Selection,
    chat: ChatModel,
    config: AnswerConfig,
    on_token: Callable[[str], None] | None,
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
    pieces: list[str] = []
    for piece in chat.generate(prompt.messages, options):
        pieces.append(piece)
        if on_token is not None:
            on_token(piece)
    draft = "".join(pieces).strip()
    check = verify_answer(draft, prompt.aliases, {r.ref: r for r in prompt.included}, now)
    failure = _model_failure(check)
    return Answer(
        check.text,
        check.citations,
        failure is None,
        "model",
        unverified=check.unverified,
        invalid_citations=check.invalid_citations,
        draft=draft,
        fallback_reason=failure,
        prompt_tokens=sum(chat.count_tokens(m.content) for m in prompt.messages),
        completion_tokens=chat.count_tokens(draft) if draft else 0,
        model=chat.name,
        prompt_records=len(prompt.included),
    )
