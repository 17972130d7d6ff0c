"""What a trained model's folder says about itself: its ``ehrqa_config.json``, typed both ways.

``ehrqa train`` writes one of these next to every model it trains, and the loaders read it
back as a frozen dataclass, never as a dict:

- :class:`TrainedReranker` (``ehrqa train t1``): the resolved :class:`RerankerConfig`, the
  base model, hashes of the pairs, the training run, validation metrics and the cut-off
  tuned on val, which :mod:`ehrqa.select.rerank` serves.
- :class:`TrainedAdapter` (``ehrqa train t2``, ``t1-llm``, ``seq``): the resolved
  :class:`LoraTrainConfig`, the training run and where the PEFT and GGUF adapters are.

:meth:`from_dict` checks what it reads: an unknown key, a value of the wrong type or a
missing required key is a :class:`~ehrqa.core.errors.ConfigError` naming the file and the
key (``training.steps``). Keys added since a folder was written take their defaults, so
older folders still load (the packaged reranker's has no ``checkpoint_steps``).
The trainers (:mod:`ehrqa.lab.train`) import these; nothing here imports them.
"""

from __future__ import annotations

import dataclasses
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar, Union, cast, get_args, get_origin, get_type_hints

import orjson

from ehrqa.core.config import TRAINED_CONFIG_FILE
from ehrqa.core.errors import ConfigError, NotFoundError

RERANKER_KIND = "ehrqa-reranker"
ADAPTER_KIND = "ehrqa-lora"
ADAPTER_TASKS = ("t1", "t2", "seq")
T = TypeVar("T")
_JSON_OPTIONS = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True)
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
        default=None, metadata={"help": "stop (and save) after this many seconds of training"}
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
            object.__setattr__(self, "lr", 5e-4 if self.lora_rank else 5e-5)
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


@dataclass(frozen=True)
class LoraTrainConfig:
    """How to LoRA-tune the chat model. Stored, resolved, with every trained adapter."""

    base_model: str = field(
        default="smollm2",
        metadata={"help": "smollm2, gemma3-270m, a .gguf file or a transformers checkpoint dir"},
    )
    rank: int = field(default=16, metadata={"help": "LoRA rank r"})
    alpha: float = field(default=32.0, metadata={"help": "LoRA alpha (scale = alpha / r)"})
    dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    target_modules: str = field(
        default="all-linear", metadata={"help": "'all-linear' or comma-separated module names"}
    )
    epochs: float = field(default=1.0, metadata={"help": "passes over the training examples"})
    batch_size: int = field(default=8, metadata={"help": "examples per optimizer step"})
    micro_batch_size: int = field(
        default=1, metadata={"help": "examples per forward pass (1 = no padding, best on CPU)"}
    )
    lr: float = field(default=2e-4, metadata={"help": "peak learning rate (AdamW)"})
    warmup_ratio: float = field(default=0.05, metadata={"help": "share of steps warming up"})
    max_length: int = field(
        default=1024, metadata={"help": "longest example in tokens; longer ones are dropped"}
    )
    max_examples: int | None = field(
        default=None, metadata={"help": "train on a seeded sample of this many examples"}
    )
    max_steps: int | None = field(default=None, metadata={"help": "stop after N steps"})
    max_seconds: float | None = field(
        default=None, metadata={"help": "stop (and save) after this many seconds of training"}
    )
    save_steps: int = field(default=25, metadata={"help": "checkpoint every N steps"})
    val_examples: int = field(default=32, metadata={"help": "validation examples for the loss"})
    dtype: str = field(
        default="auto", metadata={"help": "auto (bf16 on GPU, fp32 on CPU), float32, bfloat16"}
    )
    qlora: bool = field(default=False, metadata={"help": "load the base in 4 bits (bitsandbytes)"})
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "trade compute for memory (long sequences, big bases)"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the sample, shuffle and adapter init"})

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ConfigError(f"rank must be at least 1, got {self.rank}")
        if self.alpha <= 0:
            raise ConfigError(f"alpha must be positive, got {self.alpha}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.epochs <= 0:
            raise ConfigError(f"epochs must be positive, got {self.epochs}")
        if self.batch_size < 1 or self.micro_batch_size < 1:
            raise ConfigError("batch_size and micro_batch_size must be at least 1")
        if self.batch_size % self.micro_batch_size:
            raise ConfigError(
                f"batch_size ({self.batch_size}) must be a multiple of micro_batch_size "
                f"({self.micro_batch_size})"
            )
        if not 0 < self.lr < 1:
            raise ConfigError(f"lr must be in (0, 1), e.g. 2e-4; got {self.lr}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.max_length < 32:
            raise ConfigError(f"max_length must be at least 32 tokens, got {self.max_length}")
        for name in ("max_examples", "max_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be at least 1 or None, got {value}")
        if self.max_seconds is not None and self.max_seconds <= 0:
            raise ConfigError(f"max_seconds must be positive or None, got {self.max_seconds}")
        if self.save_steps < 1:
            raise ConfigError(f"save_steps must be at least 1, got {self.save_steps}")
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ConfigError(
                f"dtype must be auto, float32, bfloat16 or float16, got {self.dtype!r}"
            )

    @property
    def gradient_accumulation(self) -> int:
        """Micro-batches per optimizer step."""
        return self.batch_size // self.micro_batch_size

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form."""
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class RerankerRun:
    """How the reranker's training went."""

    trainable_parameters: int | None = None
    steps: int
    resumed_at_step: int = 0
    planned_steps: int
    stopped_early: bool = False  # by the max_seconds budget
    seconds: float
    loss_first: float | None = None
    loss_last_10: float | None = None  # the mean loss of the last 10 steps


@dataclass(frozen=True, kw_only=True)
class PairMetrics:
    """AUC and accuracy at 0.5 of scored pairs (``None`` where undefined: one class only)."""

    auc: float | None
    accuracy: float | None
    pairs: float
    positives: float


@dataclass(frozen=True, kw_only=True)
class CutoffScore:
    """Task 1 micro-F1 on the val questions of one cut-off mode and threshold."""

    mode: str
    threshold: float
    f1: float


@dataclass(frozen=True, kw_only=True)
class TunedCutoff:
    """The rerank selector's cut-off tuned on val (``ehrqa train t1``): its default mode
    and threshold."""

    mode: str
    threshold: float
    f1: float
    default_f1: float  # the rule-based selector's, on the same questions
    best_per_mode: dict[str, CutoffScore] = field(default_factory=dict)
    questions: int
    depth: int


class TrainedConfig:
    """What every trained model's config does: check itself in, and go to and from JSON."""

    KIND: ClassVar[str] = ""
    WHAT: ClassVar[str] = "trained model"
    HINT: ClassVar[str] = "train one with `ehrqa train`"

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (nested configs as objects)."""
        return asdict(cast(Any, self))

    @classmethod
    def from_dict(cls, data: Any, where: str = "the trained config") -> Self:
        """Check ``data`` (read from ``where``) and build the config from it."""
        if isinstance(data, dict) and "kind" in data:  # before its keys: another kind's differ
            _check_kind(cls, data["kind"], f"{where}: ")
        return _build(cls, data, where, "")

    @classmethod
    def read(cls, folder: str | Path) -> Self:
        """The config in ``folder``'s ``ehrqa_config.json``."""
        file = Path(folder) / TRAINED_CONFIG_FILE
        if not file.is_file():
            raise NotFoundError(f"no {cls.WHAT} in {folder} (no {TRAINED_CONFIG_FILE}): {cls.HINT}")
        try:
            data = orjson.loads(file.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{file}: not valid JSON ({exc})") from exc
        return cls.from_dict(data, str(file))

    def write(self, folder: str | Path) -> Path:
        """Write ``folder/ehrqa_config.json`` (a NaN metric becomes null); returns the file."""
        file = Path(folder) / TRAINED_CONFIG_FILE
        file.write_bytes(orjson.dumps(self.to_dict(), option=_JSON_OPTIONS))
        return file


def _check_kind(cls: type[TrainedConfig], kind: Any, where: str = "") -> None:
    if kind != cls.KIND:
        raise ConfigError(
            f"{where}kind is {kind!r}: this folder holds another kind of model, "
            f"not a {cls.WHAT} ({cls.KIND!r})"
        )


def _build(cls: type[T], data: Any, where: str, key: str) -> T:
    """``cls`` from the JSON object ``data``, each value checked against its annotation."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {key or 'the file'} must be a JSON object, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cast(Any, cls))}
    for name in data:
        if name not in fields:
            raise ConfigError(
                f"{where}: unknown key {_join(key, name)!r} (known: {', '.join(fields)})"
            )
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        if name in data:
            values[name] = _convert(hints[name], data[name], where, _join(key, name))
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing key {_join(key, name)!r}")
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {key + ': ' if key else ''}{exc}") from exc


def _convert(hint: Any, value: Any, where: str, key: str) -> Any:
    """``value`` as ``hint`` says (an int where a float is due becomes one), or a ConfigError."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):  # only `X | None` is used
        (kind,) = [a for a in args if a is not type(None)]
        return None if value is None else _convert(kind, value, where, key)
    if dataclasses.is_dataclass(hint):
        return _build(cast(type, hint), value, where, key)
    if origin is dict and isinstance(value, dict):
        return {k: _convert(args[1], v, where, _join(key, k)) for k, v in value.items()}
    if origin is list and isinstance(value, list):
        return [_convert(args[0], v, where, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    # bool is an int to Python, not to a config: `steps: true` is a mistake
    if (
        hint in (int, str, bool)
        and isinstance(value, hint)
        and (hint is bool) == (value is True or value is False)
    ):
        return value
    raise ConfigError(f"{where}: {key} must be {_type_name(hint)}, got {value!r}")


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _type_name(hint: Any) -> str:
    origin = get_origin(hint)
    if origin is dict:
        return "a JSON object"
    if origin is list:
        return "a JSON list"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


@dataclass(frozen=True, kw_only=True)
class TrainedReranker(TrainedConfig):
    """The ``ehrqa_config.json`` of a reranker trained by ``ehrqa train t1``."""

    KIND: ClassVar[str] = RERANKER_KIND
    WHAT: ClassVar[str] = "trained reranker"
    HINT: ClassVar[str] = "train one with `ehrqa train t1 --dataset QA.jsonl --out DIR`"

    kind: str = RERANKER_KIND
    config: RerankerConfig
    base_model: str  # the folder trained from, or the package it comes from
    train_pairs: int
    train_pairs_sha256: str
    val_pairs_sha256: str | None = None
    training: RerankerRun
    metrics: dict[str, PairMetrics]  # {"val": …}
    dataset: str | None = None
    dataset_sha256: str | None = None
    data_config: dict[str, Any] | None = None  # the lab's TrainingDataConfig, as written
    selector: TunedCutoff | None = None

    def __post_init__(self) -> None:
        _check_kind(type(self), self.kind)

    @property
    def val(self) -> PairMetrics | None:
        """The validation pairs' metrics."""
        return self.metrics.get("val")


@dataclass(frozen=True, kw_only=True)
class AdapterBase:
    """The base model an adapter was trained on: its name, and the GGUF it was converted for."""

    name: str
    gguf: str | None = None


@dataclass(frozen=True, kw_only=True)
class AdapterRun:
    """How an adapter's training went."""

    base: AdapterBase
    examples: int
    dropped_too_long: int
    trained_examples: int
    train_examples_sha256: str
    steps: int
    planned_steps: int
    stopped_early: bool = False
    resumed: bool = False
    seconds: float
    train_loss: float | None = None
    loss_first: float | None = None
    loss_last: float | None = None
    device: str
    val_loss: float | None = None
    val_examples: int | None = None


@dataclass(frozen=True, kw_only=True)
class TrainedAdapter(TrainedConfig):
    """The ``ehrqa_config.json`` of a LoRA adapter (``ehrqa train t2``, ``t1-llm``, ``seq``)."""

    KIND: ClassVar[str] = ADAPTER_KIND
    WHAT: ClassVar[str] = "fine-tuned adapter"
    HINT: ClassVar[str] = "train one with `ehrqa train t2`"

    kind: str = ADAPTER_KIND
    task: str
    config: LoraTrainConfig
    training: AdapterRun
    adapter: str | None = None  # the PEFT folder (None when only the GGUF is shipped)
    adapter_gguf: str | None = None  # the llama.cpp file, when the base could be converted
    adapter_gguf_note: str | None = None  # why it could not
    dataset: str | None = None
    dataset_sha256: str | None = None
    data_config: dict[str, Any] | None = None
    val_examples_sha256: dict[str, str] | None = None
    order: list[str] | None = None  # seq: the tasks in the order trained
    stage1: str | None = None  # seq: the first stage's folder

    def __post_init__(self) -> None:
        _check_kind(type(self), self.kind)
        if self.task not in ADAPTER_TASKS:
            raise ConfigError(f"task must be one of {', '.join(ADAPTER_TASKS)}, got {self.task!r}")
