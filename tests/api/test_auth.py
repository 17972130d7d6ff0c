"""Access control: tokens, 401s, patient scopes (403 without existence leaks), the CLI."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner, Result

from ehrqa.api.auth import bearer_token
from ehrqa.api.tokens import MIGRATIONS, Principal, TokenStore, hash_token
from ehrqa.cli.serve import tokens_app
from ehrqa.cli.support import State
from ehrqa.core.errors import ConfigError, NotFoundError
from ehrqa.lab.data.demo import DEMO_CDS_PATIENT as OTHER_PATIENT
from ehrqa.lab.data.demo import DEMO_PATIENT

if TYPE_CHECKING:
    from api.conftest import Api

MISSING_PATIENT = "00000000-0000-0000-0000-000000000000"

# --- the token store -------------------------------------------------------------------------


def test_only_the_hash_is_stored_and_the_token_resolves(tmp_path: Path) -> None:
    tokens = TokenStore.in_home(tmp_path)
    token = tokens.create("ward", patients=["Patient/p1", "p2", "p1"])
    assert len(token) >= 43
    raw = (tmp_path / "auth.sqlite3").read_bytes()
    assert token.encode() not in raw
    stored = sqlite3.connect(tmp_path / "auth.sqlite3").execute("SELECT hash FROM tokens")
    assert stored.fetchone()[0] == hash_token(token)
    assert tokens.resolve(token) == Principal("ward", False, frozenset({"p1", "p2"}))
    assert tokens.list()[0].last_used is not None
    assert tokens.resolve(token + "x") is None


def test_revoked_tokens_stop_resolving_and_labels_stay_taken(tmp_path: Path) -> None:
    tokens = TokenStore.in_home(tmp_path)
    token = tokens.create("ops", admin=True)
    tokens.revoke("ops")
    assert tokens.resolve(token) is None
    assert tokens.active_count() == 0
    with pytest.raises(ConfigError, match="already exists"):
        tokens.create("ops", admin=True)
    with pytest.raises(NotFoundError, match="tokens list"):
        tokens.revoke("nobody")


@pytest.mark.parametrize(
    ("label", "admin", "patients", "message"),
    [
        ("", True, [], "needs a --label"),
        ("x", False, [], "give the token a scope"),
        ("x", False, [" "], "give the token a scope"),
        ("x", True, ["p1"], "not both"),
    ],
)
def test_bad_token_requests_are_refused(
    tmp_path: Path, label: str, admin: bool, patients: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        TokenStore.in_home(tmp_path).create(label, admin=admin, patients=patients)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Basic abc", None),
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
    ],
)
def test_bearer_token_parsing(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


# --- 401 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic YWRtaW46YWRtaW4="}],
    ids=["no-token", "unknown-token", "wrong-scheme"],
)
@pytest.mark.parametrize(
    "url", ["/v1/me", "/v1/patients", f"/v1/patients/{DEMO_PATIENT}", "/v1/docs/chunks/x%231"]
)
def test_requests_without_a_valid_token_get_401(api: Api, headers: dict[str, str], url: str):
    response = api.client.get(url, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "AuthenticationError"


def test_a_revoked_token_gets_401(api: Api) -> None:
    response = api.get("/v1/me", as_="revoked")
    assert response.status_code == 401
    assert "revoked" in response.json()["message"]


def test_open_routes_need_no_token(api: Api) -> None:
    assert api.client.get("/healthz").status_code == 200
    assert api.client.get("/cds-services").status_code == 200
    assert api.client.get("/openapi.json").status_code == 200


# --- scopes ----------------------------------------------------------------------------------


def test_me_describes_the_token(api: Api) -> None:
    assert api.get("/v1/me").json() == {
        "admin": True,
        "patients": None,
        "name": "admin",
        "role": "clinician",
    }
    assert api.get("/v1/me", as_="scoped").json() == {
        "admin": False,
        "patients": [DEMO_PATIENT],
        "name": "scoped",
        "role": "patient",
    }
    add_clinician(api)
    assert api.get("/v1/me", as_="clinician").json()["role"] == "clinician"


def add_clinician(api: Api) -> None:
    """A token scoped to the demo patient with the clinician role, as ``clinician``."""
    api.secrets["clinician"] = api.tokens.create(
        "clinician", patients=[DEMO_PATIENT], role="clinician"
    )


CDS_CALLS = [
    ("/v1/patients/{pid}/cds/summarize", {}),
    ("/v1/patients/{pid}/cds/treat", {"condition": "urinary tract infection"}),
    ("/v1/patients/{pid}/cds/differential", {"symptoms": "fever"}),
    ("/v1/cds/ask", {"question": "At what eGFR should metformin be stopped?"}),
    ("/cds-services/ehrqa-patient-view", {}),
    ("/cds-services/ehrqa-patient-view/feedback", {"feedback": []}),
]


@pytest.mark.parametrize(("url", "body"), CDS_CALLS)
def test_decision_support_refuses_a_patients_token(api: Api, url: str, body: dict[str, Any]):
    response = api.post(url.format(pid=DEMO_PATIENT), as_="scoped", json=body)
    assert response.status_code == 403
    assert response.json()["error"] == "PermissionDeniedError"
    assert "clinician" in response.json()["message"]


def test_a_clinicians_scoped_token_may_use_decision_support(api: Api) -> None:
    add_clinician(api)
    url = f"/v1/patients/{DEMO_PATIENT}/cds/summarize"
    assert api.post(url, as_="clinician", json={}).status_code == 200
    other = api.post(f"/v1/patients/{OTHER_PATIENT}/cds/summarize", as_="clinician", json={})
    assert other.status_code == 403


def test_scoped_tokens_list_only_their_patients(api: Api) -> None:
    assert {p["id"] for p in api.get("/v1/patients").json()} == {DEMO_PATIENT, OTHER_PATIENT}
    assert [p["id"] for p in api.get("/v1/patients", as_="scoped").json()] == [DEMO_PATIENT]
    assert api.get("/v1/patients?search=Satterfield", as_="scoped").json() == []


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("get", "/resources", None),
        ("post", "/ask", {"question": "Any allergies?"}),
        ("post", "/cds/summarize", {}),
        ("post", "/cds/treat", {"condition": "urinary tract infection"}),
        ("post", "/cds/differential", {"symptoms": "fever"}),
    ],
)
def test_out_of_scope_and_missing_patients_get_the_same_403(
    api: Api, method: str, suffix: str, body: dict[str, str] | None
) -> None:
    add_clinician(api)  # decision support needs the clinician role

    def call(pid: str) -> Any:
        kwargs = {} if body is None else {"json": body}
        return getattr(api, method)(f"/v1/patients/{pid}{suffix}", as_="clinician", **kwargs)

    other, missing = call(OTHER_PATIENT), call(MISSING_PATIENT)
    assert other.status_code == missing.status_code == 403
    assert other.json() == missing.json()
    assert other.json()["error"] == "PermissionDeniedError"
    assert call(DEMO_PATIENT).status_code == 200


def test_admins_get_404_for_a_missing_patient(api: Api) -> None:
    response = api.get(f"/v1/patients/{MISSING_PATIENT}")
    assert response.status_code == 404
    assert "ehrqa patients" in response.json()["message"]


def test_records_are_scope_checked_by_their_patient(api: Api) -> None:
    mine = api.get(f"/v1/patients/{DEMO_PATIENT}/resources?limit=1", as_="scoped").json()[0]
    theirs = api.get(f"/v1/patients/{OTHER_PATIENT}/resources?limit=1").json()[0]
    assert api.get(f"/v1/records/{mine['ref']}", as_="scoped").json()["patientId"] == DEMO_PATIENT
    other = api.get(f"/v1/records/{theirs['ref']}", as_="scoped")
    missing = api.get("/v1/records/Observation/no-such-id", as_="scoped")
    assert other.status_code == missing.status_code == 403
    assert other.json() == missing.json()
    assert api.get("/v1/records/Observation/no-such-id").status_code == 404


def test_document_questions_about_a_patient_are_scope_checked(api: Api) -> None:
    add_clinician(api)
    body = {"question": "At what eGFR should metformin be stopped?"}
    assert api.post("/v1/cds/ask", as_="clinician", json=body).status_code == 200
    other = api.post("/v1/cds/ask", as_="clinician", json={**body, "patient_id": OTHER_PATIENT})
    assert other.status_code == 403


def test_without_auth_every_request_acts_as_admin(make_api: Callable[..., Api]) -> None:
    api = make_api(auth=None)
    me = api.client.get("/v1/me").json()
    assert me["admin"] is True and me["patients"] is None
    assert len(api.client.get("/v1/patients").json()) == 2


# --- the tokens CLI --------------------------------------------------------------------------


def invoke(home: Path, *args: str) -> Result:
    state = State(overrides={"home": str(home)})
    return CliRunner().invoke(tokens_app, list(args), obj=state)


def test_tokens_cli_creates_lists_and_revokes(tmp_path: Path) -> None:
    created = invoke(tmp_path, "create", "--label", "ward-7", "--patient", "p1", "--json")
    assert created.exit_code == 0, created.output
    token = json.loads(created.stdout)["token"]
    assert invoke(tmp_path, "create", "--label", "ops", "--admin").exit_code == 0
    listed = invoke(tmp_path, "list", "--json")
    rows = {row["label"]: row for row in json.loads(listed.stdout)}
    assert rows["ward-7"]["patients"] == ["p1"] and rows["ops"]["admin"] is True
    assert token not in listed.stdout and hash_token(token) not in listed.stdout
    plain = invoke(tmp_path, "list").stdout
    assert "ward-7\tp1" in plain and "never used" in plain
    assert invoke(tmp_path, "revoke", "ward-7").exit_code == 0
    assert TokenStore.in_home(tmp_path).resolve(token) is None
    assert "revoked" in invoke(tmp_path, "list").stdout


def test_tokens_cli_sets_the_role(tmp_path: Path) -> None:
    made = invoke(tmp_path, "create", "--label", "dr", "-p", "p1", "--role", "clinician", "--json")
    assert made.exit_code == 0, made.output
    principal = TokenStore.in_home(tmp_path).resolve(json.loads(made.stdout)["token"])
    assert principal is not None and principal.role == "clinician" and principal.clinician
    assert "dr\tp1\tclinician" in invoke(tmp_path, "list").stdout
    bad = invoke(tmp_path, "create", "--label", "x", "--admin", "--role", "patient")
    assert isinstance(bad.exception, ConfigError)


@pytest.mark.parametrize(
    ("admin", "patients", "role", "expected"),
    [
        (True, [], None, "clinician"),
        (False, ["p1"], None, "patient"),
        (False, ["p1"], "clinician", "clinician"),
        (False, ["p1"], "patient", "patient"),
        (True, [], "clinician", "clinician"),
    ],
)
def test_token_roles_default_from_the_scope(
    tmp_path: Path, admin: bool, patients: list[str], role: str | None, expected: str
) -> None:
    tokens = TokenStore.in_home(tmp_path)
    principal = tokens.resolve(tokens.create("t", admin=admin, patients=patients, role=role))
    assert principal is not None and principal.role == expected
    assert tokens.list()[0].role == expected


@pytest.mark.parametrize(
    ("admin", "role", "message"),
    [(True, "patient", "clinician's"), (False, "nurse", "unknown role")],
)
def test_bad_roles_are_refused(tmp_path: Path, admin: bool, role: str, message: str) -> None:
    patients = [] if admin else ["p1"]
    with pytest.raises(ConfigError, match=message):
        TokenStore.in_home(tmp_path).create("t", admin=admin, patients=patients, role=role)


def test_a_token_store_from_before_roles_keeps_working(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "auth.sqlite3")
    old.execute(
        "CREATE TABLE tokens (label TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, admin INTEGER"
        " NOT NULL, patients TEXT NOT NULL, created TEXT NOT NULL, last_used TEXT, revoked TEXT)"
    )
    rows = [("ops", hash_token("old-admin"), 1, "[]"), ("ward", hash_token("old-p"), 0, '["p1"]')]
    old.executemany("INSERT INTO tokens VALUES (?, ?, ?, ?, '2026-01-01', NULL, NULL)", rows)
    old.commit()
    old.close()
    tokens = TokenStore.in_home(tmp_path)
    assert tokens.resolve("old-admin") == Principal("ops", True, None, "clinician")
    assert tokens.resolve("old-p") == Principal("ward", False, frozenset({"p1"}), "patient")
    new = tokens.create("dr", patients=["p1"], role="clinician")
    assert tokens.resolve(new) == Principal("dr", False, frozenset({"p1"}), "clinician")
    assert [info.role for info in tokens.list()] == ["clinician", "patient", "clinician"]


def test_a_token_store_of_the_code_before_versions_migrates_in_place(tmp_path: Path) -> None:
    # The table as the code before the migration runner made it (with roles), at version 0.
    old = sqlite3.connect(tmp_path / "auth.sqlite3")
    old.execute(
        "CREATE TABLE IF NOT EXISTS tokens (label TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE,"
        " admin INTEGER NOT NULL, patients TEXT NOT NULL, created TEXT NOT NULL,"
        " last_used TEXT, revoked TEXT, role TEXT)"
    )
    rows = [
        ("dr", hash_token("t-dr"), 0, '["p1"]', None, "clinician"),
        ("gone", hash_token("t-gone"), 1, "[]", "2026-02-01", None),
    ]
    old.executemany("INSERT INTO tokens VALUES (?, ?, ?, ?, '2026-01-01', NULL, ?, ?)", rows)
    old.commit()
    old.close()
    tokens = TokenStore.in_home(tmp_path)
    assert tokens.resolve("t-dr") == Principal("dr", False, frozenset({"p1"}), "clinician")
    assert tokens.resolve("t-gone") is None
    assert [(t.label, t.role, t.revoked) for t in tokens.list()] == [
        ("dr", "clinician", None),
        ("gone", "clinician", "2026-02-01"),
    ]
    tokens.close()
    version = sqlite3.connect(tmp_path / "auth.sqlite3").execute("PRAGMA user_version")
    assert version.fetchone()[0] == len(MIGRATIONS)


def test_tokens_cli_refuses_a_token_without_scope(tmp_path: Path) -> None:
    result = invoke(tmp_path, "create", "--label", "x")
    assert isinstance(result.exception, ConfigError)
