"""Data: the committed demo patients, and (later) synthetic patients and QA datasets."""
