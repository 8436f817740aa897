"""Looking components up: adapters by name and by path suffix, syncers by URL scheme, engines by
name, the errors that list what is installed or name the extra to install, and resolving the
specs a Pipe or PipeManager is given (instances, names, paths, import strings)."""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_fakes import FakeEngine, FakeInput, FakeOutput, plugin_module

from zoopipe_core import plugins
from zoopipe_core.adapters.base import InputAdapter
from zoopipe_core.adapters.resolve import resolve_input_adapter, resolve_output_adapter
from zoopipe_core.errors import PluginError
from zoopipe_core.syncers import LocalSyncer

pytestmark = pytest.mark.usefixtures("fresh_plugins")  # a fresh registry per test (tests/plugin_fakes.py)


# --------------------------------------------------------------------------- lookups


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("data.csv", "csv"),
        ("data.csv.gz", "csv"),
        ("DATA.CSV.ZST", "csv"),
        ("/tmp/table.tsv.gz", "csv"),
        ("memory://bucket/dir/y.csv", "csv"),
        ("memory://y.csv", "csv"),
        ("s3://bucket/day=1/part-0.jsonl.zst?versionId=3", "jsonl"),
        ("events.ndjson.gz", "jsonl"),
        (Path("nested/dir/events.jsonl"), "jsonl"),
    ],
)
def test_adapter_lookup_by_suffix(path, expected):
    assert plugins.adapter_name_for_path(path, "input") == expected
    assert plugins.adapter_name_for_path(path, "output") == expected


def test_longest_suffix_wins_and_direction_matters():
    class SpecialInput(InputAdapter):
        def __init__(self, path):
            self.path = path

    def zoopipe_register_adapters(register):
        register("special", input=SpecialInput, suffixes=(".special.csv",))

    plugins.register_plugin(
        plugin_module("special_plugin", zoopipe_register_adapters=zoopipe_register_adapters),
        "special",
    )
    assert plugins.adapter_for_path("x.special.csv", "input") is SpecialInput
    assert plugins.adapter_name_for_path("x.csv", "input") == "csv"
    assert plugins.adapter_name_for_path("x.special.csv", "output") == "csv"


def test_unknown_suffix_error_lists_suffixes():
    with pytest.raises(PluginError) as error:
        plugins.adapter_for_path("table.orc", "input")
    message = str(error.value)
    assert "table.orc" in message and ".csv.gz" in message and ".jsonl" in message


def test_first_party_suffix_hint():
    with pytest.raises(PluginError, match=r'pip install "zoopipe-core\[duckdb\]"'):
        plugins.adapter_for_path("warehouse.duckdb", "input")


@pytest.mark.parametrize(
    "url", ["/tmp/x.csv", "relative/dir", "file:///tmp/x.csv", "FILE:///tmp/x", "C:\\data\\x.csv"]
)
def test_syncer_lookup_by_scheme(url):
    assert plugins.syncer_name_for_url(url) == "local"
    assert plugins.get_syncer_class_for_url(url) is LocalSyncer


def test_unknown_scheme_names_first_party_plugin(monkeypatch):
    monkeypatch.setenv("ZOOPIPE_PLUGINS", "")  # only the built-ins, whatever is installed
    with pytest.raises(PluginError) as error:
        plugins.get_syncer_class_for_url("s3://bucket/key.csv")
    assert "zoopipe_s3" in str(error.value)
    assert 'pip install "zoopipe-core[s3]"' in str(error.value)


def test_unknown_engine_lists_installed_engines():
    with pytest.raises(PluginError) as error:
        plugins.get_engine_class("warp-drive")
    message = str(error.value)
    assert "'warp-drive'" in message
    assert "installed engines: " + ", ".join(plugins.component_names("engine")) in message
    assert "zoopipe plugins" in message


def test_unknown_adapter_lists_installed_adapters():
    with pytest.raises(PluginError) as error:
        plugins.get_adapter_class("excel", "input")
    assert "installed adapters: " + ", ".join(plugins.component_names("adapter")) in str(error.value)


def test_adapter_without_the_requested_direction():
    # "generator" has both sides now (PyGeneratorOutputAdapter); "count" is output only.
    with pytest.raises(PluginError, match=r"no input side; input adapters: .*csv"):
        plugins.get_adapter_class("count", "input")
    assert plugins.get_adapter_class("generator", "output").__name__ == "PyGeneratorOutputAdapter"


@pytest.mark.parametrize("name", ["ray", "dask"])
def test_unknown_first_party_engine_gives_install_command(monkeypatch, name):
    monkeypatch.setenv("ZOOPIPE_PLUGINS", "")  # only the built-ins, whatever is installed
    with pytest.raises(PluginError) as error:
        plugins.get_engine_class(name)
    assert f'pip install "zoopipe-core[{name}]"' in str(error.value)
    assert f"zoopipe_{name}" in str(error.value)
    with pytest.raises(PluginError, match=rf"zoopipe-core\[{name}\]"):
        plugins.resolve_engine(name)


def test_bad_direction_and_kind_are_value_errors():
    with pytest.raises(ValueError, match="'input' or 'output'"):
        plugins.get_adapter_class("csv", "sideways")
    with pytest.raises(ValueError, match="engine, adapter, installer, syncer"):
        plugins.component_names("gadget")


# --------------------------------------------------------------------------- resolving specs


@pytest.fixture
def fake_components():
    def zoopipe_register_adapters(register):
        register("fake", input=FakeInput, output=FakeOutput, suffixes=(".fake", ".fake.gz"))
        register("fakein", input=f"{__name__}:FakeInput")

    def zoopipe_register_engines(register):
        register("fake", FakeEngine)

    module = plugin_module(
        "fake_components",
        zoopipe_register_adapters=zoopipe_register_adapters,
        zoopipe_register_engines=zoopipe_register_engines,
    )
    plugins.register_plugin(module, "fake-components")


def test_resolve_adapter_instance_name_and_path(fake_components, tmp_path):
    ready = FakeInput("x")
    assert resolve_input_adapter(ready) is ready

    by_name = resolve_input_adapter("fake", delimiter=";")
    assert isinstance(by_name, FakeInput) and by_name.path is None
    assert by_name.options == {"delimiter": ";"}

    by_path = resolve_input_adapter("memory://bucket/data.fake.gz", delimiter=";")
    assert isinstance(by_path, FakeInput)
    assert by_path.path == "memory://bucket/data.fake.gz" and by_path.options == {"delimiter": ";"}

    by_pathlike = resolve_output_adapter(tmp_path / "out.fake")
    assert isinstance(by_pathlike, FakeOutput) and by_pathlike.path == str(tmp_path / "out.fake")


def test_resolve_adapter_by_import_string(fake_components):
    assert type(resolve_input_adapter("fakein")) is FakeInput


def test_resolve_adapter_rejects_wrong_specs(fake_components):
    with pytest.raises(TypeError, match="pass them to its constructor"):
        resolve_input_adapter(FakeInput(), delimiter=";")
    with pytest.raises(TypeError, match="expected an output adapter"):
        resolve_output_adapter(FakeInput())
    with pytest.raises(TypeError, match="expected an input adapter"):
        resolve_input_adapter(42)
    with pytest.raises(PluginError, match=r"'fakein' .* has no output side"):
        resolve_output_adapter("fakein")
    with pytest.raises(PluginError, match=r"no input adapter named 'nosuch'|no adapter named 'nosuch'"):
        resolve_input_adapter("nosuch")


def test_resolve_engine(fake_components):
    engine = plugins.resolve_engine("fake")
    assert isinstance(engine, FakeEngine)
    assert plugins.resolve_engine(engine) is engine
    assert isinstance(plugins.resolve_engine(FakeEngine), FakeEngine)
