"""Configuration: one dataclass, resolved once at the edge.

Precedence: defaults < config file (``$EHRQA_HOME/config.toml`` or ``--config``) <
environment (``EHRQA_*``) < command-line flags.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import platformdirs

from ehrqa.errors import ConfigError

ENV_PREFIX = "EHRQA_"
T = TypeVar("T")


def default_home() -> Path:
    """The data directory: ``$EHRQA_HOME`` or the user's data dir."""
    env = os.environ.get("EHRQA_HOME")
    return Path(env) if env else Path(platformdirs.user_data_dir("ehrqa"))


@dataclass
class EhrqaConfig:
    """Everything a question needs to be answered, with the embedded defaults."""

    home: str = field(default="", metadata={"help": "data directory (store, caches)"})
    store: str = field(
        default="",
        metadata={
            "help": "record store: a postgresql:// URL or a SQLite file; "
            "empty = <home>/ehrqa.sqlite3"
        },
    )
    model: str = field(
        default="smollm2",
        metadata={
            "help": "smollm2 | gemma3-270m | PATH.gguf | hf:DIR | http://host/v1#name | fake"
        },
    )
    adapter: str = field(
        default="auto",
        metadata={
            "help": "LoRA adapter for the model: auto (the one packaged for the model and "
            "task, if any) | none | PATH"
        },
    )
    selector: str = field(
        default="auto",
        metadata={"help": "Task 1 strategy: auto (the fine-tuned reranker if installed), …"},
    )
    answer_mode: str = field(
        default="extractive", metadata={"help": "extractive (no model) | hybrid | model"}
    )
    validator: str = field(default="fhirkit", metadata={"help": "fhirkit | fhir.resources | none"})
    n_ctx: int = field(default=4096, metadata={"help": "model context window in tokens"})
    n_threads: int = field(default=0, metadata={"help": "CPU threads for llama.cpp (0 = all)"})
    prompt_budget: int = field(default=1500, metadata={"help": "most prompt tokens"})
    max_tokens: int = field(default=160, metadata={"help": "most tokens to generate"})
    seed: int = field(default=0, metadata={"help": "generation seed"})
    embedder: str = field(
        default="minilm",
        metadata={"help": "document embedder: minilm | PATH (sentence-transformers) | hash"},
    )

    def __post_init__(self) -> None:
        if not self.home:
            self.home = str(default_home())
        for name in ("n_ctx", "prompt_budget", "max_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive number, got {getattr(self, name)}")
        if self.n_threads < 0:
            raise ConfigError(f"n_threads must be >= 0, got {self.n_threads}")

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as a plain dict (stored in reports)."""
        return dataclasses.asdict(self)


def _coerce(name: str, raw: Any, kind: Any) -> Any:
    if kind in (int, "int"):
        try:
            return int(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc
    return str(raw)


def load_config(
    config_file: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> EhrqaConfig:
    """Resolve the configuration: defaults < file < environment < ``overrides`` (flags)."""
    fields = {f.name: f.type for f in dataclasses.fields(EhrqaConfig)}
    values: dict[str, Any] = {}
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    home = overrides.get("home") or os.environ.get("EHRQA_HOME") or str(default_home())
    path = Path(config_file) if config_file else Path(home) / "config.toml"
    if config_file and not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML ({exc})") from exc
        for key, value in data.get("ehrqa", data).items():
            if key not in fields:
                raise ConfigError(f"{path}: unknown setting {key!r}; known: {', '.join(fields)}")
            values[key] = _coerce(key, value, fields[key])
    for key, kind in fields.items():
        env = os.environ.get(ENV_PREFIX + key.upper())
        if env is not None and env != "":
            values[key] = _coerce(ENV_PREFIX + key.upper(), env, kind)
    values.update({k: _coerce(k, v, fields[k]) for k, v in overrides.items() if k in fields})
    values["home"] = str(values.get("home") or home)
    return EhrqaConfig(**values)


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _check_type(where: str, value: Any, hint: Any) -> None:
    """Raise a ConfigError naming ``where`` when ``value`` is not of the plain type ``hint``.

    Handles ``int``, ``float`` (an integer is accepted), ``str``, ``bool`` and their optional
    forms; any other annotation is left to the dataclass's own validation.
    """
    union = get_origin(hint) in (Union, types.UnionType)
    kinds = [k for k in (get_args(hint) if union else (hint,)) if k is not type(None)]
    if not kinds or any(k not in _TYPE_NAMES for k in kinds):
        return
    for kind in kinds:
        if isinstance(value, bool):
            if kind is bool:
                return
        elif (kind is float and isinstance(value, int | float)) or isinstance(value, kind):
            return
    wanted = " or ".join(_TYPE_NAMES[k] for k in kinds)
    raise ConfigError(f"{where} must be {wanted}, got {value!r}")


def load_dataclass(
    cls: type[T], config_file: str | Path | None, overrides: dict[str, Any] | None = None
) -> T:
    """Build a dataclass config: its defaults < a TOML file's values < ``overrides`` (flags).

    ``overrides`` that are ``None`` are ignored, so unset CLI flags keep the file's values.
    Unknown keys in the file are an error naming the file and the known keys; the
    dataclass's own ``__post_init__`` validates the values.
    """
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML ({exc})") from exc
        hints = get_type_hints(cls)
        for key, value in data.items():
            if key not in names:
                raise ConfigError(f"{path}: unknown setting {key!r}; known: {', '.join(names)}")
            _check_type(f"{path}: {key}", value, hints[key])
            values[key] = value
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return cls(**values)
    except TypeError as exc:
        raise ConfigError(f"invalid {cls.__name__}: {exc}") from exc
