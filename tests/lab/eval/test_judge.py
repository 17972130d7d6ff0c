"""The LLM-as-judge study: verdict parsing, position-bias handling, the self-preference gap
and judge accuracy, end to end with a scripted judge over two hand-made runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ehrqa.core.errors import ConfigError, NotFoundError
from ehrqa.lab.eval.judge import (
    JudgeConfig,
    Verdict,
    judge_prompt,
    judge_scores,
    load_results,
    parse_verdict,
    run_judge,
    write_judge_report,
)
from ehrqa.llm.fake import FakeChatModel
from ehrqa.store import SqliteStore


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"better": 1}', 1),
        ('{"better": "2"}', 2),
        ("2", 2),
        ("Answer 1 is better.", 1),
        ("Neither.", None),
        ('{"better": 3}', None),
    ],
)
def test_parse_verdict(reply: str, expected: int | None) -> None:
    assert parse_verdict(reply) == expected


def test_winner_needs_both_orders() -> None:
    v = Verdict("q", True, False, {"blind": [1, 2], "named": [1, 1]})
    assert v.winner("blind") == "a"  # A first → 1, B first → 2: A both times
    assert v.winner("named") == "tie"  # "the first one" both times: position bias


def test_scores_gap_and_accuracy() -> None:
    verdicts = [
        Verdict("q1", True, False, {"blind": [1, 2], "named": [1, 2]}),  # A, A
        Verdict("q2", False, True, {"blind": [2, 1], "named": [1, 2]}),  # B, A
        Verdict("q3", None, None, {"blind": [1, 1], "named": [1, 2]}),  # tie, A
        Verdict("q4", True, True, {"blind": [None, 2], "named": [2, 1]}),  # tie, B
    ]
    s = judge_scores(verdicts, self_is="a")
    assert s["blind"]["win_a"] == 0.25 and s["blind"]["win_b"] == 0.25
    assert s["blind"]["tie"] == 0.5 and s["blind"]["unreadable"] == 1
    assert s["named"]["win_a"] == 0.75
    assert s["self_preference_gap"] == pytest.approx(0.5)
    # q1 and q2 have exactly one correct answer; blind picked it both times.
    assert s["decisive_questions"] == 2 and s["judge_accuracy"] == 1.0
    assert s["blind"]["first_shown_preferred"] == pytest.approx(4 / 7)


def test_named_prompt_says_who_wrote_which() -> None:
    blind = judge_prompt("Q?", ["r1"], ("x", "y"), None, json_answer=True)
    named = judge_prompt("Q?", ["r1"], ("x", "y"), ("ft (you)", "base"), json_answer=False)
    assert "written by" not in blind[1].content and '{"better": 1}' in blind[1].content
    assert "Answer 1 (written by ft (you)): x" in named[1].content
    assert "Answer 2 (written by base): y" in named[1].content


def _run(folder: Path, model: str, answers: dict[str, str], adapter: str = "") -> Path:
    rows = [
        {
            "id": qid,
            "question": f"What is {qid}?",
            "gold_ids": [f"Observation/{qid}"],
            "answer_values": ["7.1"],
            "answer": text,
        }
        for qid, text in answers.items()
    ]
    manifest = {"model": model, "dataset_sha256": "d" * 64, "config": {"adapter": adapter}}
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(
        json.dumps({"manifest": manifest, "results": {"default": rows}}), encoding="utf-8"
    )
    return folder


def test_run_judge_end_to_end(store: SqliteStore, tmp_path: Path) -> None:
    same = "None recorded."
    a = _run(
        tmp_path / "a", "smollm2", {"q1": "It is 7.1 %.", "q2": "It is 7.1 %.", "q0": same}, "/m/ft"
    )
    b = _run(
        tmp_path / "b", "smollm2", {"q1": "It is 5 %.", "q2": "Unknown.", "q3": "x", "q0": same}
    )
    # Per question: blind A-first, blind B-first, named A-first, named B-first.
    judge = FakeChatModel(["1", "2", "1", "2", "2", "2", "1", "2"])
    config = JudgeConfig(str(a), str(b), self_is="a")
    result = run_judge(config, store, judge)
    assert result["names"] == ["smollm2+ft", "smollm2"]
    assert [v["id"] for v in result["verdicts"]] == ["q1", "q2"]  # q3: only B answered it
    assert result["identical_answers"] == 1  # q0: nothing to prefer, not judged
    s = result["scores"]
    assert s["blind"]["win_a"] == 0.5 and s["named"]["win_a"] == 1.0
    assert s["self_preference_gap"] == 0.5 and s["judge_accuracy"] == 0.5
    assert "(written by smollm2+ft (you))" in judge.calls[2][1].content
    paths = write_judge_report(result, tmp_path / "out")
    report = Path(paths["report"]).read_text(encoding="utf-8")
    assert "Self-preference gap" in report and "+0.500" in report


def test_bad_inputs(tmp_path: Path, store: SqliteStore) -> None:
    with pytest.raises(ConfigError, match="self_is"):
        JudgeConfig("a", "b", self_is="c")
    with pytest.raises(NotFoundError, match=r"results\.json"):
        load_results(tmp_path)
    a = _run(tmp_path / "a", "m", {"q1": "x"})
    b = _run(tmp_path / "b", "m", {"q2": "y"})
    with pytest.raises(ConfigError, match="share no answered question"):
        run_judge(JudgeConfig(str(a), str(b)), store, FakeChatModel())
    with pytest.raises(ConfigError, match="no results for selector 'bm25'"):
        load_results(a, "bm25")
