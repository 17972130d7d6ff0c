"""LoRA / QLoRA supervised fine-tuning of a small chat model, top to bottom.

chat examples (prompt messages → one assistant reply) → resolve the base model (a GGUF is
dequantised once into a cached transformers checkpoint) → drop examples longer than
``max_length`` (truncation would cut the answer off) → wrap with a PEFT LoRA adapter →
train with trl's ``SFTTrainer`` (loss on the reply's tokens only, checkpoints, resume) →
save the adapter, its GGUF conversion for llama.cpp, ``ehrqa_config.json`` (a
:class:`~ehrqa.llm.trained.TrainedAdapter`: resolved config, data hashes, training log,
validation loss) and ``MODEL_CARD.md``.

The same code runs on a GPU (set ``dtype="bfloat16"``, a bigger ``batch_size`` and
``micro_batch_size``, ``qlora=True`` for 4-bit bases of 3–8B models) and on the CPU, where
one micro-batch per sequence avoids padding. torch, transformers, peft and trl are imported
inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ehrqa.core.config import TRAINED_CONFIG_FILE
from ehrqa.core.errors import BackendUnavailableError, ConfigError, NotFoundError
from ehrqa.lab.train.callbacks import time_budget
from ehrqa.llm.trained import (  # what a trained adapter's folder says about itself
    ADAPTER_KIND,
    AdapterBase,
    AdapterRun,
    LoraTrainConfig,
    TrainedAdapter,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

CONFIG_FILE = TRAINED_CONFIG_FILE
CARD_FILE = "MODEL_CARD.md"
ADAPTER_DIR = "adapter"
ADAPTER_GGUF = "adapter.gguf"
CHECKPOINTS_DIR = "checkpoints"
KIND = ADAPTER_KIND
INSTALL_HINT = "pip install torch==2.13.0, then pip install 'ehrqa[train]'"


@dataclass
class ChatExample:
    """One supervised example: the prompt's messages and the reply to learn."""

    id: str
    messages: list[dict[str, str]]
    target: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


@dataclass(frozen=True)
class BaseModel:
    """Where the base model is: a transformers checkpoint, and the GGUF served by llama.cpp.

    ``checkpoint`` is what training loads. ``gguf`` is the llama.cpp file the adapter is
    converted for (``None`` when the base is a transformers checkpoint only); ``name`` is
    what the model card and ``ehrqa_config.json`` record.
    """

    name: str
    checkpoint: Path
    gguf: Path | None


def examples_hash(examples: Sequence[ChatExample]) -> str:
    """SHA-256 of the examples' canonical JSONL (recorded with every trained adapter)."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(orjson.dumps(example.to_dict(), option=orjson.OPT_SORT_KEYS) + b"\n")
    return digest.hexdigest()


def _cache_root(cache_dir: str | Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    import platformdirs

    return Path(platformdirs.user_cache_dir("ehrqa")) / "models"


def resolve_base(spec: str, cache_dir: str | Path | None = None) -> BaseModel:
    """Resolve ``spec`` to a trainable checkpoint, dequantising a GGUF base once (cached).

    A GGUF is dequantised by transformers (~30 s for SmolLM2-135M) and saved under
    ``cache_dir`` (default: the user cache directory) next to its tokenizer, so later runs
    load it in seconds. The cached copy is keyed by the GGUF's name and size.
    """
    from ehrqa.llm import gemma3_270m_path, parse_model_spec, smollm2_path

    parsed = parse_model_spec(spec)
    if parsed.backend in ("openai", "fake"):
        raise ConfigError(
            f"cannot fine-tune {spec!r}: training needs local weights "
            "(smollm2, gemma3-270m, a .gguf file or a transformers checkpoint directory)"
        )
    if parsed.backend == "transformers" and not parsed.model:
        folder = Path(parsed.location).expanduser()
        if not (folder / "config.json").is_file():
            raise NotFoundError(f"base model {spec!r}: no config.json in {folder}")
        return BaseModel(folder.name, folder, None)
    if parsed.alias == "smollm2":
        gguf = smollm2_path()
    elif parsed.alias == "gemma3-270m":
        gguf = gemma3_270m_path()
    elif parsed.backend == "transformers":
        gguf = Path(parsed.location).expanduser() / parsed.model
    else:
        gguf = Path(parsed.location).expanduser()
    if not gguf.is_file():
        raise NotFoundError(f"base model GGUF not found: {gguf}")
    target = _cache_root(cache_dir) / f"hf-{gguf.stem}-{gguf.stat().st_size}"
    if not (target / "config.json").is_file():
        _dequantise(gguf, target)
    return BaseModel(parsed.alias or gguf.stem, target, gguf)


def _dequantise(gguf: Path, target: Path) -> None:
    """Save ``gguf`` as a float32 transformers checkpoint in ``target`` (atomically)."""
    transformers, torch = _import_training()[:2]
    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
    )
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # The weights are plain tensors now; the GGUF "quantizer" only blocks saving and training.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(str(partial))
    tokenizer.save_pretrained(str(partial))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(partial, target)


def _import_training() -> tuple[Any, Any, Any, Any]:
    try:
        import peft
        import torch
        import transformers
        import trl
    except ImportError as exc:
        raise BackendUnavailableError(
            f"fine-tuning needs torch, transformers, peft and trl: {INSTALL_HINT}"
        ) from exc
    return transformers, torch, peft, trl


def _torch_dtype(torch: Any, config: LoraTrainConfig) -> Any:
    if config.dtype == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return getattr(torch, config.dtype)


def load_for_training(
    base: BaseModel, config: LoraTrainConfig
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The base model (4-bit when ``qlora``) and its tokenizer, ready for a LoRA wrap."""
    transformers, torch, peft, _ = _import_training()
    kwargs: dict[str, Any] = {"dtype": _torch_dtype(torch, config)}
    if config.qlora:
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=kwargs["dtype"],
        )
    model = transformers.AutoModelForCausalLM.from_pretrained(str(base.checkpoint), **kwargs)
    if config.qlora:
        model = peft.prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.gradient_checkpointing
        )
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(base.checkpoint))
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            f"base model {base.name} has no chat template: give an instruction-tuned model, "
            "or a checkpoint whose tokenizer defines one"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _template_ids(tokenizer: Any, messages: list[dict[str, str]], **kwargs: Any) -> list[int]:
    ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False, **kwargs)
    return list(ids["input_ids"] if isinstance(ids, dict) else ids)


def example_length(tokenizer: Any, example: ChatExample) -> int:
    """Tokens of the example's prompt and reply in the model's chat template."""
    turn = [*example.messages, {"role": "assistant", "content": example.target}]
    return len(_template_ids(tokenizer, turn))


def _sample(examples: Sequence[ChatExample], k: int | None, seed: int) -> list[ChatExample]:
    """A seeded sample of ``k`` examples in their original order (all when ``k`` is None)."""
    import random

    if k is None or k >= len(examples):
        return list(examples)
    keep = set(random.Random(f"sample:{seed}").sample(range(len(examples)), k))
    return [e for i, e in enumerate(examples) if i in keep]


def _fitting(
    tokenizer: Any, examples: Sequence[ChatExample], config: LoraTrainConfig
) -> list[ChatExample]:
    """The first ``config.val_examples`` of ``examples`` that fit in ``max_length``."""
    fit: list[ChatExample] = []
    for example in examples:
        if len(fit) == config.val_examples:
            break
        if example_length(tokenizer, example) <= config.max_length:
            fit.append(example)
    return fit


def _rows(examples: Sequence[ChatExample]) -> list[dict[str, Any]]:
    """trl's conversational prompt–completion rows (loss on the completion only)."""
    return [
        {
            "prompt": e.messages,
            "completion": [{"role": "assistant", "content": e.target}],
        }
        for e in examples
    ]


def _lora_config(peft: Any, config: LoraTrainConfig) -> Any:
    targets: str | list[str] = config.target_modules
    if config.target_modules != "all-linear":
        targets = [t.strip() for t in config.target_modules.split(",") if t.strip()]
    return peft.LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )


def _sft_args(trl: Any, config: LoraTrainConfig, out: Path) -> Any:
    import torch

    bf16 = _torch_dtype(torch, config) == torch.bfloat16
    return trl.SFTConfig(
        output_dir=str(out / CHECKPOINTS_DIR),
        per_device_train_batch_size=config.micro_batch_size,
        per_device_eval_batch_size=config.micro_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        learning_rate=config.lr,
        lr_scheduler_type="linear",
        warmup_steps=config.warmup_ratio,  # a float < 1 is a ratio of the total steps
        max_length=config.max_length,
        completion_only_loss=True,
        gradient_checkpointing=config.gradient_checkpointing,
        bf16=bf16 and torch.cuda.is_available(),
        save_steps=config.save_steps,
        save_total_limit=1,
        logging_steps=max(1, min(10, config.save_steps)),
        eval_strategy="no",
        report_to=[],
        seed=config.seed,
        data_seed=config.seed,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )


def fit_lora(
    examples: Sequence[ChatExample],
    config: LoraTrainConfig,
    out_dir: str | Path,
    *,
    val_examples: Sequence[ChatExample] = (),
    init_adapter: str | Path | None = None,
    resume: bool = True,
    cache_dir: str | Path | None = None,
) -> tuple[Any, Any, AdapterRun]:
    """Train a LoRA adapter on ``examples``; returns (peft model, tokenizer, run record).

    The run record holds the validation loss (mean reply-token loss) over up to
    ``config.val_examples`` of ``val_examples`` when any are given.

    ``init_adapter`` continues training an existing adapter (sequential fine-tuning);
    ``resume`` picks up the newest checkpoint in ``out_dir/checkpoints`` of an interrupted
    run with the same data and config.
    """
    transformers, torch, peft, trl = _import_training()
    from datasets import Dataset

    out = Path(out_dir)
    base = resolve_base(config.base_model, cache_dir)
    transformers.set_seed(config.seed)
    model, tokenizer = load_for_training(base, config)
    chosen = _sample(examples, config.max_examples, config.seed)
    kept = [e for e in chosen if example_length(tokenizer, e) <= config.max_length]
    if not kept:
        raise ConfigError(
            f"all {len(chosen)} examples are longer than max_length={config.max_length} tokens"
        )
    if init_adapter is not None:
        model = peft.PeftModel.from_pretrained(model, str(init_adapter), is_trainable=True)
        peft_config = None
    else:
        peft_config = _lora_config(peft, config)
    val = _fitting(tokenizer, _sample(val_examples, 4 * config.val_examples, config.seed), config)
    budget = time_budget(config.max_seconds)
    trainer = trl.SFTTrainer(
        model=model,
        args=_sft_args(trl, config, out),
        train_dataset=Dataset.from_list(_rows(kept)),
        eval_dataset=Dataset.from_list(_rows(val)) if val else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[budget],
    )
    checkpoint = resume and any((out / CHECKPOINTS_DIR).glob("checkpoint-*"))
    started = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=True if checkpoint else None)
    seconds = time.perf_counter() - started
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    # Mean reply-token loss on held-out examples, tokenised by trl as for training.
    val_loss = round(float(trainer.evaluate()["eval_loss"]), 4) if val else None
    run = AdapterRun(
        base=AdapterBase(name=base.name, gguf=str(base.gguf) if base.gguf else None),
        examples=len(chosen),
        dropped_too_long=len(chosen) - len(kept),
        trained_examples=len(kept),
        train_examples_sha256=examples_hash(kept),
        steps=int(trainer.state.global_step),
        planned_steps=int(trainer.state.max_steps),
        stopped_early=budget.stopped_early,
        resumed=bool(checkpoint),
        seconds=round(seconds, 1),
        train_loss=round(float(result.training_loss), 4),
        loss_first=losses[0] if losses else None,
        loss_last=losses[-1] if losses else None,
        device="cuda" if torch.cuda.is_available() else "cpu",
        val_loss=val_loss,
        val_examples=len(val) if val else None,
    )
    trainer.model.eval()
    return trainer.model, tokenizer, run


def save_lora(
    model: Any,
    run: AdapterRun,
    config: LoraTrainConfig,
    out_dir: str | Path,
    *,
    task: str,
    extra: dict[str, Any] | None = None,
    keep_checkpoints: bool = False,
) -> Path:
    """Save the adapter, its GGUF conversion (when the base is a GGUF), config and card.

    ``extra`` holds the other fields of :class:`~ehrqa.llm.trained.TrainedAdapter` (the
    dataset, its hash, the data config, …).
    """
    from ehrqa.lab.train.gguf_lora import UnsupportedArchitectureError, export_gguf_lora

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out / ADAPTER_DIR))
    gguf_note = None
    base_gguf = run.base.gguf
    if base_gguf:
        try:
            export_gguf_lora(out / ADAPTER_DIR, Path(base_gguf), out / ADAPTER_GGUF)
        except UnsupportedArchitectureError as exc:
            gguf_note = str(exc)
    meta = TrainedAdapter(
        task=task,
        config=config,
        training=run,
        adapter=ADAPTER_DIR,
        adapter_gguf=ADAPTER_GGUF if (out / ADAPTER_GGUF).is_file() else None,
        adapter_gguf_note=gguf_note,
        **(extra or {}),
    )
    meta.write(out)
    (out / CARD_FILE).write_text(model_card(meta), encoding="utf-8")
    if not keep_checkpoints:
        shutil.rmtree(out / CHECKPOINTS_DIR, ignore_errors=True)
    return out


def read_meta(path: str | Path) -> TrainedAdapter:
    """The ``ehrqa_config.json`` of an adapter folder written by :func:`save_lora`, checked."""
    return TrainedAdapter.read(path)


_TASKS = {
    "t1": "judging whether one FHIR resource is relevant to a question (Task 1, relevance)",
    "t2": "answering a question from the FHIR resources given in the prompt, citing them (Task 2)",
    "seq": "both tasks, trained one after the other (sequential fine-tuning)",
}


def model_card(meta: TrainedAdapter) -> str:
    """The model card of a trained adapter."""
    run, config = meta.training, meta.config
    serving = (
        f"`ehrqa ask --model {run.base.name} --adapter DIR` (llama.cpp, `{ADAPTER_GGUF}`)"
        if meta.adapter_gguf
        else f"`--model hf:BASE --adapter DIR` (transformers; {meta.adapter_gguf_note})"
    )
    return f"""# ehrqa LoRA adapter ({meta.task})

- **Task:** {_TASKS.get(meta.task, meta.task)}.
- **Base model:** {run.base.name} (licence: that of the base model; SmolLM2 is
  Apache-2.0, Gemma 3 is under the Gemma terms of use). The adapter adds LoRA rank
  {config.rank}, alpha {config.alpha} on `{config.target_modules}`.
- **Training data:** {run.trained_examples} examples built from a gold-labelled synthetic QA
  dataset (Synthea-style patients; sha256 {(meta.dataset_sha256 or "?")[:12]}…),
  examples sha256 {run.train_examples_sha256[:12]}…; {run.dropped_too_long} longer than
  {config.max_length} tokens dropped.
- **Training:** {run.steps} of {run.planned_steps} steps in {run.seconds} s on
  {run.device}{" (stopped by the time budget)" if run.stopped_early else ""};
  train loss {run.train_loss}, validation loss {run.val_loss}.
- **Serving:** {serving}.
- **Intended use:** answering and selecting within ehrqa on the machine that holds the
  records; every answer is checked against the cited records by ehrqa's verifier.
- **Limits:** trained on synthetic records and template questions; small models still make
  mistakes, so unverified answers must not be shown as facts. Not a medical device.

Resolved config, data hashes and the training log: `{CONFIG_FILE}`.
"""


def train_lora(
    examples: Sequence[ChatExample],
    config: LoraTrainConfig,
    out_dir: str | Path,
    *,
    task: str,
    val_examples: Sequence[ChatExample] = (),
    init_adapter: str | Path | None = None,
    extra: dict[str, Any] | None = None,
    cache_dir: str | Path | None = None,
    on_trained: Callable[[Any, Any], None] | None = None,
) -> Path:
    """Fine-tune on ``examples`` and save everything to ``out_dir`` (see module docstring)."""
    model, tokenizer, run = fit_lora(
        examples,
        config,
        out_dir,
        val_examples=val_examples,
        init_adapter=init_adapter,
        cache_dir=cache_dir,
    )
    if on_trained is not None:
        on_trained(model, tokenizer)
    return save_lora(model, run, config, out_dir, task=task, extra=extra)
