"""Task 1 pairs and Task 2 examples from the committed QA sample over the demo patient."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ehrqa.core.errors import ConfigError, NotFoundError
from ehrqa.lab.data.demo import DEMO_PATIENT
from ehrqa.lab.data.qa import QAItem, read_dataset
from ehrqa.lab.train.data import (
    TrainingDataConfig,
    build_examples,
    build_training_data,
    cite_answer,
    pair_document,
    read_answer_examples,
    read_pairs,
)
from ehrqa.store import SqliteStore

SAMPLE = Path(__file__).parents[2] / "fixtures" / "qa_sample" / "qa.jsonl"


@pytest.fixture(scope="module")
def items() -> list[QAItem]:
    """The sample's questions about the demo patient (its test split)."""
    chosen = [i for i in read_dataset(SAMPLE) if i.patient_id == DEMO_PATIENT]
    assert chosen
    return chosen


def test_positives_are_gold_and_negatives_never_are(
    demo_store: SqliteStore, items: list[QAItem]
) -> None:
    config = TrainingDataConfig(max_positives=1000)
    pairs, _ = build_examples(items, demo_store, config)
    by_question = {i.id: i for i in items}
    for item in items:
        mine = [p for p in pairs if p.question_id == item.id]
        in_store = {r.ref for r in demo_store.get_many(item.relevant_ids)}
        assert {p.ref for p in mine if p.label == 1} == in_store
    for pair in pairs:
        gold = set(by_question[pair.question_id].relevant_ids)
        assert (pair.ref in gold) == (pair.label == 1) == (pair.source == "gold")
    assert {p.source for p in pairs} == {"gold", "candidate", "random"}


def test_caps_per_question(demo_store: SqliteStore, items: list[QAItem]) -> None:
    config = TrainingDataConfig(max_positives=2, hard_negatives=3, random_negatives=1)
    pairs, _ = build_examples(items, demo_store, config)
    for item in items:
        mine = [p for p in pairs if p.question_id == item.id]
        assert sum(p.label for p in mine) <= 2
        assert sum(p.source == "candidate" for p in mine) <= 3
        assert sum(p.source == "random" for p in mine) <= 1
        assert len({p.ref for p in mine}) == len(mine)


def test_deterministic_and_independent_of_order(
    demo_store: SqliteStore, items: list[QAItem]
) -> None:
    items = items[:12]
    config = TrainingDataConfig(seed=3)
    first, answers = build_examples(items, demo_store, config)
    again, answers_again = build_examples(items, demo_store, config)
    assert first == again and answers == answers_again
    reversed_pairs, _ = build_examples(items[::-1], demo_store, config)
    assert sorted(first, key=lambda p: (p.question_id, p.ref)) == sorted(
        reversed_pairs, key=lambda p: (p.question_id, p.ref)
    )
    other, _ = build_examples(items, demo_store, TrainingDataConfig(seed=4))
    assert other != first


def test_answer_examples_cite_gold_aliases(demo_store: SqliteStore, items: list[QAItem]) -> None:
    _, examples = build_examples(items, demo_store, TrainingDataConfig())
    by_id = {i.id: i for i in items}
    assert any(not e.answerable for e in examples)
    for example in examples:
        item = by_id[example.id]
        assert example.messages[0]["role"] == "system"
        assert example.messages[-1]["content"].rstrip().endswith(item.question.strip())
        cited = {ref for alias, ref in example.aliases.items() if f"[{alias}]" in example.target}
        assert cited <= set(item.relevant_ids)
        if not item.answerable:
            assert "[" not in example.target


def test_build_training_data_round_trips(
    demo_store: SqliteStore, items: list[QAItem], tmp_path: Path
) -> None:
    report = build_training_data(SAMPLE, demo_store, "test", tmp_path)
    pairs = read_pairs(report.pairs_path)
    assert len(pairs) == report.pairs and sum(p.label for p in pairs) == report.positives
    assert len(read_answer_examples(report.answers_path)) == report.answer_examples == len(items)
    manifest = orjson.loads(report.manifest_path.read_bytes())
    assert manifest["split"] == "test" and manifest["config"]["seed"] == 0
    assert all(not p.document.startswith("[") for p in pairs)


def test_empty_split_and_missing_file(demo_store: SqliteStore, tmp_path: Path) -> None:
    empty = tmp_path / "qa.jsonl"
    empty.write_text("")
    with pytest.raises(NotFoundError, match="split 'train'"):
        build_training_data(empty, demo_store, "train", tmp_path)
    with pytest.raises(NotFoundError, match="build_training_data"):
        read_pairs(tmp_path / "missing.jsonl")


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_positives", -1), ("hard_negatives", -2), ("candidate_depth", 0), ("answer_budget", 10)],
)
def test_config_rejects_bad_values(field: str, value: int) -> None:
    with pytest.raises(ConfigError, match=field):
        TrainingDataConfig(**{field: value})


@pytest.mark.parametrize(
    ("answer", "aliases", "expected"),
    [
        ("Your HbA1c was 7.8 %.", ["1"], "Your HbA1c was 7.8 % [1]."),
        ("Yes, asthma", ["2", "3"], "Yes, asthma [2][3]"),
        (
            "The record does not contain this information.",
            [],
            "The record does not contain this information.",
        ),
    ],
)
def test_cite_answer(answer: str, aliases: list[str], expected: str) -> None:
    assert cite_answer(answer, aliases) == expected


def test_pair_document_drops_the_id(demo_store: SqliteStore) -> None:
    record = next(demo_store.iter_records(DEMO_PATIENT))
    document = pair_document(record)
    assert document.startswith(record.resource_type + ":") and record.id not in document
