"""The chat-model protocol every generation backend implements."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    """One message of a chat prompt."""

    role: Role
    content: str


@dataclass(frozen=True)
class GenerationOptions:
    """Decoding options shared by all backends. Greedy by default, for reproducibility."""

    max_tokens: int = field(default=256, metadata={"help": "most tokens to generate"})
    temperature: float = field(default=0.0, metadata={"help": "0 = greedy decoding"})
    top_p: float = field(default=1.0, metadata={"help": "nucleus sampling mass"})
    stop: tuple[str, ...] = field(default=(), metadata={"help": "strings that end generation"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})
    repeat_penalty: float = field(
        default=1.0, metadata={"help": "penalty on repeated tokens (1 = none); small models loop"}
    )

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature must be in [0, 2], got {self.temperature}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0.5 <= self.repeat_penalty <= 2.0:
            raise ValueError(f"repeat_penalty must be in [0.5, 2], got {self.repeat_penalty}")


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: streams the reply to a list of messages as text chunks.

    Capabilities are attributes: ``context_window`` (tokens the model sees at once) and
    ``supports_grammar``. ``count_tokens`` uses the model's own tokenizer where it has one.
    Implementations are not required to be thread-safe: callers share one instance behind
    a lock or a queue.
    """

    name: str
    context_window: int
    supports_grammar: bool

    def generate(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> Iterator[str]:
        """Yield the reply to ``messages`` as it is produced."""
        ...

    def count_tokens(self, text: str) -> int:
        """Return how many tokens ``text`` takes for this model."""
        ...


@runtime_checkable
class LetterScorer(Protocol):
    """A chat model that can score single-token replies: an optional capability.

    ``supports_logprobs`` says whether :meth:`letter_logprobs` works for this instance;
    check it before calling (a backend may define the method but lack the means).
    """

    supports_logprobs: bool

    def letter_logprobs(
        self, messages: Sequence[ChatMessage], letters: Sequence[str]
    ) -> dict[str, float]:
        """Return the log-probability of each of ``letters`` as the reply's first token."""
        ...


def letter_token_ids(
    letters: Sequence[str], encode: Callable[[str], Sequence[int]]
) -> dict[str, list[int]]:
    """The token ids that spell each letter on its own: ``"A"`` and ``" A"``, where single.

    A reply may start with the bare letter or, under some chat templates, with a space and
    the letter; both count. A variant that takes more than one token is left out (its first
    token, e.g. a lone space, would be shared by every letter). Raises ``ValueError`` when a
    letter has no single-token spelling at all.
    """
    ids: dict[str, list[int]] = {}
    for letter in letters:
        variants = [encode(v) for v in (letter, " " + letter)]
        ids[letter] = sorted({int(t[0]) for t in variants if len(t) == 1})
        if not ids[letter]:
            raise ValueError(f"option letter {letter!r} is not a single token for this model")
    return ids


def pick_letter_logprobs(
    logprobs: Callable[[list[int]], list[float]], ids: Mapping[str, list[int]]
) -> dict[str, float]:
    """Each letter's log-probability: log-sum-exp over its token ids' log-probabilities.

    ``logprobs`` maps token ids to their log-probabilities under the next-token
    distribution (a log-softmax over the whole vocabulary).
    """
    result: dict[str, float] = {}
    for letter, token_ids in ids.items():
        values = logprobs(token_ids)
        top = max(values)
        result[letter] = top + math.log(sum(math.exp(v - top) for v in values))
    return result
