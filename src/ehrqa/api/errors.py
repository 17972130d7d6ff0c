"""Errors of the HTTP service, each with its status code (see ``app.ERROR_STATUS``)."""

from __future__ import annotations

from ehrqa.core.errors import EhrqaError


class AuthenticationError(EhrqaError):
    """No bearer token, or one that is unknown or revoked (401)."""


class PermissionDeniedError(EhrqaError):
    """The token is valid but its scope does not cover what was asked (403)."""


class PayloadTooLargeError(EhrqaError):
    """The request body is larger than the service accepts (413)."""


class GenerationTimeoutError(EhrqaError):
    """Answering took longer than the per-request limit (504)."""
