"""What every ``ehrqa`` command module shares: consoles, the resolved configuration, JSON
output, progress bars and opening the record store.

Commands live in :mod:`ehrqa.cli.main` and in one ``cli`` module per area (``ehrqa.cli.docs``,
``ehrqa.cli.cds``…), which import these instead of each other.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ehrqa.core.config import EhrqaConfig, check_day, load_config
from ehrqa.core.errors import ConfigError

if TYPE_CHECKING:
    from ehrqa.store.base import RecordStore

ANSWER_MODE_HELP = (
    "extractive (the default: composed by code from the records, no model) | hybrid (that "
    "answer first; a model rewrite replaces it only if it passes every check) | model"
)
ADAPTER_HELP = (
    "LoRA adapter: auto (the fine-tuned one packaged for the model and task, if any; the "
    "default), none, an `ehrqa train` folder or a .gguf file."
)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class State:
    """The global options (``--home``, ``--config``), kept on the Typer context."""

    config_file: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def config(self, **flags: Any) -> EhrqaConfig:
        """The configuration: defaults < file < environment < global and command flags."""
        return load_config(self.config_file, {**self.overrides, **flags})


def state(ctx: typer.Context) -> State:
    """The :class:`State` of this invocation."""
    return ctx.ensure_object(State)


def open_store(cfg: EhrqaConfig) -> RecordStore:
    """The configured record store: ``cfg.store`` (a PostgreSQL URL) or the data directory's.

    A ``--store`` whose folder does not exist is an error (a typo must not create an
    empty store somewhere); the data directory itself is created when missing.
    """
    from ehrqa.store import open_store as open_any_store
    from ehrqa.store import store_scheme

    if cfg.store and store_scheme(cfg.store) is None:
        path = Path(cfg.store).expanduser()
        if not path.exists() and not path.parent.is_dir():
            raise ConfigError(
                f"--store {cfg.store}: the folder {path.parent} does not exist: create it "
                "first, or give an existing store, folder or postgresql:// URL"
            )
    return open_any_store(cfg.store or cfg.home)


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout."""
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def parse_day(value: str | None, flag: str = "--now") -> date | None:
    """A ``YYYY-MM-DD`` flag value as a date between 1900 and 2200; ``None`` stays ``None``."""
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"{flag} must be a date like 2024-11-02, got {value!r}") from exc
    return check_day(day, flag)


def progress(label: str, disable: bool = False) -> Progress:
    """A progress bar on stderr (hidden when stderr is not a terminal)."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[name]}"),
        TimeElapsedColumn(),
        console=err,
        disable=disable or not err.is_terminal,
    )


def print_sources(lines: list[str], limit: int = 10) -> None:
    """A "Sources:" list of one line per cited source, the first ``limit`` of them."""
    if not lines:
        return
    out.print("\nSources:")
    for line in lines[:limit]:
        out.print(f"  {line}", markup=False)
    if len(lines) > limit:
        out.print(f"  … and {len(lines) - limit} more (--json lists all)")
