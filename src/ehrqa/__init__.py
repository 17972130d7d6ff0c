"""ehrqa: private question answering over FHIR R4 health records with small local LLMs."""

__version__ = "0.1.0"
