"""Access control: the bearer-token dependency and the one place scopes are checked.

Every ``/v1`` route depends on :func:`authenticate`, which resolves the
``Authorization: Bearer`` header to a :class:`~ehrqa.api.tokens.Principal` (401 when it is
missing, unknown or revoked). Routes about a patient call :func:`require_patient`, which
answers 403 with the *same* body whether the patient is outside the token's scope or does
not exist at all, so a scoped token cannot probe for patient ids.
"""

from __future__ import annotations

from fastapi import Request

from ehrqa.api.audit import note
from ehrqa.api.errors import AuthenticationError, PermissionDeniedError
from ehrqa.api.state import app_state
from ehrqa.api.tokens import LOCAL_ADMIN, Principal
from ehrqa.store.base import PatientSummary

BEARER = "bearer"
# The audit log's ``token`` of a refused request (labels of real tokens are never these).
NO_TOKEN = "(no token)"
UNKNOWN_TOKEN = "(unknown or revoked token)"


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header value, else None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != BEARER or not token:
        return None
    return token


def authenticate(request: Request) -> Principal:
    """The principal a request acts for (a FastAPI dependency).

    Without a token store every request acts as the local admin (``--no-auth``, loopback
    only). Raises AuthenticationError (401) for a missing, unknown or revoked token, and
    notes the refusal for the audit log (without the token).
    """
    tokens = app_state(request).auth
    if tokens is None:
        return LOCAL_ADMIN
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        note(request.scope, NO_TOKEN)  # audited as a failed sign-in, like a wrong token
        raise AuthenticationError(
            "this route needs a token: send the header 'Authorization: Bearer TOKEN' "
            "(an administrator creates one with `ehrqa tokens create`)"
        )
    principal = tokens.resolve(token)
    if principal is None:
        note(request.scope, UNKNOWN_TOKEN)  # never the token itself: it may be a real one
        raise AuthenticationError(
            "the token is unknown or has been revoked: ask an administrator for a new one "
            "(`ehrqa tokens create`)"
        )
    return principal


def denied(principal: Principal) -> PermissionDeniedError:
    """The one 403 for any patient a token may not see (whether or not it exists)."""
    return PermissionDeniedError(
        f"token {principal.label!r} may not access this patient: ask an administrator for "
        "a token whose scope includes it"
    )


def require_patient(request: Request, principal: Principal, patient_id: str) -> str:
    """The patient id (without ``Patient/``) when ``principal`` may see it; 403 otherwise.

    The request is noted for the audit log either way. Existence is checked only after
    the scope, by the route, so a 404 reaches only admins and in-scope tokens.
    """
    patient_id = patient_id.removeprefix("Patient/")
    note(request.scope, principal.label, patient=patient_id)
    if not principal.may_see(patient_id):
        raise denied(principal)
    return patient_id


def require_admin(principal: Principal, what: str) -> None:
    """403 unless ``principal`` is an admin token; ``what`` names the action refused."""
    if not principal.admin:
        raise PermissionDeniedError(
            f"{what} needs an admin token; token {principal.label!r} is scoped to patients"
        )


def require_clinician(request: Request, principal: Principal, what: str) -> None:
    """403 unless ``principal`` has the clinician role; ``what`` names the tool refused.

    Decision support is for clinicians: a patient's token (the default for a token scoped
    to patients) may read and ask about its records but not call these routes.
    """
    if not principal.clinician:
        note(request.scope, principal.label)
        raise PermissionDeniedError(
            f"{what} is for clinicians; token {principal.label!r} has the patient role "
            "(an administrator creates clinician tokens with `ehrqa tokens create --role "
            "clinician`)"
        )


def authenticate_clinician(request: Request) -> Principal:
    """The principal of a clinician's token (a FastAPI dependency for decision support).

    401 as :func:`authenticate`; 403 for a token with the patient role.
    """
    principal = authenticate(request)
    require_clinician(request, principal, "decision support")
    return principal


def visible(principal: Principal, patients: list[PatientSummary]) -> list[PatientSummary]:
    """The patients of a list that ``principal`` may see."""
    return [p for p in patients if principal.may_see(p.id)]
