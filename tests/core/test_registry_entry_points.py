"""Registries offer what other packages declare as entry points, lazily, by the usual names."""

from __future__ import annotations

import importlib.metadata
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

from ehrqa.core.errors import NotFoundError
from ehrqa.core.registry import Registry
from ehrqa.fhir.validate import VALIDATORS, get_validator
from ehrqa.llm import CHAT_BACKENDS, load_chat_model
from ehrqa.llm.fake import FakeChatModel
from ehrqa.select.base import SELECTORS, get_selector
from ehrqa.store import STORES, open_store

PLUGIN = "ehrqa_fake_plugin"


class PluginSelector:
    name = "mine"


class PluginValidator:
    def validate(self, resource: dict[str, Any]) -> list[object]:
        return []


class PluginStore:
    def __init__(self, url: str) -> None:
        self.url = url


def plugin_chat_model(location: str, *, context_window: int) -> FakeChatModel:
    return FakeChatModel(name=f"plugin:{location}", context_window=context_window)


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Installs a fake plugin package: its entry points, and its module (counting imports)."""
    module = types.ModuleType(PLUGIN)
    module.__dict__.update(
        PluginSelector=PluginSelector,
        PluginValidator=PluginValidator,
        PluginStore=PluginStore,
        plugin_chat_model=plugin_chat_model,
    )
    calls = {"entry_points": 0}
    declared = {
        "ehrqa.selectors": {"mine": "PluginSelector", "default": "PluginSelector"},
        "ehrqa.validators": {"lenient": "PluginValidator"},
        "ehrqa.stores": {"mem": "PluginStore"},
        "ehrqa.chat_models": {"plug": "plugin_chat_model"},
    }

    def entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        calls["entry_points"] += 1
        return [
            importlib.metadata.EntryPoint(name, f"{PLUGIN}:{attr}", group)
            for name, attr in declared.get(group, {}).items()
        ]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    for registry in (SELECTORS, VALIDATORS, STORES, CHAT_BACKENDS):
        # Each test reads the groups afresh and leaves the registries as it found them.
        monkeypatch.setattr(registry, "_entries", dict(registry._entries))
        monkeypatch.setattr(registry, "_help", dict(registry._help))
        monkeypatch.setattr(registry, "_plugins_loaded", False)
    monkeypatch.setitem(sys.modules, PLUGIN, module)
    yield calls


def test_a_plugin_selector_is_found_by_its_name(plugins: dict[str, int]) -> None:
    assert "mine" in SELECTORS.names()
    assert isinstance(get_selector("mine"), PluginSelector)
    assert "ehrqa_fake_plugin:PluginSelector" in SELECTORS.describe("mine")


def test_unknown_names_still_say_did_you_mean_with_plugins_listed(
    plugins: dict[str, int],
) -> None:
    with pytest.raises(NotFoundError, match=r"did you mean 'mine'\?.*available: .*mine"):
        get_selector("mien")


def test_a_built_in_name_wins_over_a_plugin(plugins: dict[str, int]) -> None:
    from ehrqa.select.default import DefaultSelector

    assert SELECTORS.get("default") is DefaultSelector


def test_entry_points_are_read_on_first_lookup_and_imported_on_use(
    plugins: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry: Registry[type] = Registry("selector", "ehrqa.selectors")
    registry.register("builtin", PluginSelector)
    assert plugins["entry_points"] == 0  # nothing read when the registry is made
    monkeypatch.delitem(sys.modules, PLUGIN)  # importing the plugin now would fail
    assert "mine" in registry and plugins["entry_points"] == 1
    assert registry.get("builtin") is PluginSelector  # the plugin was never imported
    registry.names()
    assert plugins["entry_points"] == 1  # read once


def test_a_plugin_validator(plugins: dict[str, int]) -> None:
    assert isinstance(get_validator("lenient"), PluginValidator)
    with pytest.raises(NotFoundError, match=r"did you mean 'lenient'"):
        get_validator("lenent")


def test_a_plugin_store_by_url_scheme(plugins: dict[str, int]) -> None:
    store = open_store("mem://records")
    assert isinstance(store, PluginStore) and store.url == "mem://records"
    with pytest.raises(NotFoundError, match=r"unknown store 'mongo'.*available: mem"):
        open_store("mongo://x")


def test_a_plugin_chat_model_by_spec(plugins: dict[str, int]) -> None:
    model = load_chat_model("plug:some-model", n_ctx=1234)
    assert model.name == "plugin:some-model" and model.context_window == 1234
