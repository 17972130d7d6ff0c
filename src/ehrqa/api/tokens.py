"""Bearer tokens: who may call the HTTP service, and for which patients.

Tokens live in ``<home>/auth.sqlite3``. Only the SHA-256 of each token is stored, with a
label (the name shown in ``ehrqa tokens list`` and the audit log), its scope (admin, or a
list of patient ids), its role (``clinician`` or ``patient``: what the web page shows and
whether decision support may be called), and when it was created, last used and revoked.
The token itself is shown once, when it is created.

The schema is migrated on open (:data:`MIGRATIONS`). Stores made before roles existed have
no ``role`` column: it is added, and a token without a stored role keeps the role its scope
implies (admin: clinician; patients: patient).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from ehrqa.core.config import private_dir, private_file, warn_if_shared
from ehrqa.core.errors import ConfigError, NotFoundError, StoreError
from ehrqa.store.migrations import Migration, SqliteDatabase, migrate
from ehrqa.store.rows import from_row

if TYPE_CHECKING:
    from ehrqa.store.base import RecordStore

AUTH_FILE = "auth.sqlite3"
TOKEN_BYTES = 32


def _add_role_column(db: sqlite3.Connection) -> None:
    """Add ``role``, unless the file is one made before versions were kept that has it."""
    columns = {row["name"] for row in db.execute("PRAGMA table_info(tokens)")}
    if "role" not in columns:
        db.execute("ALTER TABLE tokens ADD COLUMN role TEXT")


# Files made before versions were kept are at version 0 and may hold either schema: hence
# IF NOT EXISTS, and a role column added only where missing. Never edit a released step.
MIGRATIONS: tuple[Migration[sqlite3.Connection], ...] = (
    Migration(
        1,
        "the tokens table",
        """
        CREATE TABLE IF NOT EXISTS tokens (
            label TEXT PRIMARY KEY,
            hash TEXT NOT NULL UNIQUE,
            admin INTEGER NOT NULL,
            patients TEXT NOT NULL,
            created TEXT NOT NULL,
            last_used TEXT,
            revoked TEXT
        )
        """,
    ),
    Migration(2, "the role of each token", _add_role_column),
)
Role = Literal["clinician", "patient"]
ROLES: tuple[Role, ...] = ("clinician", "patient")


def default_role(admin: bool) -> Role:
    """The role of a token that names none: admin tokens are clinicians', scoped ones patients'."""
    return "clinician" if admin else "patient"


def check_role(role: str | None, admin: bool) -> Role:
    """``role`` checked (None: the scope's default); ConfigError for an unknown or admin patient."""
    if role is None:
        return default_role(admin)
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}: choose --role clinician or --role patient")
    if admin and role == "patient":
        raise ConfigError("an --admin token is a clinician's: leave out --role patient")
    return cast(Role, role)


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: the token's label, scope (``patients`` is None for admin) and
    role (None: the scope's default, see :func:`default_role`)."""

    label: str
    admin: bool
    patients: frozenset[str] | None = None
    role: Role | None = None

    def __post_init__(self) -> None:
        if self.role is None:
            object.__setattr__(self, "role", default_role(self.admin))

    @property
    def clinician(self) -> bool:
        """Whether this principal may use clinician tools (decision support)."""
        return self.role == "clinician"

    def may_see(self, patient_id: str) -> bool:
        """Whether this principal may read (and ask about) the patient."""
        return self.admin or patient_id.removeprefix("Patient/") in (self.patients or ())

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``GET /v1/me``."""
        patients = None if self.patients is None else sorted(self.patients)
        return {"admin": self.admin, "patients": patients, "name": self.label, "role": self.role}


# What every request acts as when the service runs without access control (loopback only).
LOCAL_ADMIN = Principal("local", admin=True)


@dataclass(frozen=True)
class TokenInfo:
    """One stored token as ``ehrqa tokens list`` shows it (never the token itself)."""

    label: str
    admin: bool
    patients: tuple[str, ...]
    created: str
    last_used: str | None
    revoked: str | None
    role: Role = "clinician"

    @property
    def scope(self) -> str:
        """``admin`` or the comma-separated patient ids."""
        return "admin" if self.admin else ", ".join(self.patients)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "label": self.label,
            "admin": self.admin,
            "patients": None if self.admin else list(self.patients),
            "role": self.role,
            "created": self.created,
            "last_used": self.last_used,
            "revoked": self.revoked,
        }


def hash_token(token: str) -> str:
    """The hex SHA-256 of a token: what is stored and looked up."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _scope(admin: bool, patients: Iterable[str]) -> tuple[str, ...]:
    ids = tuple(dict.fromkeys(p.strip().removeprefix("Patient/") for p in patients if p.strip()))
    if admin and ids:
        raise ConfigError("a token is either --admin or scoped to --patient ids, not both")
    if not admin and not ids:
        raise ConfigError("give the token a scope: --admin, or one or more --patient ID")
    return ids


def unknown_patients(store: RecordStore, patients: Iterable[str]) -> list[str]:
    """The ids among ``patients`` (with or without ``Patient/``) that ``store`` does not hold."""
    missing = []
    for patient in patients:
        pid = patient.strip().removeprefix("Patient/")
        try:
            store.patient(pid)
        except NotFoundError:
            missing.append(pid)
    return missing


_TOKEN_COLUMNS = "label, hash, admin, patients, created, last_used, revoked, role"


@dataclass(frozen=True)
class _TokenRow:
    """A row of the ``tokens`` table as stored (``patients`` is a JSON list)."""

    label: str
    hash: str
    admin: int
    patients: str
    created: str
    last_used: str | None
    revoked: str | None
    role: str | None

    @property
    def stored_role(self) -> Role:
        """The role; a token from before roles (NULL) or an unknown value gets the default."""
        return cast(Role, self.role) if self.role in ROLES else default_role(bool(self.admin))

    def principal(self) -> Principal:
        """Whom the token acts for."""
        if self.admin:
            return Principal(self.label, admin=True, role=self.stored_role)
        scope = frozenset(json.loads(self.patients))
        return Principal(self.label, admin=False, patients=scope, role=self.stored_role)

    def info(self) -> TokenInfo:
        """The token as ``ehrqa tokens list`` shows it."""
        return TokenInfo(
            label=self.label,
            admin=bool(self.admin),
            patients=tuple(json.loads(self.patients)),
            created=self.created,
            last_used=self.last_used,
            revoked=self.revoked,
            role=self.stored_role,
        )


class TokenStore:
    """The token table in one SQLite file; safe to share between threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            private_dir(self.path.parent)
            private_file(self.path)  # 0600 before SQLite creates it (and its -wal, -shm)
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the token store at {path}: {exc}") from exc
        self._db.row_factory = sqlite3.Row
        try:
            migrate(SqliteDatabase(self._db, f"the token store at {path}"), MIGRATIONS)
        except StoreError:
            self._db.close()
            raise
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreError(
                f"cannot open the token store at {path} ({exc}): move the damaged file away "
                "and create the tokens again with `ehrqa tokens create`"
            ) from exc
        warn_if_shared(self.path)
        self._lock = threading.Lock()

    @classmethod
    def in_home(cls, home: str | Path) -> TokenStore:
        """The token store of a data directory (``<home>/auth.sqlite3``)."""
        return cls(Path(home) / AUTH_FILE)

    def create(
        self,
        label: str,
        *,
        admin: bool = False,
        patients: Iterable[str] = (),
        role: str | None = None,
    ) -> str:
        """Store a new token and return it; it cannot be shown again.

        ``role`` is ``clinician`` or ``patient`` (None: clinician for admin, patient for a
        scoped token). ConfigError for an empty or already used label, a scope that is
        neither admin nor a non-empty list of patient ids, or an unknown or admin patient role.
        """
        label = label.strip()
        if not label:
            raise ConfigError("a token needs a --label, e.g. --label ward-7-tablet")
        if label.startswith("("):
            raise ConfigError(
                f"label {label!r}: labels starting with '(' name refused requests in the "
                "audit log; choose another --label"
            )
        ids = _scope(admin, patients)
        checked = check_role(role, admin)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        row = (label, hash_token(token), int(admin), json.dumps(list(ids)), _now(), checked)
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO tokens (label, hash, admin, patients, created, role)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    row,
                )
            except sqlite3.IntegrityError as exc:
                raise ConfigError(
                    f"a token labelled {label!r} already exists: choose another --label "
                    "(labels stay taken after revocation, so audit lines stay unambiguous)"
                ) from exc
        return token

    def resolve(self, token: str) -> Principal | None:
        """The principal of an active token (and mark it used); None if unknown or revoked."""
        digest = hash_token(token)
        with self._lock:
            found = self._db.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE hash = ?",
                (digest,),
            ).fetchone()
            stored = None if found is None else from_row(_TokenRow, found)
            # The lookup is by a hash of a 256-bit secret, so its timing leaks nothing
            # usable; the constant-time comparison guards against a lookup that ever
            # matches loosely (collation, truncation).
            if (
                stored is None
                or not hmac.compare_digest(stored.hash, digest)
                or stored.revoked is not None
            ):
                return None
            self._db.execute(
                "UPDATE tokens SET last_used = ? WHERE label = ?", (_now(), stored.label)
            )
        return stored.principal()

    def list(self) -> list[TokenInfo]:
        """Every token, revoked ones included, oldest first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_TOKEN_COLUMNS} FROM tokens ORDER BY created, label"
            ).fetchall()
        return [from_row(_TokenRow, row).info() for row in rows]

    def revoke(self, label: str) -> None:
        """Revoke the token ``label`` at once; NotFoundError when there is none."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE tokens SET revoked = COALESCE(revoked, ?) WHERE label = ?", (_now(), label)
            )
        if cursor.rowcount == 0:
            raise NotFoundError(f"no token labelled {label!r}: `ehrqa tokens list` shows them")

    def active_count(self) -> int:
        """How many tokens are not revoked."""
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM tokens WHERE revoked IS NULL").fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
