"""Reading FHIR files and FHIR servers into a record store."""
