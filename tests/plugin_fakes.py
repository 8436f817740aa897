"""What the plugin-system tests share: a fresh registry per test, fake installed distributions,
in-process plugin modules and minimal components to register.

tests/conftest.py imports the fixtures (`fresh_plugins`, `fake_distribution`); the plugin-system
test modules use `fresh_plugins` for every test and import the other names from here.
"""

from __future__ import annotations

import sys
import textwrap
import types

import pytest

from zoopipe_core import hookimpl, plugins
from zoopipe_core.adapters.base import BatchWriter, InputAdapter, OutputAdapter


@pytest.fixture
def fresh_plugins(monkeypatch):
    monkeypatch.delenv("ZOOPIPE_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("ZOOPIPE_PLUGINS", raising=False)
    plugins.reset()
    yield
    plugins.reset()


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """Install fake distributions (dist-info + modules) into a directory prepended to sys.path."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    created_modules: list[str] = []

    def make(name, version, entry_points, modules, requires=()):
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        extras = sorted({r.split("extra ==")[1].strip(" \"'") for r in requires if "extra" in r})
        metadata_lines = [
            "Metadata-Version: 2.1",
            f"Name: {name}",
            f"Version: {version}",
            *(f"Provides-Extra: {extra}" for extra in extras),
            *(f"Requires-Dist: {requirement}" for requirement in requires),
        ]
        (info / "METADATA").write_text("\n".join(metadata_lines) + "\n")
        entries = "".join(f"{key} = {value}\n" for key, value in entry_points.items())
        (info / "entry_points.txt").write_text("[zoopipe]\n" + entries)
        for module, source in modules.items():
            (site / f"{module}.py").write_text(textwrap.dedent(source))
            created_modules.append(module)

    yield make
    for module in created_modules:
        sys.modules.pop(module, None)


def plugin_module(name, **hooks):
    """An in-process plugin: a module object holding the given hook implementations."""
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        function.__name__ = hook_name
        setattr(module, hook_name, hookimpl(function))
    return module


GOOD_PLUGIN = """
from zoopipe_core import hookimpl

@hookimpl
def zoopipe_register_engines(register):
    register({engine!r}, "{module}:Engine")

class Engine:
    pass
"""


def broken_distribution(fake_distribution):
    fake_distribution(
        "fakeplug",
        "1.2.3",
        {"fakeplug": "fakeplug_broken"},
        {"fakeplug_broken": "raise RuntimeError('boom: the plugin is broken')\n"},
    )


class FakeInput(InputAdapter):
    name = "fake"

    def __init__(self, path=None, **options):
        self.path, self.options = path, options

    def iter_batches(self, batch_size):
        yield []


class FakeOutput(OutputAdapter):
    name = "fake"

    def __init__(self, path=None, **options):
        self.path, self.options = path, options

    def open_writer(self) -> BatchWriter:
        raise NotImplementedError


class FakeEngine:
    pass
