"""Registries that map names to lazily imported objects (``"module:attr"``).

Heavy imports (llama_cpp, torch) happen only when an entry is resolved, so listing the
available backends is cheap and an unused backend never needs to be installed.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from typing import Generic, TypeVar

from ehrqa.errors import NotFoundError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names mapped to ``"module:attr"`` targets or to objects, resolved on first use."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, str | T] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, target: str | T, help: str = "") -> None:
        """Register ``target`` (an object or a lazy ``"module:attr"`` string) under ``name``."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = target
        self._help[name] = help

    def get(self, name: str) -> T:
        """Return the object registered as ``name``, importing it if needed."""
        if name not in self._entries:
            close = difflib.get_close_matches(name, list(self._entries), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            available = ", ".join(sorted(self._entries))
            raise NotFoundError(f"unknown {self.kind} {name!r}: {hint}available: {available}")
        target = self._entries[name]
        if isinstance(target, str) and ":" in target:
            module_name, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module_name), attr)
            self._entries[name] = target
        return target  # type: ignore[return-value]

    def describe(self, name: str) -> str:
        """Return the one-line help text of ``name``."""
        return self._help.get(name, "")

    def names(self) -> list[str]:
        """Return the registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
