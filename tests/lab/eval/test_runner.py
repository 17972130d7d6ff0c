"""The harness end to end on the committed sample: run, score, report, compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import PATIENT_ID, bundle, observation, patient, write_json
from ehrqa.cli.main import main
from ehrqa.core.errors import ConfigError, NotFoundError
from ehrqa.lab.data.demo import demo_dir
from ehrqa.lab.data.qa import QAItem, write_dataset
from ehrqa.lab.eval.report import compare, write_report
from ehrqa.lab.eval.runner import EvalConfig, run_eval, select_items
from ehrqa.lab.eval.scoring import score_run
from ehrqa.llm.fake import FakeChatModel
from ehrqa.store import SqliteStore

SAMPLE = Path(__file__).parents[2] / "fixtures" / "qa_sample" / "qa.jsonl"


def item(
    qid: str, question: str, relevant: list[str], values: list[str], **extra: object
) -> QAItem:
    fields = {
        "id": qid,
        "patient_id": PATIENT_ID,
        "question": question,
        "now": "2025-01-01",
        "relevant_ids": relevant,
        "answer": "reference",
        "answer_values": values,
        "answerable": True,
        "intent": "latest_lab",
        "perspective": "patient",
    }
    fields.update(extra)
    return QAItem(**fields)  # type: ignore[arg-type]


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    """Two questions with hand-known answers over a two-observation patient."""
    data = bundle(
        patient(), observation("a1", "2024-11-02", 7.8), observation("a0", "2023-01-05", 8.4)
    )
    bundles = write_json(tmp_path / "p.json", data)
    items = [
        item(
            "q1", "What was my most recent HbA1c?", ["Observation/a1"], ["7.8", "%", "2024-11-02"]
        ),
        item("q2", "What is my blood type?", [], [], answerable=False, intent="unanswerable"),
    ]
    dataset = tmp_path / "qa.jsonl"
    write_dataset(items, dataset)
    return dataset, bundles


def test_scores_on_hand_known_questions(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    dataset, bundles = tiny
    store = SqliteStore(tmp_path / "s.sqlite3")
    config = EvalConfig(dataset=str(dataset), bundles=(str(bundles),), answer_mode="extractive")
    run = run_eval(config, store, home=str(tmp_path))
    scores = score_run(run)["default"]
    # q1 selects exactly its gold; q2 selects nothing and abstains: perfect on both tasks.
    assert scores["task1"]["micro_f1"] == 1.0 and scores["task1"]["macro_f1"] == 1.0
    assert scores["task2"]["answer_accuracy"] == 1.0
    assert (
        scores["task2"]["abstention_precision"] == 1.0
        and scores["task2"]["abstention_recall"] == 1.0
    )
    assert scores["by_intent"]["latest_lab"]["n"] == 1.0


def test_model_answers_are_scored_with_tokens(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    dataset, bundles = tiny
    store = SqliteStore(tmp_path / "s.sqlite3")
    config = EvalConfig(dataset=str(dataset), bundles=(str(bundles),), answer_mode="model")
    model = FakeChatModel(["Your most recent HbA1c was 7.8 % on 2024-11-02 [1]."])
    run = run_eval(config, store, home=str(tmp_path), model=model)
    first = run.results["default"][0]
    assert first.source == "model" and first.verified and first.tokens["prompt"] > 0
    assert score_run(run)["default"]["task2"]["answer_accuracy"] == 1.0


def test_a_wrong_value_is_counted_harmful_overall_and_by_intent(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    dataset, bundles = tiny
    store = SqliteStore(tmp_path / "s.sqlite3")
    config = EvalConfig(dataset=str(dataset), bundles=(str(bundles),), answer_mode="model")
    # q1's gold is 7.8 %: 8.4 % is the older value, stated as the latest.
    model = FakeChatModel(["Your most recent HbA1c was 8.4 % [1]."])
    run = run_eval(config, store, home=str(tmp_path), model=model)
    scores = score_run(run)["default"]
    assert scores["task2"]["harmful"] == 1 and scores["task2"]["harmful_value"] == 1
    assert scores["by_intent"]["latest_lab"]["harmful_rate"] == 1.0
    paths = write_report(run, score_run(run), tmp_path / "out")
    report = Path(paths["report"]).read_text()
    assert "harmful rate" in report and "value 1" in report
    assert "| latest_lab | 1 (n too small) |" in report and "1 (1.000)" in report


def test_sample_run_writes_a_reproducible_report(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.sqlite3")
    config = EvalConfig(
        dataset=str(SAMPLE),
        bundles=(str(demo_dir()),),
        selectors=("default", "bm25"),
        answer_mode="extractive",
        limit=40,
        seed=3,
    )
    run = run_eval(config, store, home=str(tmp_path))
    assert len(run.items) == 40 and set(run.results) == {"default", "bm25"}
    scores = score_run(run)
    assert scores["default"]["task1"]["micro_f1"] > scores["bm25"]["task1"]["micro_f1"]
    paths = write_report(run, scores, tmp_path / "out")
    report = Path(paths["report"]).read_text()
    assert "| default |" in report and "## By intent" in report
    metrics = json.loads(Path(paths["metrics"]).read_text())
    manifest = metrics["manifest"]
    assert manifest["dataset_sha256"] == run.dataset_sha256 and manifest["seed"] == 3
    assert manifest["config"]["limit"] == 40 and manifest["git_commit"]
    assert (tmp_path / "out" / "f1_by_intent.png").stat().st_size > 1000
    results = json.loads(Path(paths["results"]).read_text())
    assert len(results["results"]["bm25"]) == 40
    table = compare(tmp_path / "out", tmp_path / "out")
    assert "| default | F1 | " in table and "+0.000" in table
    # A run against itself: every difference is a tie, never "better" or "worse".
    rows = [line for line in table.splitlines() if line.startswith("| default |")]
    assert rows and all(line.endswith("| tie |") for line in rows)


def test_reports_carry_per_question_values_intervals_and_paired_differences(
    tmp_path: Path,
) -> None:
    from ehrqa.lab.eval.scoring import statistics

    store = SqliteStore(tmp_path / "s.sqlite3")
    config = EvalConfig(
        dataset=str(SAMPLE),
        bundles=(str(demo_dir()),),
        selectors=("default", "bm25"),
        answer_mode="extractive",
        limit=30,
        seed=5,
    )
    run = run_eval(config, store, home=str(tmp_path))
    scores = score_run(run)
    paths = write_report(run, scores, tmp_path / "out")
    metrics = json.loads(Path(paths["metrics"]).read_text())
    assert metrics["manifest"]["bootstrap"]["resamples"] == 1000
    default = metrics["scores"]["default"]
    columns = default["per_question"]["columns"]
    assert default["per_question"]["ids"] == [r.id for r in run.results["default"]]
    # Per-question values pool back to every corpus number of the report.
    for stat in statistics(config.ks):
        if stat.key in default[stat.task]:
            assert stat.value(columns[stat.column]) == pytest.approx(
                default[stat.task][stat.key], nan_ok=True
            )
    selection = columns["selection"]
    tp, fp, fn = (sum(r[c] for r in selection) for c in ("tp", "fp", "fn"))
    assert 2 * tp / (2 * tp + fp + fn) == pytest.approx(default["task1"]["micro_f1"])
    low, high = default["intervals"]["task1"]["micro_f1"]
    assert low <= default["task1"]["micro_f1"] <= high and low < high
    # Groups of 5 or more get intervals; smaller ones say so.
    groups = default["by_perspective"] | default["by_intent"]
    assert all(("intervals" in g) == (g["n"] >= 5) for g in groups.values())
    results = json.loads(Path(paths["results"]).read_text())
    first = results["results"]["default"][0]
    assert first["scores"]["selection"] == selection[0]
    # bm25 is far below the rules on this sample: a difference, not a tie.
    diff = metrics["comparisons"]["bm25 vs default"]["micro_f1"]
    assert diff["verdict"] == "worse" and diff["high"] < 0
    report = Path(paths["report"]).read_text()
    assert "## Selectors compared (paired by question)" in report
    assert "| bm25 vs default | F1 |" in report and "| worse |" in report
    assert "(n too small)" in report and "95% bootstrap intervals" in report
    f1 = default["task1"]["micro_f1"]
    assert f"| default | {default['task1']['micro_precision']:.3f} (" in report
    assert f"{f1:.3f} ({low:.2f}–{high:.2f})" in report


def test_limit_is_a_seeded_sample() -> None:
    from ehrqa.lab.data.qa import read_dataset

    items = read_dataset(SAMPLE)
    a = select_items(items, EvalConfig(dataset=str(SAMPLE), limit=10, seed=1))
    b = select_items(items, EvalConfig(dataset=str(SAMPLE), limit=10, seed=1))
    c = select_items(items, EvalConfig(dataset=str(SAMPLE), limit=10, seed=2))
    assert [i.id for i in a] == [i.id for i in b] != [i.id for i in c]
    test = select_items(items, EvalConfig(dataset=str(SAMPLE), split="test"))
    assert test and all(i.split == "test" for i in test)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"answer_mode": "magic"}, "answer mode 'magic'"),
        ({"limit": 0}, "--limit"),
        ({"selectors": ("bm52",)}, "did you mean 'bm25'"),
        ({"selectors": ()}, "at least one selector"),
    ],
)
def test_bad_config_is_named(kwargs: dict, message: str) -> None:
    with pytest.raises((ConfigError, NotFoundError), match=message):
        EvalConfig(dataset="x.jsonl", **kwargs)


def test_missing_patients_are_named(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    dataset, _ = tiny
    with pytest.raises(NotFoundError, match="pass --bundles"):
        run_eval(
            EvalConfig(dataset=str(dataset), answer_mode="none"),
            SqliteStore(tmp_path / "e.sqlite3"),
            home=str(tmp_path),
        )


def test_cli_eval_and_compare(
    tiny: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset, bundles = tiny
    out = tmp_path / "run"
    args = [
        "--home",
        str(tmp_path / "h"),
        "eval",
        "--dataset",
        str(dataset),
        "--bundles",
        str(bundles),
    ]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--selector", "default,newest-n", "--answer-mode", "none", "--out", str(out)])
    assert exit_info.value.code == 0
    assert "| newest-n |" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "compare", str(out), str(out)])
    assert exit_info.value.code == 0 and "| default | F1 |" in capsys.readouterr().out


def test_undefined_metrics_render_as_dashes(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    dataset, bundles = tiny
    store = SqliteStore(tmp_path / "s.sqlite3")
    run = run_eval(
        EvalConfig(dataset=str(dataset), bundles=(str(bundles),), answer_mode="none"),
        store,
        home=str(tmp_path),
    )
    paths = write_report(run, score_run(run), tmp_path / "out")
    metrics = json.loads(Path(paths["metrics"]).read_text())
    # No gold for q2 and one gold for q1: recall@k is defined; abstention is not scored at all.
    from ehrqa.lab.eval.report import render_markdown

    metrics["scores"]["default"]["task1"]["recall@10"] = None  # as NaN is written to JSON
    text = render_markdown(metrics["manifest"], metrics["scores"], [])
    assert "None" not in text and "| default | 1.000 | 1.000 | 1.000 | 1.000 | – |" in text


@pytest.mark.parametrize(
    ("adapter", "judge_adapter"), [("auto", None), ("/some/t1t2", "/some/t1t2")]
)
def test_a_model_judged_selector_gets_the_plain_model_under_the_packaged_adapter(
    tiny: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    adapter: str,
    judge_adapter: str | None,
) -> None:
    # The packaged adapter (auto) answers Task 2; a T1 judge must not run through it. An
    # adapter named by path (a sequential T1→T2 one) serves both.
    loaded: list[str | None] = []
    models: list[FakeChatModel] = []

    def load(spec: str, **kwargs: object) -> FakeChatModel:
        loaded.append(kwargs.get("adapter"))  # type: ignore[arg-type]
        models.append(FakeChatModel(["yes"] * 10))
        return models[-1]

    monkeypatch.setattr("ehrqa.lab.eval.runner.load_chat_model", load)
    dataset, bundles = tiny
    config = EvalConfig(
        dataset=str(dataset),
        bundles=(str(bundles),),
        selectors=("llm-pairwise",),
        answer_mode="extractive",
        adapter=adapter,
    )
    run_eval(config, SqliteStore(tmp_path / "s.sqlite3"), home=str(tmp_path))
    assert loaded[0] == adapter
    assert loaded[1:] == ([None] if judge_adapter is None else [])
    # The judge (the last model loaded) was asked about the candidates.
    assert models[-1].calls


def test_a_conversations_follow_up_is_asked_after_its_first_turn(tmp_path: Path) -> None:
    data = bundle(
        patient(), observation("a1", "2024-11-02", 7.8), observation("a0", "2023-01-05", 8.4)
    )
    bundles = write_json(tmp_path / "p.json", data)
    # The follow-up comes first in the file: turn order, not file order, decides.
    follow = item(
        "q2", "Is it getting better?", ["Observation/a0", "Observation/a1"],
        ["8.4", "7.8"], intent="trend", extra={"conversation": "c", "turn": 2},
    )  # fmt: skip
    first = item("q1", "What was my most recent HbA1c?", ["Observation/a1"], ["7.8"],
                 extra={"conversation": "c", "turn": 1})  # fmt: skip
    dataset = tmp_path / "qa.jsonl"
    write_dataset([follow, first], dataset)
    config = EvalConfig(dataset=str(dataset), bundles=(str(bundles),), answer_mode="extractive")
    run = run_eval(config, SqliteStore(tmp_path / "s.sqlite3"), home=str(tmp_path))
    results = {r.id: r for r in run.results["default"]}
    assert results["q2"].details["resolved_question"] == "Is it getting better? (about: hba1c)"
    assert "resolved_question" not in results["q1"].details
    assert score_run(run)["default"]["task2"]["answer_accuracy"] == 1.0


def test_the_eval_builds_selectors_from_the_config_as_ask_does(tmp_path: Path) -> None:
    # `ehrqa --home D eval --selector auto` must select with the reranker trained in D.
    from ehrqa.core.config import EhrqaConfig
    from ehrqa.lab.eval.runner import _make_selector
    from ehrqa.select.base import SELECTORS

    built: list[EhrqaConfig] = []

    class FromConfig:
        @classmethod
        def from_config(cls, config: EhrqaConfig) -> FromConfig:
            built.append(config)
            return cls()

    SELECTORS.register("test-from-config", FromConfig)  # type: ignore[arg-type]
    try:
        config = EhrqaConfig(home=str(tmp_path))
        assert isinstance(_make_selector("test-from-config", None, config), FromConfig)
        assert built == [config]
    finally:
        SELECTORS._entries.pop("test-from-config", None)
        SELECTORS._help.pop("test-from-config", None)
