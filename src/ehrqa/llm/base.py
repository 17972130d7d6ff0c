"""The chat-model protocol every generation backend implements."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
