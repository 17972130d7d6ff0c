"""Registries that map names to lazily imported objects (``"module:attr"``).

Heavy imports (llama_cpp, torch) happen only when an entry is resolved, so listing the
available backends is cheap and an unused backend never needs to be installed.

A registry made with an ``entry_point_group`` also offers what other installed packages
declare in that group of ``importlib.metadata`` entry points (e.g. a plugin's
``[project.entry-points."ehrqa.selectors"] mine = "ehrqa_mine:MySelector"``). The group is
read on the first lookup, not at import, and an entry point's module is imported only when
its name is asked for. A built-in name wins over a plugin's.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import logging
from collections.abc import Iterator
from typing import Generic, TypeVar

from ehrqa.core.errors import NotFoundError

T = TypeVar("T")

logger = logging.getLogger(__name__)


class Registry(Generic[T]):
    """Names mapped to ``"module:attr"`` targets, entry points or objects, resolved on use."""

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, str | importlib.metadata.EntryPoint | T] = {}
        self._help: dict[str, str] = {}
        self._plugins_loaded = entry_point_group is None

    def register(self, name: str, target: str | T, help: str = "") -> None:
        """Register ``target`` (an object or a lazy ``"module:attr"`` string) under ``name``."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = target
        self._help[name] = help

    def get(self, name: str) -> T:
        """Return the object registered as ``name``, importing it if needed."""
        self._load_plugins()
        if name not in self._entries:
            close = difflib.get_close_matches(name, list(self._entries), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            available = ", ".join(sorted(self._entries))
            raise NotFoundError(f"unknown {self.kind} {name!r}: {hint}available: {available}")
        target = self._entries[name]
        if isinstance(target, importlib.metadata.EntryPoint):
            target = target.load()
            self._entries[name] = target
        elif isinstance(target, str) and ":" in target:
            module_name, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module_name), attr)
            self._entries[name] = target
        return target  # type: ignore[return-value]

    def describe(self, name: str) -> str:
        """Return the one-line help text of ``name``."""
        self._load_plugins()
        return self._help.get(name, "")

    def names(self) -> list[str]:
        """Return the registered names, sorted."""
        self._load_plugins()
        return sorted(self._entries)

    def _load_plugins(self) -> None:
        """Add the entry points of this registry's group, once, without importing them."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for entry in importlib.metadata.entry_points(group=self.entry_point_group or ""):
            if entry.name in self._entries:
                logger.warning(
                    "%s %r from entry point %s is ignored: the name is taken",
                    self.kind,
                    entry.name,
                    entry.value,
                )
                continue
            self._entries[entry.name] = entry
            dist = entry.dist.name if entry.dist is not None else "an installed package"
            self._help[entry.name] = f"from {dist} ({entry.value})"

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
