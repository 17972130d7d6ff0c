"""`ehrqa train t1` as a user runs it, on the committed sample with a few steps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ehrqa.cli.main import main
from ehrqa.lab.data.demo import demo_dir

SAMPLE = Path(__file__).parents[1] / "fixtures" / "qa_sample" / "qa.jsonl"


def test_train_t1_saves_a_model_with_its_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "reranker"
    toml = tmp_path / "t1.toml"
    toml.write_text("lr = 5e-5\nmax_length = 128\nbatch_size = 8\n", encoding="utf-8")
    args = ["--home", str(tmp_path / "h"), "train", "t1", "--dataset", str(SAMPLE)]
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                *args,
                "--bundles",
                str(demo_dir()),
                "--out",
                str(out),
                "--train-config",
                str(toml),
                "--max-steps",
                "2",
                "--batch-size",
                "4",
            ]
        )
    assert exit_info.value.code == 0
    assert f"reranker saved to {out}" in capsys.readouterr().out
    saved = json.loads((out / "ehrqa_config.json").read_text())
    # The file's settings, with the flags winning over it.
    assert saved["config"] | {"lr": 5e-5, "max_length": 128, "batch_size": 4} == saved["config"]
    assert saved["training"]["steps"] == 2 and (out / "MODEL_CARD.md").is_file()


def _run(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return int(exit_info.value.code or 0)


@pytest.mark.parametrize("command", ["t2", "t1-llm", "seq"])
def test_lora_commands_train_and_save_an_adapter(
    command: str, tiny_base: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A couple of steps of each LoRA command on the tiny model, with a TOML config."""
    out = tmp_path / command
    toml = tmp_path / "train.toml"
    toml.write_text(f'base_model = "{tiny_base}"\nrank = 4\nmax_length = 1024\n', encoding="utf-8")
    args = ["--home", str(tmp_path / "h"), "train", command, "--dataset", str(SAMPLE)]
    code = _run(
        [
            *args,
            "--bundles",
            str(demo_dir()),
            "--out",
            str(out),
            "--train-config",
            str(toml),
            "--max-steps",
            "1",
            "--batch-size",
            "2",
            "--max-examples",
            "4",
        ]
    )
    assert code == 0
    assert f"adapter saved to {out}" in capsys.readouterr().out
    saved = json.loads((out / "ehrqa_config.json").read_text())
    assert saved["task"] == {"t2": "t2", "t1-llm": "t1", "seq": "seq"}[command]
    assert saved["config"]["rank"] == 4 and saved["config"]["max_steps"] == 1
    assert saved["dataset_sha256"] and saved["training"]["steps"] == 1
    assert (out / "adapter" / "adapter_config.json").is_file()
    if command == "seq":
        assert saved["order"] == ["t1", "t2"]
        assert json.loads((out / "stage1-t1" / "ehrqa_config.json").read_text())["task"] == "t1"


def test_lora_command_reports_an_unknown_config_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = tmp_path / "train.toml"
    toml.write_text("rnak = 4\n", encoding="utf-8")
    args = ["--home", str(tmp_path / "h"), "train", "t2", "--dataset", str(SAMPLE)]
    assert _run([*args, "--train-config", str(toml)]) == 2
    assert "unknown setting 'rnak'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('lr = "x"', "lr must be a number, got 'x'"),
        ("rank = 4.5", "rank must be an integer, got 4.5"),
        ("qlora = 1", "qlora must be true or false, got 1"),
        ("max_steps = true", "max_steps must be an integer, got True"),
    ],
)
def test_lora_command_names_a_wrongly_typed_config_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, message: str
) -> None:
    toml = tmp_path / "train.toml"
    toml.write_text(line + "\n", encoding="utf-8")
    args = ["--home", str(tmp_path / "h"), "train", "t2", "--dataset", str(SAMPLE)]
    assert _run([*args, "--train-config", str(toml)]) == 2
    assert f"{toml}: {message}" in capsys.readouterr().err
