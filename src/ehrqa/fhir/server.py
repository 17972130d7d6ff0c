"""A read-only client for FHIR R4 servers: one patient's resources, the list of patients.

Fetching a patient asks for ``Patient/{id}/$everything`` and follows ``Bundle.link[next]``;
a server that does not support the operation (404/400/405/501, or an OperationOutcome with
``not-supported``) is asked instead with one paged search per resource type
(``Condition?patient=ID`` …). With ``since`` only resources changed after that instant are
asked for (``_since`` on ``$everything``, ``_lastUpdated=gt…`` on searches).

Requests are retried by :mod:`ehrqa.core.http_retry`'s policy (429/502/503/504 honouring
``Retry-After``, timeouts and connection errors, with backoff and jitter). Authentication is
a static bearer token or SMART Backend Services (a client-credentials grant with a signed JWT
assertion), cached until near expiry.

Errors name the URL and the status, never the content of a resource.
"""

from __future__ import annotations

import email.utils
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urljoin

import httpx

from ehrqa.core.errors import BackendUnavailableError, ConfigError, NotFoundError
from ehrqa.core.http_retry import RetryPolicy
from ehrqa.core.http_retry import parse_retry_after as parse_retry_after  # re-exported

# The patient-compartment types ehrqa stores and renders, asked for one by one when the
# server has no $everything. Each has a ``patient`` search parameter in R4.
PATIENT_TYPES: tuple[str, ...] = (
    "AllergyIntolerance",
    "CarePlan",
    "CareTeam",
    "Claim",
    "Condition",
    "Coverage",
    "Device",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "ExplanationOfBenefit",
    "Goal",
    "ImagingStudy",
    "Immunization",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
    "Procedure",
    "SupplyDelivery",
)
# Statuses with which a server says "no such operation here" for $everything.
UNSUPPORTED_STATUSES = frozenset({400, 404, 405, 501})
# A next link is followed at most this many times (a server that links a page to itself
# would otherwise loop forever).
MAX_PAGES = 10_000
FHIR_JSON = "application/fhir+json"


class FhirServerError(BackendUnavailableError):
    """A FHIR server answered with an error or could not be reached (after retries)."""

    def __init__(self, message: str, *, url: str = "", status: int | None = None) -> None:
        self.url = url
        self.status = status
        super().__init__(message)


class Auth(Protocol):
    """Supplies the ``Authorization`` header for requests to the FHIR server."""

    def header(self, client: httpx.Client) -> str | None:
        """The header value, e.g. ``Bearer abc``; None for no header."""
        ...

    def invalidate(self) -> None:
        """Forget a cached credential (called once after a 401)."""
        ...


@dataclass(frozen=True)
class BearerToken:
    """A fixed bearer token (``--token`` / ``EHRQA_FHIR_TOKEN``)."""

    token: str

    def header(self, client: httpx.Client) -> str | None:
        """``Bearer <token>``."""
        return f"Bearer {self.token}"

    def invalidate(self) -> None:
        """A fixed token cannot be renewed."""


class SmartBackendAuth:
    """SMART Backend Services: client-credentials grant with a private-key JWT assertion.

    The access token is cached until ``refresh_margin`` seconds before it expires.
    """

    def __init__(
        self,
        client_id: str,
        private_key: bytes,
        token_url: str,
        *,
        scope: str = "system/*.read",
        key_id: str | None = None,
        refresh_margin: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not client_id or not token_url:
            raise ConfigError("SMART backend auth needs a client id and a token URL")
        self.client_id = client_id
        self.token_url = token_url
        self.scope = scope
        self.key_id = key_id
        self._key = _load_private_key(private_key)
        self.algorithm = _algorithm_for(self._key)
        self._margin = refresh_margin
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0

    @classmethod
    def from_key_file(
        cls, client_id: str, key_path: str | Path, token_url: str
    ) -> SmartBackendAuth:
        """Read the PEM private key from ``key_path``."""
        path = Path(key_path)
        if not path.is_file():
            raise NotFoundError(f"{path}: SMART private key not found; pass --smart-key PATH")
        return cls(client_id, path.read_bytes(), token_url)

    def client_assertion(self) -> str:
        """A signed JWT: iss = sub = client id, aud = token URL, exp in 5 minutes, random jti."""
        import jwt

        now = int(self._clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "exp": now + 300,
            "iat": now,
            "jti": uuid.uuid4().hex,
        }
        headers = {"kid": self.key_id} if self.key_id else None
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)

    def header(self, client: httpx.Client) -> str | None:
        """``Bearer <access token>``, exchanging a new assertion when the cached one is stale."""
        if self._token is None or self._clock() >= self._expires_at - self._margin:
            self._token, lifetime = self._exchange(client)
            self._expires_at = self._clock() + lifetime
        return f"Bearer {self._token}"

    def invalidate(self) -> None:
        """Drop the cached access token."""
        self._token = None

    def _exchange(self, client: httpx.Client) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "scope": self.scope,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": self.client_assertion(),
        }
        try:
            response = client.post(
                self.token_url, data=form, headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            raise FhirServerError(
                f"POST {self.token_url}: token request failed ({type(exc).__name__})",
                url=self.token_url,
            ) from exc
        body = _json_or_none(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if response.status_code != 200 or not isinstance(token, str):
            reason = body.get("error", "") if isinstance(body, dict) else ""
            raise FhirServerError(
                f"POST {self.token_url}: HTTP {response.status_code} {reason}".rstrip()
                + "; check --smart-client-id, that the server knows your public key, and the scope",
                url=self.token_url,
                status=response.status_code,
            )
        lifetime = body.get("expires_in", 300)
        return token, float(lifetime) if isinstance(lifetime, int | float) else 300.0


def _load_private_key(pem: bytes) -> Any:
    try:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendUnavailableError(
            "SMART backend auth needs PyJWT with crypto: pip install 'pyjwt[crypto]'"
        ) from exc
    try:
        return load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"the SMART private key is not an unencrypted PEM key ({exc}); "
            "export it with `openssl pkey -in KEY -out key.pem`"
        ) from exc


def _algorithm_for(key: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, rsa.RSAPrivateKey):
        return "RS384"
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP384R1):
        return "ES384"
    raise ConfigError("SMART backend auth needs an RSA (RS384) or EC P-384 (ES384) private key")


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@dataclass
class PatientFetch:
    """Everything fetched for one patient, and how.

    ``requested_at`` is the server's clock (its ``Date`` header) when the fetch began: the
    next incremental sync asks for changes after it, so nothing changed during the fetch
    is missed.
    """

    patient_id: str
    resources: list[dict[str, Any]]
    full_urls: dict[str, str]
    requested_at: str
    method: Literal["everything", "search"]
    since: str | None = None


@dataclass
class _Page:
    bundle: dict[str, Any]
    url: str


class FhirClient:
    """Reads patients and their resources from one FHIR R4 server.

    ``transport`` replaces the network (``httpx.MockTransport`` in tests); ``sleep`` and
    ``rng`` make retries testable.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: Auth | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        page_size: int = 200,
        types: Sequence[str] = PATIENT_TYPES,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"--fhir-server must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/") + "/"
        self.auth = auth
        self.retry = retry or RetryPolicy()
        self.page_size = page_size
        self.types = tuple(types)
        self.requests = 0
        self.everything_supported: bool | None = None
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = httpx.Client(
            timeout=timeout, transport=transport, headers={"Accept": FHIR_JSON}
        )

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    # -- requests ----------------------------------------------------------------
    def get(self, path_or_url: str, params: Mapping[str, str] | None = None) -> httpx.Response:
        """GET with auth and retries; return the final response whatever its status.

        A 401 renews the credential once. Raises :class:`FhirServerError` when the server
        stays unreachable.
        """
        url = urljoin(self.base_url, path_or_url)
        response = self._get_with_retries(url, params)
        if response.status_code == 401 and self.auth is not None:
            self.auth.invalidate()
            response = self._get_with_retries(url, params)
        return response

    def _get_with_retries(self, url: str, params: Mapping[str, str] | None) -> httpx.Response:
        tries = 0

        def send() -> httpx.Response:
            nonlocal tries
            tries += 1
            self.requests += 1
            headers = {}
            if self.auth is not None and (value := self.auth.header(self._http)):
                headers["Authorization"] = value
            return self._http.get(url, params=params, headers=headers)

        try:
            return self.retry.send(send, method="GET", sleep=self._sleep, rng=self._rng)
        except httpx.TransportError as exc:
            raise FhirServerError(
                f"GET {url}: {type(exc).__name__} after {tries} tries; "
                "check the URL and that the server is running",
                url=url,
            ) from exc

    def get_json(self, path_or_url: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET a resource or Bundle; raise :class:`FhirServerError` / NotFoundError on errors."""
        response = self.get(path_or_url, params)
        _raise_for_status(response)
        return _resource_body(response)

    def pages(self, path: str, params: Mapping[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """The Bundles of a search or operation, following ``link[relation=next]``."""
        for page in self._pages(path, params):
            yield page.bundle

    def _pages(self, path: str, params: Mapping[str, str] | None) -> Iterator[_Page]:
        url: str | None = urljoin(self.base_url, path)
        seen: set[str] = set()
        query = params
        while url is not None and len(seen) < MAX_PAGES:
            bundle = self.get_json(url, query)
            yield _Page(bundle, url)
            # (httpx.URL(url, params=None) would drop the query of a next link.)
            seen.add(str(httpx.URL(url, params=query)) if query else url)
            url, query = next_link(bundle), None
            if url is not None and url in seen:
                raise FhirServerError(f"GET {url}: the server links a page to itself", url=url)

    # -- patients ------------------------------------------------------------------
    def patient_ids(self, since: str | None = None) -> Iterator[str]:
        """The ids of the server's patients (those changed after ``since`` when given)."""
        params = {"_count": str(self.page_size), "_elements": "id"}
        if since:
            params["_lastUpdated"] = f"gt{since}"
        for bundle in self.pages("Patient", params):
            for resource in bundle_resources(bundle):
                if resource.get("resourceType") == "Patient" and isinstance(
                    resource.get("id"), str
                ):
                    yield resource["id"]

    def fetch_patient(self, patient_id: str, since: str | None = None) -> PatientFetch:
        """All of one patient's resources (changed after ``since``), every page fetched.

        Uses ``$everything`` unless the server said before that it lacks the operation.
        Raises NotFoundError when the server has no such patient.
        """
        if self.everything_supported is not False:
            fetched = self._everything(patient_id, since)
            if fetched is not None:
                self.everything_supported = True
                return PatientFetch(patient_id, *fetched, method="everything", since=since)
            self.everything_supported = False
        fetched = self._search_each_type(patient_id, since)
        return PatientFetch(patient_id, *fetched, method="search", since=since)

    def _everything(self, patient_id: str, since: str | None) -> _Fetched | None:
        path = f"Patient/{patient_id}/$everything"
        params = {"_count": str(self.page_size)}
        if since:
            params["_since"] = since
        response = self.get(path, params)
        if _is_unsupported(response):
            return None
        _raise_for_status(response)
        first = _resource_body(response)
        collected = _Collected()
        collected.add(first)
        for bundle in self._follow(first):
            collected.add(bundle)
        return collected.resources(), collected.full_urls, server_time(response) or _now_iso()

    def _follow(self, first: dict[str, Any]) -> Iterator[dict[str, Any]]:
        url = next_link(first)
        if url is None:
            return
        yield from self.pages(url)

    def _search_each_type(self, patient_id: str, since: str | None) -> _Fetched:
        collected = _Collected()
        response = self.get(f"Patient/{patient_id}")
        _raise_for_status(response)
        patient = _resource_body(response)
        if patient.get("resourceType") != "Patient":
            raise FhirServerError(
                f"GET {self.base_url}Patient/{patient_id}: expected a Patient, "
                f"got {patient.get('resourceType')!r}",
                url=f"{self.base_url}Patient/{patient_id}",
            )
        if since is None or _after(patient, since):
            collected.add_resource(patient)
        # "Patient/ID" rather than a bare id: some servers (Medplum) match only the former.
        params = {"patient": f"Patient/{patient_id}", "_count": str(self.page_size)}
        if since:
            params["_lastUpdated"] = f"gt{since}"
        for rtype in self.types:
            for bundle in self.pages(rtype, params):
                collected.add(bundle)
        return collected.resources(), collected.full_urls, server_time(response) or _now_iso()


# resources, fullUrl → Type/id, and the server's time when the fetch began
_Fetched = tuple[list[dict[str, Any]], dict[str, str], str]


class _Collected:
    """Resources gathered across pages, each ``Type/id`` once (the last copy wins)."""

    def __init__(self) -> None:
        self._by_ref: dict[str, dict[str, Any]] = {}
        self.full_urls: dict[str, str] = {}

    def add(self, bundle: dict[str, Any]) -> None:
        for entry in bundle.get("entry") or []:
            if not isinstance(entry, dict) or not _is_match(entry):
                continue
            resource = entry.get("resource")
            if isinstance(resource, dict):
                ref = self.add_resource(resource)
                if ref and isinstance(entry.get("fullUrl"), str):
                    self.full_urls[entry["fullUrl"]] = ref

    def add_resource(self, resource: dict[str, Any]) -> str | None:
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if not isinstance(rtype, str) or not isinstance(rid, str):
            # Kept under a unique key, so that validation reports it rather than dropping it.
            key = f"?{len(self._by_ref)}"
            self._by_ref[key] = resource
            return None
        self._by_ref[f"{rtype}/{rid}"] = resource
        return f"{rtype}/{rid}"

    def resources(self) -> list[dict[str, Any]]:
        return list(self._by_ref.values())


def _is_match(entry: dict[str, Any]) -> bool:
    """Skip the OperationOutcome entries (search.mode = outcome) servers add to searchsets."""
    search = entry.get("search")
    return not (isinstance(search, dict) and search.get("mode") == "outcome")


def bundle_resources(bundle: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The resources of a Bundle's entries, OperationOutcome entries left out."""
    return [
        entry["resource"]
        for entry in bundle.get("entry") or []
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict) and _is_match(entry)
    ]


def next_link(bundle: Mapping[str, Any]) -> str | None:
    """The URL of ``Bundle.link[relation=next]``, or None on the last page."""
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


def _after(resource: Mapping[str, Any], since: str) -> bool:
    updated = (resource.get("meta") or {}).get("lastUpdated")
    if not isinstance(updated, str):
        return True
    try:
        return _parse_instant(updated) > _parse_instant(since)
    except ValueError:
        return True


def _parse_instant(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def server_time(response: httpx.Response) -> str | None:
    """The server's clock from its ``Date`` header, as an ISO instant, or None."""
    value = response.headers.get("Date")
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _outcome_codes(body: Any) -> set[str]:
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return set()
    return {str(i.get("code")) for i in body.get("issue") or [] if isinstance(i, dict)}


def _is_unsupported(response: httpx.Response) -> bool:
    if response.status_code in UNSUPPORTED_STATUSES:
        return True
    return "not-supported" in _outcome_codes(_json_or_none(response))


def _outcome_text(body: Any) -> str:
    """The first issue's text of an OperationOutcome, shortened (no resource content)."""
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return ""
    for issue in body.get("issue") or []:
        if isinstance(issue, dict):
            details = issue.get("details")
            detail_text = details.get("text") if isinstance(details, dict) else None
            text = issue.get("diagnostics") or detail_text or issue.get("code") or ""
            return str(text)[:200]
    return ""


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    url = str(response.request.url)
    detail = _outcome_text(_json_or_none(response))
    message = f"GET {url}: HTTP {status}" + (f" ({detail})" if detail else "")
    if status == 404:
        raise NotFoundError(message + "; check the patient id and the server URL")
    if status in (401, 403):
        message += "; pass a token (--token / EHRQA_FHIR_TOKEN) or SMART credentials"
    raise FhirServerError(message, url=url, status=status)


def _resource_body(response: httpx.Response) -> dict[str, Any]:
    body = _json_or_none(response)
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        raise FhirServerError(
            f"GET {response.request.url}: HTTP {response.status_code} but the body is not a "
            "FHIR JSON resource; is this the FHIR base URL?",
            url=str(response.request.url),
            status=response.status_code,
        )
    return body
