"""The files ehrqa keeps in a data directory: private to their owner, and never a foreign one.

Issue 17, findings 5 and 6: stores, tokens, audit and feedback were created 0644 in a 0755
folder (any local user could read patient data and token hashes); a foreign or damaged
``--store`` gave a traceback, and a missing folder was silently created.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import bundle, observation, patient, write_json
from ehrqa.api.audit import AuditEntry, AuditLog
from ehrqa.api.tokens import TokenStore
from ehrqa.cds.hooks import FeedbackStore
from ehrqa.core.config import private_dir, warn_if_shared
from ehrqa.core.errors import StoreError
from ehrqa.ingest.files import ingest_paths
from ehrqa.store import SqliteStore, open_store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most systems run with (0022: new files 0644 unless ehrqa says otherwise)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_a_new_data_directory_and_its_store_are_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = open_store(home)
    try:
        ingest_paths(
            store,
            [
                write_json(
                    tmp_path / "b.json", bundle(patient(), observation("o1", "2024-01-01", 7.0))
                )
            ],
        )
        # The write-ahead log and shared memory exist while the store is open.
        files = [home / f"ehrqa.sqlite3{suffix}" for suffix in ("", "-wal", "-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        store.close()
    assert mode(home) == 0o700


def test_tokens_audit_and_feedback_files_are_private(tmp_path: Path) -> None:
    home = tmp_path / "home"
    tokens = TokenStore.in_home(home)
    tokens.create("admin", admin=True)
    log = AuditLog.in_home(home)
    log.write(AuditEntry("admin", patient="p1"), method="GET", route="/v1/x", status=200)
    feedback = FeedbackStore.in_home(home)
    try:
        assert mode(home) == 0o700
        for name in ("auth.sqlite3", "audit.jsonl", "cds_feedback.sqlite3"):
            assert mode(home / name) == 0o600, name
    finally:
        tokens.close()
        feedback.close()


def test_an_audit_log_removed_while_serving_comes_back_private(tmp_path: Path) -> None:
    log = AuditLog.in_home(tmp_path)
    log.path.unlink()
    log.write(AuditEntry("admin"), method="GET", route="/v1/me", status=200)
    assert mode(log.path) == 0o600


def test_a_looser_existing_folder_and_store_are_warned_about_not_changed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "shared"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    SqliteStore(home / "ehrqa.sqlite3").close()
    (home / "ehrqa.sqlite3").chmod(0o644)
    with caplog.at_level(logging.WARNING):
        open_store(home).close()
    lines = [r.getMessage() for r in caplog.records]
    assert f"folder {home} is open to other local users (mode 755): run `chmod 700 {home}`" in lines
    store_file = home / "ehrqa.sqlite3"
    assert f"run `chmod 600 {store_file}`" in "\n".join(lines)
    assert mode(home) == 0o755 and mode(store_file) == 0o644  # the user decides


def test_a_private_folder_is_not_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        private_dir(tmp_path / "new")
        assert not warn_if_shared(tmp_path / "new")
    assert caplog.records == []


def test_a_missing_folder_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "nonexistent" / "dir" / "x.sqlite3"
    with pytest.raises(StoreError, match=r"the folder .*nonexistent/dir .* does not exist"):
        SqliteStore(path)
    assert not (tmp_path / "nonexistent").exists()


@pytest.mark.parametrize(
    "content",
    [b"root:x:0:0:root:/root:/bin/bash\n", b"\x00" * 200, b"SQLite format 3\x00" + b"\x01" * 84],
    ids=["text", "zeros", "bad-header"],
)
def test_a_file_that_is_no_database_is_one_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "passwd"
    path.write_bytes(content)
    with pytest.raises(StoreError, match="is not an ehrqa record store"):
        SqliteStore(path)
    assert path.read_bytes() == content  # nothing written to it


def test_another_programs_database_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "places.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE moz_places (url TEXT)")
        db.execute("INSERT INTO moz_places VALUES ('https://example.org')")
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"database of another program \(tables: moz_places\)"):
        SqliteStore(path)
    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists()


def test_a_database_with_a_version_but_no_records_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE things (x)")
        db.execute("PRAGMA user_version = 1")
    db.close()
    with pytest.raises(StoreError, match="not an ehrqa record store"):
        SqliteStore(path)


def test_a_damaged_store_is_a_store_error_when_read(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = SqliteStore(path)
    resources = [patient(), *(observation(f"o{n}", "2024-01-01", n) for n in range(300))]
    ingest_paths(store, [write_json(tmp_path / "b.json", bundle(*resources))])
    store.close()
    with path.open("r+b") as handle:  # overwrite everything past the first pages
        handle.seek(4096 * 3)
        handle.write(b"\xff" * (path.stat().st_size - 4096 * 3))
    with pytest.raises(StoreError, match=r"cannot be read .*restore it from a backup"):
        damaged = SqliteStore(path)
        try:
            damaged.patients()
            list(damaged.iter_records())
        finally:
            damaged.close()


@pytest.mark.parametrize("maker", [TokenStore, FeedbackStore], ids=["tokens", "feedback"])
def test_damaged_token_and_feedback_files_are_store_errors(tmp_path: Path, maker: type) -> None:
    path = tmp_path / "x.sqlite3"
    path.write_text("not a database\n" * 20)
    with pytest.raises(StoreError, match=f"cannot open the .* at {path}"):
        maker(path)
