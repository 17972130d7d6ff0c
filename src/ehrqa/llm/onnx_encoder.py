"""Cross-encoders and bi-encoders run by ONNX Runtime: numpy in, numpy out, no torch.

A prepared model is a folder of three files, written by :mod:`ehrqa.llm.onnx_export` where
torch is installed (training, ``ehrqa models prepare``, or the first use)::

    model.onnx        the network; a cross-encoder outputs one logit per pair, a bi-encoder
                      one mean-pooled, L2-normalised vector per text (pooling in the graph)
    tokenizer.json    the `tokenizers` file of the model's tokenizer
    ehrqa_onnx.json   what it is: kind, max_length, dim, the source it was exported from

The metadata file is written last, so a folder without it is incomplete and never read.
Loading costs ~0.5 s (ONNX Runtime reading 90 MB); callers keep the object for the process.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import orjson

from ehrqa.core.errors import BackendUnavailableError, NotFoundError

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "META_FILE",
    "ONNX_FILE",
    "TOKENIZER_FILE",
    "OnnxBiEncoder",
    "OnnxCrossEncoder",
    "PairScorer",
    "is_prepared",
    "read_meta",
]

ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
META_FILE = "ehrqa_onnx.json"
BATCH_SIZE = 32  # sequences per run: bounded memory, little padding after sorting by length
INSTALL = "pip install onnxruntime tokenizers"


@runtime_checkable
class PairScorer(Protocol):
    """A cross-encoder: ``score`` gives the relevance probability of each (query, document)."""

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """One probability in [0, 1] per pair, in order."""
        ...


def is_prepared(folder: str | Path) -> bool:
    """Whether ``folder`` holds a complete prepared model (its metadata is written last)."""
    return (Path(folder) / META_FILE).is_file() and (Path(folder) / ONNX_FILE).is_file()


def read_meta(folder: str | Path) -> dict[str, Any]:
    """The ``ehrqa_onnx.json`` of a prepared model folder."""
    file = Path(folder) / META_FILE
    if not file.is_file():
        raise NotFoundError(f"no prepared ONNX model in {folder} (no {META_FILE})")
    meta: dict[str, Any] = orjson.loads(file.read_bytes())
    return meta


class _OnnxModel:
    """What both kinds share: the session, the tokenizer and batched runs sorted by length."""

    kind = ""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        meta = read_meta(self.folder)
        if meta.get("kind") != self.kind:
            raise NotFoundError(
                f"{self.folder} holds a {meta.get('kind')!r} ONNX model, not a {self.kind!r}"
            )
        self.max_length = int(meta["max_length"])
        self.meta = meta
        self._tokenizer = _tokenizer(self.folder / TOKENIZER_FILE, self.max_length)
        self._session = _session(self.folder / ONNX_FILE)
        self._inputs = {i.name for i in self._session.get_inputs()}

    def _run(self, encodings: list[Any]) -> np.ndarray:
        """The model's first output for each encoding, in order (batches of similar length)."""
        import numpy as np

        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        rows: list[np.ndarray] = [np.empty(0)] * len(encodings)
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            width = max(len(encodings[i].ids) for i in batch)
            feeds = {
                name: np.array(
                    [_padded(getattr(encodings[i], attr), width) for i in batch], dtype=np.int64
                )
                for name, attr in _FEEDS.items()
                if name in self._inputs
            }
            out = self._session.run(None, feeds)[0]
            for row, i in enumerate(batch):
                rows[i] = out[row]
        return np.stack(rows)


_FEEDS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}


def _padded(values: list[int], width: int) -> list[int]:
    return values + [0] * (width - len(values))  # pad id, mask and type id are all 0


class OnnxCrossEncoder(_OnnxModel):
    """A cross-encoder with one output logit; :meth:`score` gives its sigmoid."""

    kind = "cross-encoder"

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Relevance probabilities (sigmoid of the logit) of ``(query, document)`` pairs."""
        if not pairs:
            return []
        encodings = self._tokenizer.encode_batch([(q, d) for q, d in pairs])
        logits = self._run(encodings).reshape(len(pairs), -1)[:, 0]
        return [_sigmoid(float(x)) for x in logits]


class OnnxBiEncoder(_OnnxModel):
    """A sentence embedder (the :class:`~ehrqa.llm.embed.Embedder` protocol): unit rows."""

    kind = "bi-encoder"

    def __init__(self, folder: str | Path, *, name: str | None = None) -> None:
        super().__init__(folder)
        self.dim = int(self.meta["dim"])
        self.name = name or str(self.meta.get("name") or f"onnx:{self.folder.resolve()}")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return one L2-normalised float32 row per text."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._run(self._tokenizer.encode_batch(list(texts)))
        return np.asarray(vectors, dtype=np.float32)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _tokenizer(file: Path, max_length: int) -> Any:
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise BackendUnavailableError(f"ONNX models need tokenizers: {INSTALL}") from exc
    if not file.is_file():
        raise NotFoundError(f"the prepared model has no {file.name}: prepare it again")
    tokenizer = Tokenizer.from_file(str(file))
    # The packaged file pads every text to 128 tokens; pad per batch and cut at max_length,
    # as the torch model was run.
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length, strategy="longest_first")
    return tokenizer


def _session(file: Path) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise BackendUnavailableError(f"ONNX models need onnxruntime: {INSTALL}") from exc
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings describe graph rewrites
    try:
        return ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for a bad file
        message = f"{file} is not a loadable ONNX model ({exc}): prepare it again"
        raise NotFoundError(message) from exc
