"""A scripted chat model for unit tests: queued replies, streamed in word chunks."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence

from ehrqa.core.errors import EhrqaError
from ehrqa.llm.base import ChatMessage, GenerationOptions

# A word with the whitespace after it, or leading whitespace on its own; joining the pieces
# gives back the reply exactly.
_PIECE = re.compile(r"\S+\s*|\s+")
# What ``count_tokens`` counts: runs of word characters, and each punctuation mark.
_TOKEN = re.compile(r"\w+|[^\w\s]")


class FakeRepliesExhaustedError(EhrqaError):
    """A :class:`FakeChatModel` was asked for more replies than were queued."""


class FakeChatModel:
    """A chat model that replies with queued strings, for tests.

    Every call to :meth:`generate` takes the next queued reply (or ``default_reply`` when
    the queue is empty and one is set) and records the messages and options it was given in
    ``calls`` and ``options``. Replies are cut at the first ``options.stop`` string, as real
    backends do, and streamed ``chunk_size`` words at a time so that callers' streaming code
    paths run. ``options.max_tokens`` is ignored: a reply is returned whole.

    ``letter_scores``, when given, are queued answers to :meth:`letter_logprobs` (one mapping
    of letter to log-probability per call) and turn ``supports_logprobs`` on. ``generate``
    accepts a ``grammar`` keyword when ``supports_grammar`` is set, recorded in ``grammars``
    (the scripted reply is returned as is: it is the test's job to script a valid one).
    """

    def __init__(
        self,
        replies: Iterable[str] = (),
        *,
        name: str = "fake",
        context_window: int = 4096,
        chunk_size: int = 1,
        default_reply: str | None = None,
        supports_grammar: bool = False,
        letter_scores: Iterable[Mapping[str, float]] | None = None,
    ) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1 word, got {chunk_size}")
        self.name = name
        self.context_window = context_window
        self.supports_grammar = supports_grammar
        self.chunk_size = chunk_size
        self.default_reply = default_reply
        self.replies: deque[str] = deque(replies)
        self.calls: list[list[ChatMessage]] = []
        self.options: list[GenerationOptions] = []
        self.supports_logprobs = letter_scores is not None
        self.letter_scores: deque[Mapping[str, float]] = deque(letter_scores or ())
        self.grammars: list[str | None] = []

    def queue(self, *replies: str) -> None:
        """Append ``replies`` to the queue, to be returned in order."""
        self.replies.extend(replies)

    def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        grammar: str | None = None,
    ) -> Iterator[str]:
        """Record the call and return an iterator over the next reply's chunks.

        The call is recorded, and the reply taken, at once (not on first iteration), so a
        test sees ``calls`` filled even if the stream is never read. Raises
        :class:`FakeRepliesExhaustedError` when no reply is queued and there is no default.
        """
        self.calls.append(list(messages))
        self.options.append(options)
        self.grammars.append(grammar)
        if self.replies:
            reply = self.replies.popleft()
        elif self.default_reply is not None:
            reply = self.default_reply
        else:
            raise FakeRepliesExhaustedError(
                f"FakeChatModel {self.name!r} has no reply queued for call {len(self.calls)}: "
                "pass more replies, call .queue(...), or set default_reply"
            )
        return iter(self._chunks(_cut_at_stop(reply, options.stop)))

    def letter_logprobs(
        self, messages: Sequence[ChatMessage], letters: Sequence[str]
    ) -> dict[str, float]:
        """Record the call and return the next queued scores for ``letters``.

        A letter missing from the queued mapping gets ``-inf``. Raises
        :class:`FakeRepliesExhaustedError` when no scores are queued.
        """
        self.calls.append(list(messages))
        if not self.letter_scores:
            raise FakeRepliesExhaustedError(
                f"FakeChatModel {self.name!r} has no letter scores queued for call "
                f"{len(self.calls)}: pass more letter_scores"
            )
        scores = self.letter_scores.popleft()
        return {letter: float(scores.get(letter, float("-inf"))) for letter in letters}

    def count_tokens(self, text: str) -> int:
        """Return the number of words plus punctuation marks in ``text``.

        A word is a run of letters, digits and underscores; every other non-space
        character counts as one token. ``"Hb 9.8 g/dL."`` counts 8.
        """
        return len(_TOKEN.findall(text))

    def _chunks(self, reply: str) -> list[str]:
        pieces = _PIECE.findall(reply)
        step = self.chunk_size
        return ["".join(pieces[i : i + step]) for i in range(0, len(pieces), step)]


def _cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """Return ``text`` up to (not including) the earliest of the ``stop`` strings."""
    cut = len(text)
    for s in stop:
        if s and (i := text.find(s)) != -1:
            cut = min(cut, i)
    return text[:cut]
