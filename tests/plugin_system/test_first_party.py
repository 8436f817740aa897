"""zoopipe_core.plugins.first_party is the one table of the first-party plugins and their extras:
what cannot import it (pyproject.toml, the docs, the plugins' register calls) is checked against it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from zoopipe_core import plugins
from zoopipe_core.plugins import first_party

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch):
    monkeypatch.delenv("ZOOPIPE_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("ZOOPIPE_PLUGINS", raising=False)
    plugins.reset()
    yield
    plugins.reset()


def project_table():
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def test_pyproject_extras_are_the_tables_requirements():
    """Each plugin extra lists the table's requirements, `all` is every plugin extra, and the test
    extra installs them all."""
    extras = project_table()["optional-dependencies"]
    plugin_extras = {name: extras[name] for name in set(extras) - {"test", "bench"}}
    assert plugin_extras == first_party.extra_requirements()
    # The test extra installs every plugin extra; the libraries' (torch) are installed apart.
    every_plugin = f"{first_party.DISTRIBUTION}[{','.join(p.extra for p in first_party.FIRST_PARTY)}]"
    assert every_plugin in extras["test"]


def test_pyproject_entry_points_are_the_tables_plugin_modules():
    entry_points = project_table()["entry-points"]["zoopipe"]
    assert {name: module for name, module in entry_points.items() if name != "core"} == {
        p.name: p.entry_point for p in first_party.FIRST_PARTY
    }


def test_each_first_party_plugin_registers_what_the_table_says():
    by_plugin = {p.name: p for p in plugins.list_plugins() if p.distribution == "zoopipe-core"}
    for known in first_party.FIRST_PARTY:
        [component] = by_plugin[known.name].components
        assert (component.kind, component.name, component.extra) == (known.kind, known.name, known.extra)
        assert (component.schemes, component.suffixes) == (known.schemes, known.suffixes)
        assert component.targets[next(iter(component.targets))].startswith(f"{known.package}.")


def test_docs_table_is_the_table():
    docs = (REPO_ROOT / "docs" / "plugins.md").read_text()
    rows = re.findall(r"^\| (engine|adapter|syncer) `([\w-]+)`[^|]*\| `(\w+)` \| `([^`]+)` \|$", docs, re.M)
    table = [(p.kind, p.name, p.package, p.install_command) for p in first_party.FIRST_PARTY]
    assert sorted(rows) == sorted(table)


def test_every_install_hint_in_docs_and_plugins_names_a_first_party_extra():
    texts = [
        REPO_ROOT / "README.md",
        *(REPO_ROOT / "docs").glob("*.md"),
        *(REPO_ROOT / "plugins").rglob("*.md"),
        *(REPO_ROOT / "plugins").rglob("*.py"),
    ]
    extras = {p.extra for p in (*first_party.FIRST_PARTY, *first_party.FIRST_PARTY_LIBRARIES)}
    seen = set()
    for path in texts:
        for extra in re.findall(r'pip install "zoopipe-core\[([\w,-]+)\]"', path.read_text()):
            assert extra in extras, (path, extra)
            seen.add(extra)
    assert seen == extras


def test_hints_and_extra_checks_derive_from_the_table():
    for known in first_party.FIRST_PARTY:
        assert plugins.FIRST_PARTY_PLUGINS[known.name] is known
        assert plugins.FIRST_PARTY_EXTRA_IMPORTS[known.extra] == known.imports
