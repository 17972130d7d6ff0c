"""Chat models run by Hugging Face ``transformers`` (optionally with a PEFT LoRA adapter).

Used to try fine-tuned adapters before they are merged and exported to GGUF. torch,
transformers and peft are imported only when a model is constructed.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from ehrqa.core.errors import BackendUnavailableError, ConfigError, NotFoundError
from ehrqa.llm.base import (
    ChatMessage,
    GenerationOptions,
    letter_token_ids,
    pick_letter_logprobs,
)

INSTALL_HINT = "pip install torch==2.13.0, then pip install 'ehrqa[train]'"


class TransformersChatModel:
    """A causal LM loaded with ``AutoModelForCausalLM``, chatting through its chat template.

    ``model_path`` is a local directory (or a hub id where the hub can be reached);
    ``gguf_file`` names a GGUF file inside it to load (dequantised) instead of safetensors;
    ``adapter`` is a PEFT adapter directory applied on top. ``device`` defaults to CUDA, then
    MPS, then CPU; ``dtype`` is a torch dtype or its name (``"bfloat16"``), default float32
    on CPU and the checkpoint's own dtype elsewhere.

    Not thread-safe: ``generate`` holds a lock while a reply streams, so concurrent callers
    take turns.
    """

    supports_grammar = False
    supports_logprobs = True

    def __init__(
        self,
        model_path: str | Path,
        *,
        adapter: str | Path | None = None,
        gguf_file: str | None = None,
        device: str | None = None,
        dtype: Any = None,
        name: str | None = None,
    ) -> None:
        local = Path(model_path).expanduser()
        if local.exists() and gguf_file and not (local / gguf_file).is_file():
            raise NotFoundError(f"GGUF file {gguf_file!r} not found in {local}")
        if adapter is not None and not Path(adapter).expanduser().is_dir():
            raise NotFoundError(f"LoRA adapter directory not found: {adapter}")
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise BackendUnavailableError(
                f"the transformers backend needs torch and transformers: {INSTALL_HINT}"
            ) from exc
        source = str(local) if local.exists() else str(model_path)
        self._torch = torch
        self._transformers = transformers
        self.device = device or _default_device(torch)
        self._tokenizer: Any = transformers.AutoTokenizer.from_pretrained(
            source, gguf_file=gguf_file
        )
        self._model: Any = transformers.AutoModelForCausalLM.from_pretrained(
            source, gguf_file=gguf_file, **_dtype_kwargs(transformers, torch, dtype, self.device)
        )
        if adapter is not None:
            self._model = _with_adapter(self._model, Path(adapter).expanduser())
        self._model.to(self.device)
        self._model.eval()
        self.name = name or (Path(gguf_file).stem if gguf_file else Path(str(model_path)).name)
        self.context_window = int(getattr(self._model.config, "max_position_embeddings", 2048))
        self._lock = threading.Lock()

    def generate(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> Generator[str, None, None]:
        """Stream the reply to ``messages``; greedy when ``options.temperature`` is 0.

        ``model.generate`` runs in a background thread feeding a ``TextIteratorStreamer``;
        an exception raised there is re-raised here once the stream ends. Closing the
        generator early cancels generation and releases the model's lock.
        """
        with self._lock:
            streamer, worker, cancel, failure = self._start(messages, options)
            stop_filter = _StopFilter(options.stop)
            try:
                for piece in streamer:
                    text, stopped = stop_filter.feed(piece)
                    if text:
                        yield text
                    if stopped:
                        break
                else:
                    if tail := stop_filter.flush():
                        yield tail
            finally:
                cancel.set()  # a reader that stopped early should not wait for max_tokens
                worker.join()
            if failure:
                raise failure[0]

    def letter_logprobs(
        self, messages: Sequence[ChatMessage], letters: Sequence[str]
    ) -> dict[str, float]:
        """Log-probability of each of ``letters`` as the first token of the reply.

        One forward pass over the chat-templated prompt; the last position's logits are
        log-softmaxed over the vocabulary, and a letter's value is the log-sum-exp over its
        single-token spellings (``"A"``, ``" A"``).
        """
        tok, torch = self._tokenizer, self._torch
        ids = letter_token_ids(letters, lambda text: tok.encode(text, add_special_tokens=False))
        inputs = self._chat_inputs(messages)
        with self._lock, torch.inference_mode():
            logits = self._model(**inputs).logits[0, -1].float()
        logprobs = torch.log_softmax(logits, dim=-1)
        return pick_letter_logprobs(lambda t: [float(logprobs[i]) for i in t], ids)

    def count_tokens(self, text: str) -> int:
        """Return the number of tokens of ``text`` in the model's tokenizer (no specials)."""
        return len(self._tokenizer.encode(text, add_special_tokens=False))

    def _chat_inputs(self, messages: Sequence[ChatMessage]) -> Any:
        """The chat-templated prompt as model inputs on the model's device."""
        tok = self._tokenizer
        if not getattr(tok, "chat_template", None):
            raise ConfigError(
                f"{self.name} has no chat template (is it a base model?): "
                "use an instruction-tuned checkpoint or one whose tokenizer defines a template"
            )
        return tok.apply_chat_template(
            [{"role": m.role, "content": m.content} for m in messages],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        ).to(self.device)

    def _start(
        self, messages: Sequence[ChatMessage], options: GenerationOptions
    ) -> tuple[Any, threading.Thread, threading.Event, list[BaseException]]:
        tok, torch = self._tokenizer, self._torch
        inputs = self._chat_inputs(messages)
        streamer = self._transformers.TextIteratorStreamer(
            tok, skip_prompt=True, skip_special_tokens=True
        )
        kwargs: dict[str, Any] = {
            **inputs,
            "max_new_tokens": options.max_tokens,
            "streamer": streamer,
            "pad_token_id": tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
        }
        if options.temperature > 0:
            torch.manual_seed(options.seed)
            kwargs |= {
                "do_sample": True,
                "temperature": options.temperature,
                "top_p": options.top_p,
            }
        else:
            kwargs["do_sample"] = False
        if options.repeat_penalty != 1.0:
            kwargs["repetition_penalty"] = options.repeat_penalty
        if options.stop:
            kwargs |= {"stop_strings": list(options.stop), "tokenizer": tok}
        cancel = threading.Event()
        kwargs["stopping_criteria"] = self._transformers.StoppingCriteriaList(
            [_cancel_criterion(self._transformers, torch, cancel)]
        )
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    self._model.generate(**kwargs)
            except BaseException as exc:  # re-raised in the caller's thread
                failure.append(exc)
                streamer.end()  # unblock the reader, which would otherwise wait forever

        worker = threading.Thread(target=run, name=f"generate-{self.name}", daemon=True)
        worker.start()
        return streamer, worker, cancel, failure


class _StopFilter:
    """Cuts a text stream at the first stop string, holding back text that may begin one."""

    def __init__(self, stop: Sequence[str]) -> None:
        self._stop = [s for s in stop if s]
        self._buffer = ""

    def feed(self, piece: str) -> tuple[str, bool]:
        """Add ``piece``; return the text safe to emit and whether a stop string was hit."""
        self._buffer += piece
        hits = [i for s in self._stop if (i := self._buffer.find(s)) != -1]
        if hits:
            text, self._buffer = self._buffer[: min(hits)], ""
            return text, True
        cut = len(self._buffer) - self._partial_stop_length()
        text, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return text, False

    def _partial_stop_length(self) -> int:
        """Length of the longest end of the buffer that is the start of a stop string."""
        best = 0
        for s in self._stop:
            for n in range(min(len(s) - 1, len(self._buffer)), best, -1):
                if self._buffer.endswith(s[:n]):
                    best = n
                    break
        return best

    def flush(self) -> str:
        """Return what is still held back, at the end of the stream."""
        text, self._buffer = self._buffer, ""
        return text


def _cancel_criterion(transformers: Any, torch: Any, cancel: threading.Event) -> Any:
    """Return a stopping criterion that ends generation once ``cancel`` is set."""

    class _Cancelled(transformers.StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            done = cancel.is_set()
            return torch.full(
                (input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device
            )

    return _Cancelled()


def _default_device(torch: Any) -> str:
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def _dtype_kwargs(transformers: Any, torch: Any, dtype: Any, device: str) -> dict[str, Any]:
    if dtype is None:
        dtype = torch.float32 if device == "cpu" else "auto"
    elif isinstance(dtype, str) and dtype != "auto":
        dtype = getattr(torch, dtype)
    # transformers 4.56 renamed ``torch_dtype`` to ``dtype``.
    found = re.match(r"(\d+)\.(\d+)", transformers.__version__)
    version = (int(found[1]), int(found[2])) if found else (0, 0)
    return {"dtype": dtype} if version >= (4, 56) else {"torch_dtype": dtype}


def _with_adapter(model: Any, adapter: Path) -> Any:
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise BackendUnavailableError(f"loading a LoRA adapter needs peft: {INSTALL_HINT}") from exc
    return PeftModel.from_pretrained(model, str(adapter))
