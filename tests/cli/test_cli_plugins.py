"""`zoopipe plugins`: the table and the JSON listing of installed plugins and their components,
missing extras and broken plugins, and docs/plugins.md's table of components kept true to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_fakes import broken_distribution, plugin_module

from zoopipe_core import plugins
from zoopipe_core.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("fresh_plugins")  # a fresh registry per test (tests/plugin_fakes.py)


# --------------------------------------------------------------------------- zoopipe plugins


def test_cli_plugins_table(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    header, *rows = out.splitlines()
    assert header.split() == ["PLUGIN", "PACKAGE", "VERSION", "REGISTERS", "EXTRA"]
    core_row = next(row for row in rows if row.startswith("core "))
    assert "zoopipe-core" in core_row and "engine multiprocess" in core_row
    assert any("adapter csv [in/out] .csv .csv.gz" in row for row in rows)
    assert any("syncer local paths file://" in row for row in rows)


def test_cli_plugins_json(capsys):
    assert main(["plugins", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    core = next(plugin for plugin in listed if plugin["name"] == "core")
    assert core["distribution"] == "zoopipe-core"
    kinds_and_names = {(c["kind"], c["name"]) for c in core["components"]}
    assert {("engine", "multiprocess"), ("adapter", "csv"), ("syncer", "local")} <= kinds_and_names
    csv = next(c for c in core["components"] if c["name"] == "csv")
    assert ".csv.gz" in csv["suffixes"] and csv["extra"] is None


def test_cli_shows_missing_extras(capsys):
    def zoopipe_register_engines(register):
        register("fake-dask", "zoopipe_fake_dask:DaskEngine", extra="zoopipe-test-no-such-extra")

    plugins.register_plugin(
        plugin_module("dask_like", zoopipe_register_engines=zoopipe_register_engines), "dask-like"
    )
    assert main(["plugins"]) == 0
    row = next(r for r in capsys.readouterr().out.splitlines() if "fake-dask" in r)
    assert row.startswith("dask-like") and "zoopipe-test-no-such-extra: unknown" in row


def test_cli_reports_a_broken_plugin(fake_distribution, capsys):
    broken_distribution(fake_distribution)
    assert main(["plugins"]) == 1
    assert "ZOOPIPE_DISABLE_PLUGINS=fakeplug" in capsys.readouterr().err


def test_cli_as_a_module():
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, "-m", "zoopipe_core.cli", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert "core" in [plugin["name"] for plugin in json.loads(result.stdout)]


def test_docs_table_lists_the_registered_components_and_no_others():
    """docs/plugins.md's first table is what `zoopipe plugins` shows: every built-in and
    first-party component by name, and no name that nothing registers (a plugin yet to come)."""
    import re

    table = {}
    for line in (REPO_ROOT / "docs" / "plugins.md").read_text().splitlines():
        match = re.match(r"\| \*\*(\w+)\*\* \|[^|]*\|([^|]*)\|([^|]*)\|", line)
        if match:
            table[match[1]] = (
                set(re.findall(r"`([\w-]+)`", match[2])),
                set(re.findall(r"`([\w-]+)`", match[3])),
            )
    registered = {kind: ({}, set()) for kind in table}
    for plugin in plugins.list_plugins():
        if plugin.distribution != "zoopipe-core":  # a third party's plugin installed here
            continue
        for component in plugin.components:
            column = 0 if plugin.name == "core" else 1
            if column:
                registered[component.kind][1].add(component.name)
            else:
                registered[component.kind][0][component.name] = component
    for kind, (built_in, first_party) in table.items():
        assert built_in == set(registered[kind][0]), kind
        assert first_party == registered[kind][1], kind
    assert not set(plugins.FIRST_PARTY_PLUGINS) - {
        name for _, first_party in table.values() for name in first_party
    }
