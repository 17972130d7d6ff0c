"""FHIR R4 parsing, validation, normalisation and compact rendering."""
