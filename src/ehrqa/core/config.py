"""Configuration: one dataclass, resolved once at the edge.

Precedence: defaults < config file (``$EHRQA_HOME/config.toml`` or ``--config``) <
environment (``EHRQA_*``) < command-line flags.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import stat
import tomllib
import types
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import platformdirs

from ehrqa.core.errors import ConfigError

ENV_PREFIX = "EHRQA_"
T = TypeVar("T")
# The dates a question may be asked at ("today"): records span about a century, and a date
# outside these bounds is a typo, not a question ("Age 8039 on 9999-12-31").
EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(2200, 12, 31)
# The resolved config, hashes and metrics a trained model's folder carries (reranker, LoRA).
TRAINED_CONFIG_FILE = "ehrqa_config.json"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
logger = logging.getLogger(__name__)


def default_home() -> Path:
    """The data directory: ``$EHRQA_HOME`` or the user's data dir."""
    env = os.environ.get("EHRQA_HOME")
    return Path(env) if env else Path(platformdirs.user_data_dir("ehrqa"))


def shared_model_home() -> Path:
    """Where the ONNX forms of packaged models are kept (``<it>/cache/onnx``): the default
    data directory, shared by every ``--home``. They are named by the sha256 of the weights
    they come from, so one export serves every data directory."""
    return default_home()


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
    allowed_hosts: str = field(
        default="",
        metadata={
            "help": "comma-separated Host names `ehrqa serve` answers to besides loopback "
            "(127.0.0.1, localhost, ::1); without tokens it refuses every other Host"
        },
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

    def host_names(self) -> tuple[str, ...]:
        """The extra Host names of :attr:`allowed_hosts`, lower-cased, blanks dropped."""
        return tuple(h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip())


def check_day(day: date, where: str = "--now") -> date:
    """``day`` when it lies between :data:`EARLIEST_DAY` and :data:`LATEST_DAY`.

    ConfigError naming ``where`` (the flag or header it came from) otherwise.
    """
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ConfigError(
            f"{where} must be a date between {EARLIEST_DAY} and {LATEST_DAY}, got {day}"
        )
    return day


def private_dir(path: str | Path) -> Path:
    """The folder ``path``, created readable by its owner only (0700) when missing.

    An existing folder that other local users may enter is kept as it is, with one warning
    naming the ``chmod`` that fixes it: patient data must not be readable by them.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    warn_if_shared(path)
    return path


def private_file(path: str | Path) -> bool:
    """Create ``path`` empty and readable by its owner only (0600) unless it exists.

    Returns whether it was created. SQLite gives a database's ``-wal`` and ``-shm`` files
    the database file's mode, so creating the file first keeps those private too. An
    existing file is left as it is: callers warn about a looser one (:func:`warn_if_shared`)
    once they know it is theirs.
    """
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    os.close(handle)
    os.chmod(path, PRIVATE_FILE_MODE)  # the umask may have removed bits, never added them
    return True


def warn_if_shared(path: str | Path) -> bool:
    """Warn (once per path and mode) when group or others have any access to ``path``.

    Returns whether it is shared. The warning is one line naming the path and the
    ``chmod`` to run; a path that cannot be inspected is not warned about.
    """
    try:
        info = Path(path).stat()
    except OSError:
        return False
    mode = stat.S_IMODE(info.st_mode)
    if not mode & 0o077:
        return False
    _warn_shared(str(path), mode, stat.S_ISDIR(info.st_mode))
    return True


@functools.lru_cache(maxsize=64)
def _warn_shared(path: str, mode: int, is_dir: bool) -> None:
    wanted = PRIVATE_DIR_MODE if is_dir else PRIVATE_FILE_MODE
    kind = "folder" if is_dir else "file"
    logger.warning(
        "%s %s is open to other local users (mode %o): run `chmod %o %s`",
        kind,
        path,
        mode,
        wanted,
        path,
    )


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
