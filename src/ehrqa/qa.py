"""Records QA end to end: select the resources (Task 1), then answer from them (Task 2).

:class:`QASystem` holds a store, a selector and a lazily loaded chat model; the CLI, the
HTTP API, the benchmark harness and the tests all go through :meth:`QASystem.ask`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from ehrqa.answer.answerer import Answer, AnswerConfig, answer
from ehrqa.answer.extractive import focus
from ehrqa.conversation import Conversations
from ehrqa.core.config import EhrqaConfig
from ehrqa.core.errors import ConfigError
from ehrqa.llm.base import ChatModel
from ehrqa.select.base import Selection, Selector, get_selector
from ehrqa.select.followup import remembered, resolve_followup
from ehrqa.store.base import RecordStore

OnEvent = Callable[[str, dict[str, Any]], None]


def _ignore(event: str, data: dict[str, Any]) -> None:
    """The default listener of :meth:`QASystem.ask`: nobody is waiting."""


@dataclass
class QAResult:
    """One answered question: what was selected, what was answered, and what it cost."""

    question: str
    patient_id: str
    now: date
    selection: Selection
    answer: Answer
    selector: str
    timings: dict[str, float] = field(default_factory=dict)
    # The question as understood: a follow-up with the subject it borrowed from the
    # conversation ("Is it getting better? (about: hba1c)"); else the question itself.
    resolved_question: str | None = None
    conversation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``ehrqa ask --json`` and returned by the API."""
        plan = self.selection.plan
        return {
            "question": self.question,
            "resolved_question": self.resolved_question or self.question,
            "conversation": self.conversation,
            "patient_id": self.patient_id,
            "now": self.now.isoformat(),
            **self.answer.to_dict(),
            "selected": [item.to_dict() for item in self.selection.items],
            # Shown near an answer that found nothing asked, never selected as relevant.
            "nearby": [item.to_dict() for item in self.selection.nearby],
            "selector": self.selector,
            "plan": {
                "intent": plan.intent,
                "resource_types": list(plan.resource_types),
                "concepts": [c.name for c in plan.concepts],
                "window": None
                if plan.window is None
                else {
                    "start": plan.window.start.isoformat() if plan.window.start else None,
                    "end": plan.window.end.isoformat() if plan.window.end else None,
                    "phrase": plan.window.phrase,
                },
                "order": plan.order,
            },
            "candidates": self.selection.candidates,
            "timings": {k: round(v * 1000, 2) for k, v in self.timings.items()},
            "tokens": {
                "prompt": self.answer.prompt_tokens,
                "completion": self.answer.completion_tokens,
            },
            "model": self.answer.model,
        }


class QASystem:
    """A store, a selector and a (lazily loaded) chat model, configured once.

    The model is loaded on the first question that needs it; a lock serialises generation
    so one model instance is never used by two threads at once.
    """

    def __init__(
        self,
        config: EhrqaConfig,
        store: RecordStore,
        *,
        selector: Selector | None = None,
        model: ChatModel | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.selector = selector or get_selector(config.selector, config)
        self.answer_config = AnswerConfig(
            mode=config.answer_mode,
            prompt_budget=config.prompt_budget,
            max_tokens=config.max_tokens,
        )
        self._model = model
        self._model_lock = threading.Lock()
        # One generation at a time per system: llama.cpp contexts are not thread-safe.
        self._generation_lock = threading.Lock()

    def warm(self) -> None:
        """Load what the selector needs (its reranker, its matcher) before the first question."""
        warm = getattr(self.selector, "warm", None)
        if callable(warm):
            warm()

    def model(self) -> ChatModel:
        """The chat model, loaded on first use."""
        with self._model_lock:
            if self._model is None:
                from ehrqa.llm import load_chat_model

                self._model = load_chat_model(
                    self.config.model,
                    n_ctx=self.config.n_ctx,
                    n_threads=self.config.n_threads or None,
                    adapter=self.config.adapter or None,
                    seed=self.config.seed,
                )
            return self._model

    def ask(
        self,
        patient_id: str,
        question: str,
        *,
        now: date | None = None,
        on_event: OnEvent | None = None,
        history: Sequence[str] = (),
        conversation: str | None = None,
    ) -> QAResult:
        """Answer ``question`` about the patient as of ``now`` (default: today).

        ``history`` holds the conversation's earlier questions (as resolved, oldest
        first): a follow-up borrows its subject from them (:func:`resolve_followup`).
        ``on_event(name, data)`` hears the progress a reader may see: ``status``
        ``{"stage": "searching", "records": N}``; ``answer``, the composed answer (the
        JSON of :meth:`QAResult.to_dict`) as soon as it exists; ``status``
        ``{"stage": "writing"}`` when a model starts on a rewrite. The returned result is
        the answer to keep. Nothing the model writes is passed on before its checks.
        """
        emit = on_event or _ignore
        if not question or not question.strip():
            raise ConfigError("the question is empty")
        now = now or date.today()
        patient = self.store.patient(patient_id)
        emit("status", {"stage": "searching", "records": patient.resource_count})
        started = time.perf_counter()
        resolved = resolve_followup(question, history, now)
        # The records a computed verdict rests on are the answer's; the rest are set aside.
        selection = focus(self.selector.select(self.store, patient.id, resolved, now))
        selected_at = time.perf_counter()

        def result_of(reply: Answer) -> QAResult:
            done = time.perf_counter()
            timings = {
                "select": selected_at - started,
                "answer": done - selected_at,
                "total": done - started,
            }
            return QAResult(
                question,
                patient.id,
                now,
                selection,
                reply,
                self.selector.name,
                timings,
                resolved_question=resolved,
                conversation=conversation,
            )

        reply = answer(
            resolved,
            now,
            selection,
            self.model,
            self.answer_config,
            on_composed=lambda composed: emit("answer", result_of(composed).to_dict()),
            on_writing=lambda: emit("status", {"stage": "writing"}),
            generation_lock=self._generation_lock,
        )
        return result_of(reply)

    def ask_in(
        self,
        conversations: Conversations,
        conversation: str,
        patient_id: str,
        question: str,
        **options: Any,
    ) -> QAResult:
        """:meth:`ask` as a turn of ``conversation``, which then remembers the question."""
        history = conversations.history(patient_id, conversation)
        result = self.ask(
            patient_id, question, history=history, conversation=conversation, **options
        )
        asked = result.resolved_question or question
        conversations.add(patient_id, conversation, remembered(asked, result.selection))
        return result
