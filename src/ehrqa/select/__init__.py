"""Task 1: selecting the resources that answer a question."""

from ehrqa.select.base import SELECTORS, Selected, Selection, Selector, get_selector

__all__ = ["SELECTORS", "Selected", "Selection", "Selector", "get_selector"]
