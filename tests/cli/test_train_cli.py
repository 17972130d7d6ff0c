"""`ehrqa train t1` as a user runs it, on the committed sample with a few steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ehrqa.cli import main
from ehrqa.data.demo import demo_dir

SAMPLE = Path(__file__).parents[1] / "fixtures" / "qa_sample" / "qa.jsonl"


def test_train_t1_saves_a_model_with_its_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "reranker"
    args = ["--home", str(tmp_path / "h"), "train", "t1", "--dataset", str(SAMPLE)]
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                *args,
                "--bundles",
                str(demo_dir()),
                "--out",
                str(out),
                "--max-steps",
                "2",
                "--batch-size",
                "4",
            ]
        )
    assert exit_info.value.code == 0
    assert f"reranker saved to {out}" in capsys.readouterr().out
    saved = json.loads((out / "ehrqa_config.json").read_text())
    assert saved and (out / "MODEL_CARD.md").is_file()
