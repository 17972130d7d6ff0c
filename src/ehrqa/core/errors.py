"""Typed errors. Every error the library raises on purpose is an :class:`EhrqaError`.

Messages say what is wrong, where, and how to fix it. The CLI prints them as one red line
and exits with code 2.
"""

from __future__ import annotations


class EhrqaError(Exception):
    """Base class of every error ehrqa raises on purpose."""


class ConfigError(EhrqaError):
    """A configuration value is missing or invalid."""


class FhirValidationError(EhrqaError):
    """A FHIR resource or file is not valid R4 JSON.

    ``location`` names the file and entry; ``path`` the element inside the resource.
    """

    def __init__(
        self,
        message: str,
        *,
        location: str = "",
        resource_type: str = "",
        path: str = "",
    ) -> None:
        self.message = message
        self.location = location
        self.resource_type = resource_type
        self.path = path
        parts = [p for p in (location, resource_type, path) if p]
        prefix = " ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class NotFoundError(EhrqaError):
    """A patient, resource, model or file that was asked for does not exist."""


class BackendUnavailableError(EhrqaError):
    """A backend (model runtime, server, optional package) cannot be used here."""


class StoreError(EhrqaError):
    """The record store cannot be opened or is in an unexpected state."""
