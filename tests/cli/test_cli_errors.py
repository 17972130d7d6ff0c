"""Errors a user can cause on the command line: one clear line, exit code 2, no traceback.

Issue 17, findings 6 and 7: a foreign ``--store`` file gave a traceback, a ``--store`` in a
missing folder silently made one, ``tokens create`` took unknown patients, ``--now
9999-12-31`` answered "Age 8039", and an empty question must fail before anything loads.
"""

from __future__ import annotations

import json
import sqlite3
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


def one_error(err: str) -> str:
    """The one ``error:`` line of stderr (and nothing like a traceback)."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    data = bundle(patient(), observation("a1", "2024-11-02", 7.8))
    path = write_json(tmp_path / "b.json", data)
    home = str(tmp_path / "home")
    code, _, _ = run(capsys, "--home", home, "ingest", str(path))
    assert code == 0
    return home


def test_a_text_file_as_store_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n")
    code, _, err = run(capsys, "--home", str(tmp_path / "h"), "--store", str(passwd), "patients")
    assert code == 2
    assert f"{passwd} is not an ehrqa record store" in one_error(err)
    assert passwd.read_text() == "root:x:0:0:root:/root:/bin/bash\n"


def test_a_foreign_database_as_store_is_one_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "places.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE moz_places (url TEXT)")
    db.close()
    code, _, err = run(capsys, "--home", str(tmp_path / "h"), "--store", str(other), "patients")
    assert code == 2 and "database of another program" in one_error(err)


@pytest.mark.parametrize("store", ["nonexistent/dir/x.sqlite3", "nonexistent/dir"])
def test_a_store_in_a_missing_folder_is_an_error_and_nothing_is_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], store: str
) -> None:
    code, _, err = run(
        capsys, "--home", str(tmp_path / "h"), "--store", str(tmp_path / store), "patients"
    )
    assert code == 2 and "does not exist" in one_error(err)
    assert not (tmp_path / "nonexistent").exists()


def test_a_new_store_in_an_existing_folder_is_still_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run(capsys, "--store", str(tmp_path / "new.sqlite3"), "patients", "--json")
    assert code == 0 and (tmp_path / "new.sqlite3").is_file()


@pytest.mark.parametrize("now", ["9999-12-31", "2201-01-01", "1899-12-31", "0001-01-01"])
def test_now_outside_1900_to_2200_is_refused(
    home: str, capsys: pytest.CaptureFixture[str], now: str
) -> None:
    code, out, err = run(capsys, "--home", home, "ask", "How old?", "-p", "p1", "--now", now)
    assert code == 2 and out == ""
    assert f"--now must be a date between 1900-01-01 and 2200-12-31, got {now}" in one_error(err)


@pytest.mark.parametrize("now", ["1900-01-01", "2200-12-31"])
def test_now_at_the_bounds_is_answered(
    home: str, capsys: pytest.CaptureFixture[str], now: str
) -> None:
    args = ("--home", home, "ask", "latest HbA1c?", "-p", "p1", "--now", now, "--json")
    code, out, _ = run(capsys, *args, "--selector", "default")
    assert code == 0 and json.loads(out)["now"] == now


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_an_empty_question_fails_before_any_model_loads(
    home: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, question: str
) -> None:
    import ehrqa.llm
    import ehrqa.select.rerank

    def heavy(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded for an empty question")

    monkeypatch.setattr(ehrqa.select.rerank, "_cached_reranker", heavy)
    monkeypatch.setattr(ehrqa.llm, "load_chat_model", heavy)
    code, _, err = run(capsys, "--home", home, "ask", question, "-p", "p1", "--selector", "auto")
    assert code == 2 and "the question is empty" in one_error(err)


def test_a_token_for_an_unknown_patient_is_refused(
    home: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--home", home, "tokens", "create", "--label", "t", "--patient", "does-not-exist")
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert "no patient 'does-not-exist' in the record store" in one_error(err)
    code, out, _ = run(capsys, "--home", home, "tokens", "list", "--json")
    assert json.loads(out) == []  # nothing stored


def test_a_token_for_a_known_patient_is_created(
    home: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--home", home, "tokens", "create", "--label", "t", "-p", "p1")
    assert code == 0 and len(out.strip()) > 20


def test_without_a_store_yet_patient_ids_are_not_checked_and_that_is_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(tmp_path / "fresh")
    code, _, err = run(capsys, "--home", home, "tokens", "create", "--label", "t", "-p", "p9")
    assert code == 0 and "patient ids were not checked" in err
    assert not (tmp_path / "fresh" / "ehrqa.sqlite3").exists()


def test_a_reserved_token_label_is_refused(home: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "--home", home, "tokens", "create", "--label", "(no token)", "--admin"
    )
    assert code == 2 and "labels starting with '('" in one_error(err)


def test_models_prepare_names_a_reranker_folder_that_holds_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "not-a-reranker"
    empty.mkdir()
    code, _, err = run(
        capsys, "--home", str(tmp_path / "h"), "models", "prepare", "--reranker", str(empty)
    )
    assert code == 2 and "holds neither the model's weights nor a LoRA adapter" in one_error(err)
