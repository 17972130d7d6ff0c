"""Conversations: the questions asked so far under one conversation id, so a follow-up
("Is it getting better?") can be resolved (:func:`ehrqa.select.followup.resolve_followup`).

Two stores with one interface: :class:`FileConversations` keeps each conversation as a JSON
file in the data directory (the CLI: each ``ehrqa ask`` is a new process), written
atomically and readable by the owner only; :class:`MemoryConversations` keeps them in the
server's memory, bounded, for the HTTP API. A conversation remembers its last
:data:`MAX_TURNS` questions; questions are patient data and never go to logs.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

from ehrqa.core.errors import ConfigError

MAX_TURNS = 20
MAX_CONVERSATIONS = 1000  # kept in a server's memory; the least recently used go first
_ID_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def check_conversation_id(conversation: str) -> str:
    """``conversation`` when it is a valid id (1-64 letters, digits, ``_.-``), else an error."""
    if not _ID_RE.match(conversation) or conversation.strip(".") == "":
        raise ConfigError(
            f"conversation id {conversation!r} is not valid: use 1-64 letters, digits, "
            "'_', '-' or '.'"
        )
    return conversation


class Conversations(Protocol):
    """Where a conversation's earlier questions are kept."""

    def history(self, patient_id: str, conversation: str) -> list[str]:
        """The conversation's questions so far, oldest first (empty when new)."""
        ...

    def add(self, patient_id: str, conversation: str, question: str) -> None:
        """Remember ``question`` (as resolved) as the conversation's latest turn."""
        ...


class MemoryConversations:
    """Conversations in memory (a server's), at most :data:`MAX_CONVERSATIONS`, thread-safe."""

    def __init__(self, limit: int = MAX_CONVERSATIONS) -> None:
        self.limit = limit
        self._turns: OrderedDict[tuple[str, str], list[str]] = OrderedDict()
        self._lock = threading.Lock()

    def history(self, patient_id: str, conversation: str) -> list[str]:
        """The conversation's questions so far, oldest first."""
        key = (patient_id, check_conversation_id(conversation))
        with self._lock:
            return list(self._turns.get(key, ()))

    def add(self, patient_id: str, conversation: str, question: str) -> None:
        """Remember ``question`` as the latest turn; drop the least recent conversation."""
        key = (patient_id, check_conversation_id(conversation))
        with self._lock:
            turns = self._turns.pop(key, [])
            self._turns[key] = [*turns, question][-MAX_TURNS:]
            while len(self._turns) > self.limit:
                self._turns.popitem(last=False)


class FileConversations:
    """Conversations as JSON files under ``folder`` (0600 files in a 0700 folder)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _path(self, patient_id: str, conversation: str) -> Path:
        check_conversation_id(conversation)
        safe_patient = re.sub(r"[^A-Za-z0-9_.-]", "_", patient_id)[:64]
        return self.folder / f"{safe_patient}--{conversation}.json"

    def history(self, patient_id: str, conversation: str) -> list[str]:
        """The conversation's questions so far, oldest first."""
        path = self._path(patient_id, conversation)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"conversation file {path} cannot be read ({exc}): delete it"
            ) from exc
        turns = data.get("questions") if isinstance(data, dict) else None
        if not isinstance(turns, list) or not all(isinstance(t, str) for t in turns):
            raise ConfigError(f"conversation file {path} is not a conversation: delete it")
        return turns

    def add(self, patient_id: str, conversation: str, question: str) -> None:
        """Remember ``question``: the file is replaced atomically, never half-written."""
        path = self._path(patient_id, conversation)
        turns = [*self.history(patient_id, conversation), question][-MAX_TURNS:]
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, tmp = tempfile.mkstemp(dir=self.folder, prefix=".conversation-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump({"questions": turns}, out)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
