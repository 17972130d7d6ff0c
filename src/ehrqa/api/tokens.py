"""Bearer tokens: who may call the HTTP service, and for which patients.

Tokens live in ``<home>/auth.sqlite3``. Only the SHA-256 of each token is stored, with a
label (the name shown in ``ehrqa tokens list`` and the audit log), its scope (admin, or a
list of patient ids), its role (``clinician`` or ``patient``: what the web page shows and
whether decision support may be called), and when it was created, last used and revoked.
The token itself is shown once, when it is created.

Stores made before roles existed have no ``role`` column: it is added on open, and a token
without a stored role keeps the role its scope implies (admin: clinician; patients: patient).
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

if TYPE_CHECKING:
    from ehrqa.store.base import RecordStore

AUTH_FILE = "auth.sqlite3"
TOKEN_BYTES = 32
SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    label TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    admin INTEGER NOT NULL,
    patients TEXT NOT NULL,
    created TEXT NOT NULL,
    last_used TEXT,
    revoked TEXT,
    role TEXT
)
"""
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


def _stored_role(value: str | None, admin: bool) -> Role:
    """A stored role; a token from before roles (NULL) or an unknown value gets the default."""
    return cast(Role, value) if value in ROLES else default_role(admin)


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
        try:
            self._db.execute(SCHEMA)
            self._migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreError(
                f"cannot open the token store at {path} ({exc}): move the damaged file away "
                "and create the tokens again with `ehrqa tokens create`"
            ) from exc
        warn_if_shared(self.path)
        self._lock = threading.Lock()

    def _migrate(self) -> None:
        """Add the ``role`` column to a store made before roles (its tokens keep working)."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(tokens)")}
        if "role" not in columns:
            self._db.execute("ALTER TABLE tokens ADD COLUMN role TEXT")

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
            row = self._db.execute(
                "SELECT label, hash, admin, patients, revoked, role FROM tokens WHERE hash = ?",
                (digest,),
            ).fetchone()
            # The lookup is by a hash of a 256-bit secret, so its timing leaks nothing
            # usable; the constant-time comparison guards against a lookup that ever
            # matches loosely (collation, truncation).
            if row is None or not hmac.compare_digest(row[1], digest) or row[4] is not None:
                return None
            self._db.execute("UPDATE tokens SET last_used = ? WHERE label = ?", (_now(), row[0]))
        role = _stored_role(row[5], bool(row[2]))
        if row[2]:
            return Principal(row[0], admin=True, role=role)
        return Principal(row[0], admin=False, patients=frozenset(json.loads(row[3])), role=role)

    def list(self) -> list[TokenInfo]:
        """Every token, revoked ones included, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT label, admin, patients, created, last_used, revoked, role FROM tokens"
                " ORDER BY created, label"
            ).fetchall()
        return [
            TokenInfo(
                r[0],
                bool(r[1]),
                tuple(json.loads(r[2])),
                r[3],
                r[4],
                r[5],
                _stored_role(r[6], bool(r[1])),
            )
            for r in rows
        ]

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
