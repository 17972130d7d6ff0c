"""Dates as records write them."""

from __future__ import annotations

from datetime import date


def iso_day(value: object) -> date | None:
    """The day an ISO date or dateTime string names (``"2012-10-11T08:00:00Z"``), or None."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None
