"""The command line as a user runs it: ingest, patients, ask, show, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import bundle, observation, patient, write_json
from ehrqa.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 0), captured.out, captured.err


@pytest.fixture
def home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    data = bundle(
        patient(), observation("a1", "2024-11-02", 7.8), observation("a0", "2023-01-05", 8.4)
    )
    path = write_json(tmp_path / "b.json", data)
    home = str(tmp_path / "home")
    code, out, _ = run(capsys, "--home", home, "ingest", str(path))
    assert code == 0 and "3 new" in out
    return home


def test_patients_lists_ingested_patients(home: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--home", home, "patients", "--json")
    assert code == 0
    assert json.loads(out) == [
        {
            "id": "p1",
            "name": "Ada Lovelace",
            "birth_date": "1970-05-01",
            "gender": "female",
            "resource_count": 3,
        }
    ]


def test_ask_json_has_the_documented_keys(home: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "--home",
        home,
        "ask",
        "--patient",
        "p1",
        "--now",
        "2025-01-01",
        "--answer-mode",
        "extractive",
        "--json",
        "What was my most recent HbA1c?",
    )
    assert code == 0
    result = json.loads(out)
    for key in ("answer", "citations", "selected", "verified", "timings", "tokens", "model"):
        assert key in result
    assert result["citations"] == ["Observation/a1"]
    assert (
        result["selected"][0]["ref"] == "Observation/a1" and result["selected"][0]["score"] == 1.0
    )
    assert result["verified"] is True and "7.8%" in result["answer"]
    assert set(result["timings"]) == {"select", "answer", "total"}


def test_ask_prints_answer_and_sources(home: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "--home",
        home,
        "ask",
        "-p",
        "p1",
        "--now",
        "2024-01-01",
        "--answer-mode",
        "extractive",
        "What was my last HbA1c?",
    )
    assert code == 0
    assert "8.4 %" in out and "2023-01-05" in out
    assert "Sources:\n  [Observation/a0] 2023-01-05" in out


def test_env_home_is_used(
    home: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EHRQA_HOME", home)
    code, out, _ = run(capsys, "patients", "--json")
    assert code == 0 and json.loads(out)[0]["id"] == "p1"


def test_show_prints_the_stored_resource(home: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--home", home, "show", "Observation/a1")
    assert code == 0 and json.loads(out)["valueQuantity"]["value"] == 7.8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "Observation/nope"), "no resource 'Observation/nope'"),
        (("ask", "-p", "nobody", "hi?"), "no patient has the id or name 'nobody'"),
        (("ask", "-p", "p1", "--now", "01/02/2024", "hi?"), "--now must be a date"),
        (("ask", "-p", "p1", "--selector", "defualt", "hi?"), "did you mean 'default'"),
        (("ask", "-p", "p1", "--answer-mode", "magic", "hi?"), "answer mode 'magic' is unknown"),
        (("ask", "-p", "p1", "   "), "the question is empty"),
        (("ingest", "/no/such/dir"), "no such file or folder"),
    ],
)
def test_errors_are_one_red_line_and_exit_2(
    home: str, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    code, _, err = run(capsys, "--home", home, *args)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_invalid_entries_exit_1_and_are_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = observation("bad", "2024-01-01", 1.0)
    bad["effectiveDateTime"] = "yesterday"
    path = write_json(tmp_path / "bad.json", bundle(patient(), bad))
    code, out, err = run(capsys, "--home", str(tmp_path / "h"), "ingest", str(path))
    assert code == 1
    assert "1 new" in out and "1 invalid" in out
    assert f"{path} entry[1]: Observation Observation.effectiveDateTime" in err


def test_config_file_and_flags_precedence(
    home: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('answer_mode = "extractive"\nmodel = "fake"\n')
    code, out, _ = run(
        capsys,
        "--home",
        home,
        "--config",
        str(config),
        "ask",
        "-p",
        "p1",
        "--json",
        "Latest HbA1c?",
    )
    assert code == 0 and json.loads(out)["source"] == "extractive"
    code, _, err = run(
        capsys,
        "--home",
        home,
        "--config",
        str(config),
        "ask",
        "-p",
        "p1",
        "--answer-mode",
        "model",
        "Latest HbA1c?",
    )
    assert code == 2 and "fake" in err  # the flag wins: model mode asks the (empty) fake model


def test_make_qa_writes_a_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ehrqa.lab.data.demo import demo_dir
    from ehrqa.lab.data.qa import read_dataset

    source = demo_dir() / "patient-85c63cf3-278e-454c-b5ba-df5889815eb7.json.gz"
    out = tmp_path / "qa"
    code, text, _ = run(
        capsys,
        "--home",
        str(tmp_path / "h"),
        "data",
        "make-qa",
        str(source),
        "--out",
        str(out),
        "--per-patient",
        "5",
    )
    items = read_dataset(out / "qa.jsonl")
    assert code == 0 and f"{len(items)} questions over 1 patients" in text
    assert {i.patient_id for i in items} == {"85c63cf3-278e-454c-b5ba-df5889815eb7"}


@pytest.mark.parametrize(
    "args",
    [
        ["ingest"],
        ["ingest", "b.json", "--fhir-server", "http://127.0.0.1:9/fhir"],
    ],
)
def test_ingest_takes_files_or_a_fhir_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    code, _, err = run(capsys, "--home", str(tmp_path), *args)
    assert code == 2 and "--fhir-server URL (not both)" in err


def test_ingest_from_an_unreachable_fhir_server_is_one_red_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "--home", str(tmp_path), "ingest", "--fhir-server", "http://127.0.0.1:9/fhir",
        "--patient", "p1",
    )  # fmt: skip
    assert code == 2 and "127.0.0.1:9" in err


def test_ask_follow_up_in_a_conversation(home: str, capsys: pytest.CaptureFixture[str]) -> None:
    def ask(question: str) -> dict:  # type: ignore[type-arg]
        code, out, err = run(
            capsys, "--home", home, "ask", "--patient", "p1", "--now", "2025-01-01",
            "--answer-mode", "extractive", "--conversation", "c1", "--json", question,
        )  # fmt: skip
        assert code == 0, err
        return json.loads(out)

    first = ask("What was my most recent HbA1c?")
    assert first["conversation"] == "c1"
    second = ask("Is it getting better?")
    assert second["resolved_question"] == "Is it getting better? (about: hba1c)"
    assert second["answer"].startswith("Yes: Hemoglobin A1c") and "went down" in second["answer"]
    assert set(second["citations"]) == {"Observation/a0", "Observation/a1"}
    code, _, err = run(
        capsys, "--home", home, "ask", "--patient", "p1", "--conversation", "../x", "Hi?"
    )
    assert code == 2 and "conversation id" in err


def test_ask_finds_the_patient_by_name_or_as_the_only_one(
    home: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ask = ("--home", home, "ask", "--now", "2025-01-01", "--answer-mode", "extractive")
    code, out, err = run(capsys, *ask, "What was my last HbA1c?")
    assert code == 0 and "7.8 %" in out  # the store's only patient
    code, out, err = run(capsys, *ask, "-p", "lovelace", "What was my last HbA1c?")
    assert code == 0 and "7.8 %" in out and "p1" in err
    code, out, err = run(capsys, *ask, "-p", "nobody", "What was my last HbA1c?")
    assert code == 2 and "no patient has the id or name 'nobody'" in err


def test_ask_without_a_patient_among_several_names_the_choice(
    home: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = write_json(
        tmp_path / "c.json", bundle(patient("p2", name=[{"given": ["Ada"], "family": "Byron"}]))
    )
    assert run(capsys, "--home", home, "ingest", str(other))[0] == 0
    ask = ("--home", home, "ask", "--now", "2025-01-01", "--answer-mode", "extractive")
    code, _, err = run(capsys, *ask, "What was my last HbA1c?")
    assert code == 2 and "holds 2 patients" in err and "Traceback" not in err
    code, _, err = run(capsys, *ask, "-p", "ada", "What was my last HbA1c?")
    assert code == 2 and "2 patients match 'ada'" in err
