"""make_patients: chunking, resuming and errors, with a fake generator in place of synthea."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from ehrqa.core.errors import BackendUnavailableError, ConfigError
from ehrqa.lab.data import patients
from ehrqa.lab.data.patients import chunk_dir, make_patients


class FakeSynthea:
    """Records each call and writes ``-p`` bundles into ``-o``/fhir, like the generator."""

    def __init__(self, fail_on_seed: int | None = None) -> None:
        self.calls: list[dict[str, str]] = []
        self.fail_on_seed = fail_on_seed

    def __call__(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
        args = dict(zip(command[3::2], command[4::2], strict=True))
        self.calls.append(args)
        kwargs["stdout"].write(b"Generating...\n")
        if int(args["-s"]) == self.fail_on_seed:
            return subprocess.CompletedProcess(command, 1)
        fhir = Path(args["-o"]) / "fhir"
        fhir.mkdir(parents=True, exist_ok=True)
        for n in range(int(args["-p"])):
            (fhir / f"Patient_{args['-s']}_{n}.json").write_text("{}")
        return subprocess.CompletedProcess(command, 0)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeSynthea:
    runner = FakeSynthea()
    monkeypatch.setattr(patients.subprocess, "run", runner)
    monkeypatch.setattr(patients, "synthea_available", lambda: True)
    return runner


def test_chunks_get_consecutive_seeds_and_sizes(tmp_path: Path, fake: FakeSynthea) -> None:
    progress: list[tuple[int, int]] = []
    paths = make_patients(
        tmp_path, count=25, seed=40, chunk=10, on_chunk=lambda *a: progress.append(a)
    )
    assert [(c["-s"], c["-p"]) for c in fake.calls] == [("40", "10"), ("41", "10"), ("42", "5")]
    assert all(c["-r"] == "20250101" and c["--threads"] == "1" for c in fake.calls)
    assert len(paths) == 25 and paths[0].parent == chunk_dir(tmp_path, 0) / "fhir"
    assert progress == [(1, 3), (2, 3), (3, 3)]
    done = orjson.loads((chunk_dir(tmp_path, 2) / ".done").read_bytes())
    assert done["seed"] == 42 and len(done["bundles"]) == 5


def test_rerun_resumes_and_redoes_unfinished_chunks(tmp_path: Path, fake: FakeSynthea) -> None:
    first = make_patients(tmp_path, count=30, seed=1, chunk=10)
    (chunk_dir(tmp_path, 1) / ".done").unlink()  # as if interrupted while making chunk 1
    (chunk_dir(tmp_path, 1) / "fhir" / "stray.json").write_text("{}")
    fake.calls.clear()
    again = make_patients(tmp_path, count=30, seed=1, chunk=10)
    assert [c["-s"] for c in fake.calls] == ["2"]
    assert again == first  # the half-made chunk was cleared, not added to
    fake.calls.clear()
    make_patients(tmp_path, count=30, seed=1, chunk=10)
    assert fake.calls == []


def test_a_failed_chunk_is_not_marked_done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(patients.subprocess, "run", FakeSynthea(fail_on_seed=6))
    monkeypatch.setattr(patients, "synthea_available", lambda: True)
    with pytest.raises(BackendUnavailableError, match="chunk 1"):
        make_patients(tmp_path, count=20, seed=5, chunk=10)
    assert (chunk_dir(tmp_path, 0) / ".done").is_file()
    assert not (chunk_dir(tmp_path, 1) / ".done").exists()
    assert "Generating" in (chunk_dir(tmp_path, 1) / "synthea.log").read_text()


def test_missing_synthea_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(patients.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BackendUnavailableError, match=r"pip install 'ehrqa\[synthea\]'"):
        make_patients(tmp_path, count=3, seed=0)


def test_finished_chunks_need_no_synthea(
    tmp_path: Path, fake: FakeSynthea, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = make_patients(tmp_path, count=4, seed=0, chunk=2)
    monkeypatch.setattr(patients, "synthea_available", lambda: False)
    assert make_patients(tmp_path, count=4, seed=0, chunk=2) == made


def test_the_real_command_line(tmp_path: Path) -> None:
    command = patients.synthea_command(3, 7, "20250101", tmp_path)
    assert command[1] == "-c" and "synthea.cli" in command[2]
    assert command[3:] == [
        "-p",
        "3",
        "-s",
        "7",
        "-r",
        "20250101",
        "-o",
        str(tmp_path),
        "--threads",
        "1",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"count": 0}, "count"),
        ({"chunk": 0}, "chunk"),
        ({"seed": -1}, "seed"),
        ({"reference_date": "2025-01-01"}, "YYYYMMDD"),
        ({"reference_date": "20251301"}, "YYYYMMDD"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"count": 5, "seed": 0, **kwargs}
    with pytest.raises(ConfigError, match=message):
        make_patients(tmp_path, **args)
