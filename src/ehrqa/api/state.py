"""What the routes share: :class:`AppState` on ``app.state.ehrqa``, reached through
:func:`app_state`.

The app factory (:mod:`ehrqa.api.app`) builds the state and includes the routers; routers
import this module, never the factory, so imports point one way: app → routes → state.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TYPE_CHECKING

from ehrqa.api.audit import AuditLog
from ehrqa.api.limits import ApiLimits
from ehrqa.api.tokens import TokenStore
from ehrqa.cds.hooks import FeedbackStore
from ehrqa.conversation import MemoryConversations
from ehrqa.core.config import EhrqaConfig
from ehrqa.core.errors import BackendUnavailableError, EhrqaError
from ehrqa.store.base import RecordStore

if TYPE_CHECKING:
    from fastapi import Request

    from ehrqa.cds.sources import Library
    from ehrqa.llm.base import ChatModel
    from ehrqa.qa import QASystem

logger = logging.getLogger(__name__)


@dataclass
class AppState:
    """What the routes share: settings, data, access control and the fixed date (``now``).

    ``auth`` is None when the service runs without access control; ``audit`` None when
    no audit log is kept. ``model`` is the one chat model of the app, loaded on first use.
    """

    config: EhrqaConfig
    store: RecordStore | None
    library: Library | None
    feedback: FeedbackStore
    now: date | None = None
    auth: TokenStore | None = None
    audit: AuditLog | None = None
    limits: ApiLimits = field(default_factory=ApiLimits)
    model: ChatModel | None = None
    _qa: dict[str, QASystem] = field(default_factory=dict, repr=False)
    _qa_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _conversations: dict[str, MemoryConversations] = field(default_factory=dict, repr=False)

    def conversations(self, user: str) -> MemoryConversations:
        """The conversations of one signed-in user (kept in memory, never shared)."""
        with self._qa_lock:
            return self._conversations.setdefault(user, MemoryConversations())

    def today(self) -> date:
        """The date the decision support reasons at: the fixed ``now`` or today."""
        return self.now or date.today()

    def require_store(self) -> RecordStore:
        """The record store; 503 when the service has none."""
        if self.store is None:
            raise BackendUnavailableError(
                "this service has no record store: serve a data directory (ehrqa serve)"
            )
        return self.store

    def require_library(self) -> Library:
        """The document library; 503 when it is missing or empty."""
        if self.library is None or not self.library.documents():
            raise BackendUnavailableError(
                "this service has no document library: add the hospital's documents with "
                "`ehrqa docs add PATH…` (or run `ehrqa demo`) and restart ehrqa serve"
            )
        return self.library

    def qa_system(self, mode: str) -> QASystem:
        """The records-QA system for an answer mode, created on first use.

        One per mode (a system's answer mode is fixed), all sharing the app's one model,
        which lets one generation run at a time.
        """
        from ehrqa.qa import QASystem

        store = self.require_store()
        with self._qa_lock:
            if mode not in self._qa:
                config = replace(self.config, answer_mode=mode)
                self._qa[mode] = QASystem(config, store, model=self.model)
            return self._qa[mode]

    def warm(self) -> None:
        """Load the records-QA models of the configured mode (the reranker and the semantic
        matcher) before the first question; a failure is logged, and questions then load
        or fall back as they would have."""
        if self.store is None:
            return
        try:
            self.qa_system(self.config.answer_mode).warm()
        except EhrqaError as exc:
            logger.warning("the selector's models were not loaded at start: %s", exc)


def app_state(request: Request) -> AppState:
    """The :class:`AppState` of the app serving ``request``."""
    state: AppState = request.app.state.ehrqa
    return state
