"""Chat models run in-process by llama.cpp (``llama-cpp-python``) from a GGUF file."""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ehrqa.core.errors import BackendUnavailableError, ConfigError, NotFoundError
from ehrqa.llm.base import (
    ChatMessage,
    GenerationOptions,
    letter_token_ids,
    pick_letter_logprobs,
)

_CTX_PADDING = 256


class LlamaCppChatModel:
    """A GGUF chat model run by llama.cpp on the CPU (or GPU when the build has one).

    The chat template is taken from the GGUF metadata unless ``chat_format`` names one of
    llama-cpp-python's formats (e.g. ``"gemma"`` for a base model without a template).
    ``lora_path`` applies a LoRA adapter converted to GGUF. ``n_ctx`` is rounded up to a
    multiple of 256 tokens, as llama.cpp does; ``context_window`` is the rounded value.

    Not thread-safe: a llama.cpp context holds one conversation's KV cache. ``generate``
    therefore holds a lock from the first chunk until its iterator is exhausted or closed,
    so other threads wait their turn; starting a second reply in the same thread before
    the first is finished raises ``RuntimeError`` instead of deadlocking.
    """

    supports_grammar = True
    supports_logprobs = True

    def __init__(
        self,
        model_path: str | Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        seed: int = 0,
        chat_format: str | None = None,
        lora_path: str | Path | None = None,
        name: str | None = None,
    ) -> None:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise NotFoundError(f"GGUF model file not found: {path}")
        if lora_path is not None and not Path(lora_path).expanduser().is_file():
            raise NotFoundError(f"GGUF LoRA adapter file not found: {lora_path}")
        try:
            import llama_cpp
        except ImportError as exc:
            raise BackendUnavailableError(
                "the llama.cpp backend needs llama-cpp-python: pip install llama-cpp-python"
            ) from exc
        # llama.cpp pads the context to a multiple of 256 tokens, but llama-cpp-python sizes
        # its token buffer from the value asked for, and overflows it on prompts between the
        # two: ask for the padded size.
        n_ctx = -(-max(n_ctx, 1) // _CTX_PADDING) * _CTX_PADDING
        try:
            self._llm: Any = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                seed=seed,
                chat_format=chat_format,
                lora_path=str(Path(lora_path).expanduser()) if lora_path else None,
                verbose=False,  # llama.cpp's load and timing logs would flood stderr
            )
        except ValueError as exc:
            raise BackendUnavailableError(
                f"llama.cpp could not load {path}: is it a complete GGUF file of a model "
                "architecture this llama-cpp-python version supports?"
            ) from exc
        self.model_path = path
        self.name = name or path.stem
        self.context_window = int(self._llm.n_ctx())
        self._lock = threading.Lock()
        self._owner: int | None = None

    def generate(
        self,
        messages: Sequence[ChatMessage],
        options: GenerationOptions,
        *,
        json_schema: Mapping[str, Any] | None = None,
        grammar: str | None = None,
    ) -> Generator[str, None, None]:
        """Stream the reply to ``messages``; greedy when ``options.temperature`` is 0.

        ``json_schema``, when given, constrains the reply with a grammar to JSON that
        matches the schema; ``grammar`` constrains it with a GBNF grammar of its own (give
        one or the other). Raises :class:`ConfigError` when the prompt plus
        ``max_tokens`` does not fit the context window. The model stays locked until the
        generator is exhausted or closed: ``close()`` one that is abandoned half-way.
        """
        kwargs: dict[str, Any] = {}
        if json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": dict(json_schema)}
        if grammar is not None:
            if json_schema is not None:
                raise ConfigError("give generate() a json_schema or a grammar, not both")
            kwargs["grammar"] = _parse_grammar(grammar)
        with self._exclusive():
            try:
                stream = self._llm.create_chat_completion(
                    messages=[{"role": m.role, "content": m.content} for m in messages],
                    stream=True,
                    max_tokens=options.max_tokens,
                    temperature=options.temperature,
                    top_p=options.top_p,
                    stop=list(options.stop) or None,
                    seed=options.seed,
                    repeat_penalty=options.repeat_penalty,
                    **kwargs,
                )
                for chunk in stream:
                    content = chunk["choices"][0]["delta"].get("content")
                    if content:
                        yield content
            except ValueError as exc:
                if "context window" not in str(exc):
                    raise
                raise ConfigError(
                    f"the prompt does not fit the context window of {self.context_window} "
                    "tokens: shorten it, lower max_tokens, or load the model with a larger n_ctx"
                ) from exc

    def letter_logprobs(
        self, messages: Sequence[ChatMessage], letters: Sequence[str]
    ) -> dict[str, float]:
        """Log-probability of each of ``letters`` as the first token of the reply.

        The prompt goes through the same chat template as :meth:`generate`; the logits of
        the first reply position are read by a pass-through logits processor while one
        token is decoded, and log-softmaxed over the whole vocabulary. A letter's value is
        the log-sum-exp over its single-token spellings (``"A"``, ``" A"``).
        """
        import numpy as np

        ids = letter_token_ids(
            letters,
            lambda text: self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False),
        )
        seen: list[Any] = []

        def capture(input_ids: Any, scores: Any) -> Any:
            if not seen:
                seen.append(np.array(scores, dtype=np.float64))
            return scores

        with self._exclusive():
            try:
                self._llm.create_chat_completion(
                    messages=[{"role": m.role, "content": m.content} for m in messages],
                    max_tokens=1,
                    temperature=0.0,
                    logits_processor=[capture],
                )
            except ValueError as exc:
                if "context window" not in str(exc):
                    raise
                raise ConfigError(
                    f"the prompt does not fit the context window of {self.context_window} "
                    "tokens: shorten it, or load the model with a larger n_ctx"
                ) from exc
        if not seen:
            raise ConfigError(f"{self.name}: llama.cpp decoded no token, so no logits were seen")
        logits = seen[0]
        top = float(logits.max())
        log_norm = top + float(np.log(np.exp(logits - top).sum()))
        return pick_letter_logprobs(lambda t: [float(logits[i]) - log_norm for i in t], ids)

    def count_tokens(self, text: str) -> int:
        """Return the number of tokens of ``text`` in the model's own vocabulary (no BOS)."""
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        me = threading.get_ident()
        if self._owner == me:
            # Waiting on our own lock would deadlock: say what went wrong instead.
            raise RuntimeError(
                f"{self.name}: a previous reply is still being streamed in this thread; "
                "read it to the end or close() it before starting another"
            )
        with self._lock:
            self._owner = me
            try:
                yield
            finally:
                self._owner = None


def _parse_grammar(grammar: str) -> Any:
    """A GBNF grammar text for llama.cpp's sampler (parsed when sampling starts)."""
    import llama_cpp

    return llama_cpp.LlamaGrammar.from_string(grammar, verbose=False)
