"""The plugin system: discovery, registration, lookups, errors, listing; installers; syncer."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import stat
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

from zoopipe_core import hookimpl, plugins
from zoopipe_core.adapters.base import BatchWriter, InputAdapter, OutputAdapter
from zoopipe_core.cli import main
from zoopipe_core.errors import PluginError
from zoopipe_core.installers import (
    ManualInstaller,
    PipInstaller,
    PoetryInstaller,
    UvInstaller,
    detect_installer,
)
from zoopipe_core.syncers import LocalSyncer, content_hash

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAVY_MODULES = ("ray", "dask", "distributed", "boto3", "botocore", "s3fs", "torch")


@pytest.fixture(autouse=True)
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


# --------------------------------------------------------------------------- built-ins


def test_builtins_are_registered():
    assert "multiprocess" in plugins.component_names("engine")
    assert {"csv", "jsonl", "generator"} <= set(plugins.component_names("adapter", "input"))
    assert {"csv", "jsonl", "memory"} <= set(plugins.component_names("adapter", "output"))
    assert {"pip", "uv", "poetry", "manual"} <= set(plugins.component_names("installer"))
    assert "local" in plugins.component_names("syncer")
    core = next(info for info in plugins.list_plugins() if info.name == "core")
    assert core.distribution == "zoopipe-core"
    assert core.module == "zoopipe_core.plugins.builtin"


def test_builtin_installers_and_syncer_resolve_to_classes():
    assert plugins.get_installer_class("pip") is PipInstaller
    assert plugins.get_installer_class("uv") is UvInstaller
    assert plugins.get_installer_class("poetry") is PoetryInstaller
    assert plugins.get_installer_class("manual") is ManualInstaller
    assert plugins.get_syncer_class("local") is LocalSyncer


def test_builtin_adapters_and_engine_resolve_to_classes():
    import zoopipe_core

    for name, direction, class_name in [
        ("csv", "input", "CSVInputAdapter"),
        ("csv", "output", "CSVOutputAdapter"),
        ("jsonl", "input", "JSONInputAdapter"),
        ("jsonl", "output", "JSONOutputAdapter"),
        ("generator", "input", "PyGeneratorInputAdapter"),
        ("memory", "output", "MemoryOutputAdapter"),
    ]:
        assert plugins.get_adapter_class(name, direction) is getattr(zoopipe_core, class_name)
    assert type(plugins.resolve_engine(None)).__name__ == "MultiProcessEngine"


def test_lookups_are_cached_and_reset_reloads():
    first = plugins.get_installer_class("pip")
    assert plugins.get_installer_class("pip") is first
    manager = plugins.hooks()
    assert plugins.hooks() is manager
    plugins.reset()
    assert plugins.hooks() is not manager


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
    assert "installed adapters: " + ", ".join(plugins.component_names("adapter")) in str(
        error.value
    )


def test_adapter_without_the_requested_direction():
    # "generator" has both sides now (PyGeneratorOutputAdapter); "count" is output only.
    with pytest.raises(PluginError, match="no input side; input adapters: .*csv"):
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
    assert plugins.resolve_input_adapter(ready) is ready

    by_name = plugins.resolve_input_adapter("fake", delimiter=";")
    assert isinstance(by_name, FakeInput) and by_name.path is None
    assert by_name.options == {"delimiter": ";"}

    by_path = plugins.resolve_input_adapter("memory://bucket/data.fake.gz", delimiter=";")
    assert isinstance(by_path, FakeInput)
    assert by_path.path == "memory://bucket/data.fake.gz" and by_path.options == {"delimiter": ";"}

    by_pathlike = plugins.resolve_output_adapter(tmp_path / "out.fake")
    assert isinstance(by_pathlike, FakeOutput) and by_pathlike.path == str(tmp_path / "out.fake")


def test_resolve_adapter_by_import_string(fake_components):
    assert type(plugins.resolve_input_adapter("fakein")) is FakeInput


def test_resolve_adapter_rejects_wrong_specs(fake_components):
    with pytest.raises(TypeError, match="pass them to its constructor"):
        plugins.resolve_input_adapter(FakeInput(), delimiter=";")
    with pytest.raises(TypeError, match="expected an output adapter"):
        plugins.resolve_output_adapter(FakeInput())
    with pytest.raises(TypeError, match="expected an input adapter"):
        plugins.resolve_input_adapter(42)
    with pytest.raises(PluginError, match="'fakein' .* has no output side"):
        plugins.resolve_output_adapter("fakein")
    with pytest.raises(
        PluginError, match="no input adapter named 'nosuch'|no adapter named 'nosuch'"
    ):
        plugins.resolve_input_adapter("nosuch")


def test_resolve_engine(fake_components):
    engine = plugins.resolve_engine("fake")
    assert isinstance(engine, FakeEngine)
    assert plugins.resolve_engine(engine) is engine
    assert isinstance(plugins.resolve_engine(FakeEngine), FakeEngine)


# --------------------------------------------------------------------------- discovery and errors


GOOD_PLUGIN = """
from zoopipe_core import hookimpl

@hookimpl
def zoopipe_register_engines(register):
    register({engine!r}, "{module}:Engine")

class Engine:
    pass
"""


def test_entry_point_plugin_is_loaded_with_its_distribution(fake_distribution):
    fake_distribution(
        "goodplug",
        "0.3.0",
        {"goodplug": "goodplug_module"},
        {"goodplug_module": GOOD_PLUGIN.format(engine="good", module="goodplug_module")},
    )
    info = next(info for info in plugins.list_plugins() if info.name == "goodplug")
    assert (info.distribution, info.version, info.module) == (
        "goodplug",
        "0.3.0",
        "goodplug_module",
    )
    assert [(c.kind, c.name) for c in info.components] == [("engine", "good")]
    assert "zoopipe_register_engines" in info.hooks
    assert plugins.get_engine_class("good").__module__ == "goodplug_module"


def test_builtins_come_through_the_entry_point_when_installed(fake_distribution):
    fake_distribution("zoopipe-core", "9.9.9", {"core": "zoopipe_core.plugins.builtin"}, {})
    core = next(info for info in plugins.list_plugins() if info.name == "core")
    assert (core.distribution, core.version) == ("zoopipe-core", "9.9.9")
    assert "multiprocess" in plugins.component_names("engine")


def broken_distribution(fake_distribution):
    fake_distribution(
        "fakeplug",
        "1.2.3",
        {"fakeplug": "fakeplug_broken"},
        {"fakeplug_broken": "raise RuntimeError('boom: the plugin is broken')\n"},
    )


def test_broken_plugin_fails_loudly_with_name_package_version_and_hint(fake_distribution):
    broken_distribution(fake_distribution)
    for _ in range(2):  # not swallowed, and not cached as half-loaded
        with pytest.raises(PluginError) as error:
            plugins.get_installer_class("pip")
        message = str(error.value)
        assert "plugin 'fakeplug'" in message
        assert "package fakeplug 1.2.3" in message
        assert "RuntimeError: boom: the plugin is broken" in message
        assert "ZOOPIPE_DISABLE_PLUGINS=fakeplug" in message
        assert isinstance(error.value.__cause__, RuntimeError)


def test_broken_plugin_can_be_disabled(fake_distribution, monkeypatch):
    broken_distribution(fake_distribution)
    monkeypatch.setenv("ZOOPIPE_DISABLE_PLUGINS", "something-else, fakeplug")
    assert plugins.get_installer_class("pip") is PipInstaller
    assert "fakeplug" not in [info.name for info in plugins.list_plugins()]


def test_disable_hint_keeps_already_disabled_plugins(fake_distribution, monkeypatch):
    broken_distribution(fake_distribution)
    monkeypatch.setenv("ZOOPIPE_DISABLE_PLUGINS", "other")
    with pytest.raises(PluginError, match="ZOOPIPE_DISABLE_PLUGINS=other,fakeplug"):
        plugins.load_plugins()


def test_failing_register_hook_names_the_plugin_and_hook(fake_distribution):
    source = """
    from zoopipe_core import hookimpl

    @hookimpl
    def zoopipe_register_syncers(register):
        raise KeyError("no config")
    """
    fake_distribution(
        "hookfail", "2.0", {"hookfail": "hookfail_module"}, {"hookfail_module": source}
    )
    with pytest.raises(PluginError) as error:
        plugins.load_plugins()
    message = str(error.value)
    assert "plugin 'hookfail' (package hookfail 2.0)" in message
    assert "in zoopipe_register_syncers" in message and "KeyError" in message
    assert "ZOOPIPE_DISABLE_PLUGINS=hookfail" in message


def test_misspelt_hook_is_an_error(fake_distribution):
    source = """
    from zoopipe_core import hookimpl

    @hookimpl
    def zoopipe_register_engine(register):
        pass
    """
    fake_distribution("typo", "1.0", {"typo": "typo_module"}, {"typo_module": source})
    with pytest.raises(PluginError, match="zoopipe_register_engine, which zoopipe does not define"):
        plugins.load_plugins()


def test_only_listed_plugins_are_loaded(fake_distribution, monkeypatch):
    for name in ("alpha", "beta"):
        module = f"{name}_module"
        source = GOOD_PLUGIN.format(engine=name, module=module)
        fake_distribution(name, "1.0", {name: module}, {module: source})
    monkeypatch.setenv("ZOOPIPE_PLUGINS", "alpha")
    assert {info.name for info in plugins.list_plugins()} == {"core", "alpha"}
    plugins.reset()
    monkeypatch.setenv("ZOOPIPE_PLUGINS", "alpha,gamma")
    with pytest.raises(PluginError, match="ZOOPIPE_PLUGINS names gamma"):
        plugins.load_plugins()


def test_same_name_from_two_plugins_names_both(fake_distribution):
    for name in ("left", "right"):
        module = f"{name}_module"
        source = GOOD_PLUGIN.format(engine="twin", module=module)
        fake_distribution(name, "1.0", {name: module}, {module: source})
    with pytest.raises(PluginError) as error:
        plugins.load_plugins()
    message = str(error.value)
    assert "engine 'twin' is registered by two plugins" in message
    assert "plugin 'left' (package left 1.0)" in message
    assert "plugin 'right' (package right 1.0)" in message


def test_clash_with_a_builtin_names_core():
    def zoopipe_register_adapters(register):
        register("csv", input=FakeInput)

    module = plugin_module("clash", zoopipe_register_adapters=zoopipe_register_adapters)
    with pytest.raises(
        PluginError, match="adapter 'csv' is registered by two plugins: plugin 'core'"
    ):
        plugins.register_plugin(module, "clash")
    # Nothing of the failed plugin stays registered.
    assert "clash" not in [info.name for info in plugins.list_plugins()]


def test_suffix_clash_and_double_registration():
    def zoopipe_register_adapters(register):
        register("other-csv", input=FakeInput, suffixes=(".CSV",))

    module = plugin_module("suffix_clash", zoopipe_register_adapters=zoopipe_register_adapters)
    with pytest.raises(PluginError, match="input suffix '.csv' is registered by two plugins"):
        plugins.register_plugin(module, "suffix-clash")

    def zoopipe_register_engines(register):
        register("once", FakeEngine)
        register("once", FakeEngine)

    module = plugin_module("twice", zoopipe_register_engines=zoopipe_register_engines)
    with pytest.raises(PluginError, match="engine 'once' is registered twice by plugin 'twice'"):
        plugins.register_plugin(module, "twice")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r("bad", "not an import string"), "write it as 'package.module:ClassName'"),
        (lambda r: r("", "m:C"), "non-empty strings"),
        (lambda r: r("x", 42), "pass a class or an import string"),
    ],
)
def test_invalid_registrations_are_explained(call, message):
    def zoopipe_register_engines(register):
        call(register)

    module = plugin_module("invalid", zoopipe_register_engines=zoopipe_register_engines)
    with pytest.raises(PluginError, match=message):
        plugins.register_plugin(module, "invalid")


def test_adapter_registration_checks():
    def no_sides(register):
        register("empty")

    def bad_suffix(register):
        register("nodot", input=FakeInput, suffixes=("txt",))

    for hook in (no_sides, bad_suffix):
        module = plugin_module(hook.__name__, zoopipe_register_adapters=hook)
        with pytest.raises(PluginError, match="neither input= nor output=|start with a dot"):
            plugins.register_plugin(module, hook.__name__)


def test_missing_extra_gives_install_command(fake_distribution):
    source = """
    from zoopipe_core import hookimpl

    @hookimpl
    def zoopipe_register_engines(register):
        register("turbo", "turbo_engine_module:TurboEngine", extra="turbo")
    """
    fake_distribution(
        "fastplug",
        "0.9",
        {"fastplug": "fastplug_module"},
        {
            "fastplug_module": source,
            "turbo_engine_module": "import zoopipe_test_absent_dependency\n",
        },
        requires=['zoopipe-test-absent-dependency>=1; extra == "turbo"'],
    )
    info = next(info for info in plugins.list_plugins() if info.name == "fastplug")
    (turbo,) = info.components
    assert turbo.extra == "turbo" and turbo.extra_installed is False
    assert turbo.install_command == 'pip install "fastplug[turbo]"'
    with pytest.raises(PluginError) as error:
        plugins.get_engine_class("turbo")
    assert 'pip install "fastplug[turbo]"' in str(error.value)
    assert isinstance(error.value.__cause__, ImportError)


def test_first_party_extra_is_checked_without_importing():
    def zoopipe_register_engines(register):
        register("fake-ray", "zoopipe_fake_ray:RayEngine", extra="ray")

    module = plugin_module("fake_ray", zoopipe_register_engines=zoopipe_register_engines)
    plugins.register_plugin(module, "fake-ray")
    ray_was_imported = "ray" in sys.modules
    info = next(info for info in plugins.list_plugins() if info.name == "fake-ray")
    (component,) = info.components
    assert component.extra_installed is (importlib.util.find_spec("ray") is not None)
    assert ("ray" in sys.modules) is ray_was_imported


def test_loading_every_plugin_imports_no_heavy_dependency():
    script = textwrap.dedent(
        f"""
        import sys
        from zoopipe_core import plugins
        plugins.load_plugins()
        plugins.list_plugins()
        plugins.adapter_name_for_path("a.csv.gz", "input")
        plugins.syncer_name_for_url("file:///tmp/x")
        print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))
        """
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip() == "[]"


# --------------------------------------------------------------------------- hooks


def test_lifecycle_hooks_reach_plugins():
    calls = []

    def zoopipe_before_run(pipe):
        calls.append(("before", pipe))

    def zoopipe_after_run(pipe, report):
        calls.append(("after", pipe, report))

    def zoopipe_on_error(pipe, error):
        calls.append(("error", pipe, error))

    module = plugin_module(
        "observer",
        zoopipe_before_run=zoopipe_before_run,
        zoopipe_after_run=zoopipe_after_run,
        zoopipe_on_error=zoopipe_on_error,
    )
    plugins.register_plugin(module, "observer")
    failure = RuntimeError("disk full")
    plugins.hooks().zoopipe_before_run(pipe="p")
    plugins.hooks().zoopipe_after_run(pipe="p", report="r")
    plugins.hooks().zoopipe_on_error(pipe="p", error=failure)
    assert calls == [("before", "p"), ("after", "p", "r"), ("error", "p", failure)]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"uv.lock": "version = 1\n", "requirements.txt": "x\n"}, "uv"),
        ({"poetry.lock": ""}, "poetry"),
        ({"pyproject.toml": '[tool.poetry]\nname = "p"\n'}, "poetry"),
        ({"requirements.txt": "attrs\n"}, "pip"),
        ({"pyproject.toml": '[project]\nname = "p"\nversion = "1"\n'}, "pip"),
        ({"README.md": "nothing to install"}, None),
    ],
)
def test_select_installer(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert plugins.select_installer(tmp_path) == expected
    assert detect_installer(tmp_path) == expected


def test_a_plugin_overrides_the_builtin_installer_choice(tmp_path):
    (tmp_path / "requirements.txt").write_text("attrs\n")

    def zoopipe_select_installer(project_dir):
        return "manual" if (project_dir / "requirements.txt").exists() else None

    module = plugin_module("chooser", zoopipe_select_installer=zoopipe_select_installer)
    plugins.register_plugin(module, "chooser")
    assert plugins.select_installer(tmp_path) == "manual"


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


# --------------------------------------------------------------------------- installers


def test_pip_installer_reads_requirements_and_pyproject(tmp_path):
    (tmp_path / "base.txt").write_text("attrs==24.2.0  # pinned\n")
    (tmp_path / "requirements.txt").write_text(
        "# tools\n-r base.txt\n\nrequests>=2 ; python_version >= '3.10'\n"
        "--extra-index-url https://download.pytorch.org/whl/cpu\nnumpy\\\n==2.1.2\n"
    )
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "1"\ndependencies = ["numpy==2.1.2", "pyyaml>=6"]\n'
    )
    installer = PipInstaller()
    requirements = installer.requirements(tmp_path)
    assert requirements == [
        "attrs==24.2.0",
        "requests>=2 ; python_version >= '3.10'",
        "--extra-index-url https://download.pytorch.org/whl/cpu",
        "numpy==2.1.2",
        "pyyaml>=6",
    ]
    assert installer.install_command(requirements) == [
        sys.executable,
        "-m",
        "pip",
        "install",
        "attrs==24.2.0",
        "requests>=2 ; python_version >= '3.10'",
        "--extra-index-url",
        "https://download.pytorch.org/whl/cpu",
        "numpy==2.1.2",
        "pyyaml>=6",
    ]
    assert installer.install_command([]) == []


def test_pip_installer_explains_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither requirements.txt nor a \\[project\\]"):
        PipInstaller().requirements(tmp_path)


def test_pip_installer_detects_include_cycles(tmp_path):
    (tmp_path / "requirements.txt").write_text("-r requirements.txt\n")
    with pytest.raises(ValueError, match="includes itself"):
        PipInstaller().requirements(tmp_path)


UV_LOCK = """
version = 1
requires-python = ">=3.10"

[[package]]
name = "demo"
version = "0.1.0"
source = { editable = "." }
dependencies = [
    { name = "requests", extra = ["socks"] },
    { name = "colorama", marker = "sys_platform == 'win32'" },
    { name = "mylib" },
]

[package.dev-dependencies]
dev = [{ name = "pytest" }]

[[package]]
name = "requests"
version = "2.32.3"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "idna" }]

[package.optional-dependencies]
socks = [{ name = "pysocks" }]

[[package]]
name = "idna"
version = "3.10"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "pysocks"
version = "1.7.1"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "colorama"
version = "0.4.6"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "idna" }]

[[package]]
name = "mylib"
version = "0.2.0"
source = { git = "https://github.com/example/mylib?rev=main#0123abc" }

[[package]]
name = "pytest"
version = "8.3.3"
source = { registry = "https://pypi.org/simple" }
"""


def test_uv_installer_reads_the_lock_file(tmp_path):
    (tmp_path / "uv.lock").write_text(UV_LOCK)
    assert UvInstaller(use_uv_cli=False).requirements(tmp_path) == [
        "requests==2.32.3",
        "colorama==0.4.6 ; (sys_platform == 'win32')",
        "mylib @ git+https://github.com/example/mylib@0123abc",
        "idna==3.10",
        "pysocks==1.7.1",
    ]


def fake_uv(tmp_path, monkeypatch, output, exit_code=0):
    """A `uv` executable on PATH that records its arguments and prints ``output``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "uv"
    arguments_file = str(tmp_path / "uv-args.json")
    script.write_text(
        f"#!{sys.executable}\nimport json, pathlib, sys\n"
        f"pathlib.Path({arguments_file!r}).write_text(json.dumps(sys.argv[1:]))\n"
        f"sys.stdout.write({output!r})\nsys.stderr.write('uv says no')\nsys.exit({exit_code})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return script


def test_uv_installer_uses_uv_export(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    (project / "uv.lock").write_text(UV_LOCK)
    exported = (
        "# This file was autogenerated by uv\nidna==3.10\n    # via requests\nrequests==2.32.3\n"
    )
    uv = fake_uv(tmp_path, monkeypatch, exported)
    installer = UvInstaller()
    assert installer.requirements(project) == ["idna==3.10", "requests==2.32.3"]
    arguments = json.loads((tmp_path / "uv-args.json").read_text())
    assert arguments[:4] == ["export", "--no-hashes", "--format", "requirements-txt"]
    assert installer.install_command(["idna==3.10"]) == [
        str(uv),
        "pip",
        "install",
        "--python",
        sys.executable,
        "idna==3.10",
    ]


def test_uv_export_failure_is_reported(tmp_path, monkeypatch):
    project = tmp_path / "project"
    project.mkdir()
    (project / "uv.lock").write_text(UV_LOCK)
    fake_uv(tmp_path, monkeypatch, "", exit_code=2)
    with pytest.raises(RuntimeError, match="exit 2.*uv says no"):
        UvInstaller().requirements(project)


def test_uv_installer_needs_a_lock_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="uv lock"):
        UvInstaller(use_uv_cli=False).requirements(tmp_path)


def test_poetry_installer_reads_main_group(tmp_path):
    (tmp_path / "poetry.lock").write_text(
        """
[[package]]
name = "idna"
version = "3.10"
optional = false
groups = ["main"]

[[package]]
name = "pytest"
version = "8.3.3"
optional = false
groups = ["dev"]

[[package]]
name = "colorama"
version = "0.4.6"
optional = false
groups = ["main"]
markers = "sys_platform == \\"win32\\""

[[package]]
name = "fancy"
version = "1.0"
optional = true
groups = ["main"]

[[package]]
name = "mylib"
version = "0.2.0"
optional = false
groups = ["main"]

[package.source]
type = "git"
url = "https://github.com/example/mylib.git"
reference = "main"
resolved_reference = "0123abc"

[[package]]
name = "local-pkg"
version = "0.1.0"
optional = false
groups = ["main"]

[package.source]
type = "directory"
url = "libs/local-pkg"

[[package]]
name = "legacy"
version = "1.1"
category = "main"
optional = false

[[package]]
name = "legacy-dev"
version = "1.1"
category = "dev"
optional = false
"""
    )
    assert PoetryInstaller().requirements(tmp_path) == [
        "idna==3.10",
        'colorama==0.4.6 ; sys_platform == "win32"',
        "mylib @ git+https://github.com/example/mylib.git@0123abc",
        "legacy==1.1",
    ]


def test_poetry_installer_needs_a_lock_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="poetry lock"):
        PoetryInstaller().requirements(tmp_path)


def test_manual_installer():
    installer = ManualInstaller(
        ["torch==2.13.0", "--index-url https://download.pytorch.org/whl/cpu"]
    )
    assert installer.requirements("anywhere") == [
        "torch==2.13.0",
        "--index-url https://download.pytorch.org/whl/cpu",
    ]
    assert installer.install_command(installer.requirements("."))[-3:] == [
        "torch==2.13.0",
        "--index-url",
        "https://download.pytorch.org/whl/cpu",
    ]
    with pytest.raises(TypeError, match="not one string"):
        ManualInstaller("torch")


def test_installer_classes_resolved_by_name_work(tmp_path):
    (tmp_path / "requirements.txt").write_text("attrs\n")
    name = plugins.select_installer(tmp_path)
    installer = plugins.get_installer_class(name)()
    assert installer.requirements(tmp_path) == ["attrs"]


# --------------------------------------------------------------------------- local syncer


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".zoopipe-" in p.name)


def test_local_syncer_pushes_a_file_and_skips_unchanged(tmp_path):
    source = tmp_path / "data.csv"
    source.write_text("a,b\n1,2\n")
    remote = tmp_path / "remote" / "data.csv"
    syncer = LocalSyncer()

    digest = syncer.push(source, remote.as_uri())
    assert digest == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert remote.read_text() == "a,b\n1,2\n"
    inode = remote.stat().st_ino

    assert syncer.push(source, str(remote)) == digest
    assert remote.stat().st_ino == inode  # unchanged content: not copied again

    source.write_text("a,b\n3,4\n")
    new_digest = syncer.push(source, str(remote))
    assert new_digest != digest and remote.read_text() == "a,b\n3,4\n"
    assert leftovers(remote.parent) == []


def test_local_syncer_pulls_a_directory_atomically(tmp_path):
    remote = tmp_path / "remote"
    (remote / "sub").mkdir(parents=True)
    (remote / "a.txt").write_text("A")
    (remote / "sub" / "b.txt").write_text("B")
    local = tmp_path / "work" / "data"
    syncer = LocalSyncer()

    digest = syncer.pull(remote.as_uri(), local)
    assert digest == content_hash(remote) == content_hash(local)
    assert (local / "sub" / "b.txt").read_text() == "B"
    inode = local.stat().st_ino
    assert syncer.pull(str(remote), local) == digest
    assert local.stat().st_ino == inode

    (remote / "a.txt").unlink()
    (remote / "c.txt").write_text("C")
    assert syncer.pull(str(remote), local) != digest
    assert sorted(p.name for p in local.iterdir()) == ["c.txt", "sub"]
    assert leftovers(local.parent) == []


def test_directory_hash_depends_on_names_and_content(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        folder.mkdir()
        (folder / "x.txt").write_text("same")
    assert content_hash(first) == content_hash(second)
    (second / "x.txt").rename(second / "y.txt")
    assert content_hash(first) != content_hash(second)


def test_local_syncer_failed_copy_leaves_destination_untouched(tmp_path, monkeypatch):
    source = tmp_path / "data.csv"
    source.write_text("new")
    destination = tmp_path / "out" / "data.csv"
    destination.parent.mkdir()
    destination.write_text("old")

    def failing_copy(src, dst, *args, **kwargs):
        Path(dst).write_text("partial")
        raise OSError("disk full")

    monkeypatch.setattr("shutil.copy2", failing_copy)
    with pytest.raises(OSError, match="disk full"):
        LocalSyncer().push(source, str(destination))
    assert destination.read_text() == "old"
    assert leftovers(destination.parent) == []


def test_local_syncer_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LocalSyncer().push(tmp_path / "missing.csv", str(tmp_path / "x.csv"))
    (tmp_path / "a.csv").write_text("a")
    with pytest.raises(ValueError, match="get_syncer_class_for_url"):
        LocalSyncer().push(tmp_path / "a.csv", "s3://bucket/a.csv")


def test_docs_table_lists_the_registered_components_and_no_others():
    """docs/plugins.md's first table is what `zoopipe plugins` shows: every built-in and
    first-party component by name, and no name that nothing registers (a plugin yet to come)."""
    import re

    table = {}
    for line in (REPO_ROOT / "docs" / "plugins.md").read_text().splitlines():
        match = re.match(r"\| \*\*(\w+)\*\* \|[^|]*\|([^|]*)\|([^|]*)\|", line)
        if match:
            table[match[1]] = (set(re.findall(r"`([\w-]+)`", match[2])), set(re.findall(r"`([\w-]+)`", match[3])))
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
        name for _, first_party in table.values() for name in first_party}


def test_every_plugin_extra_names_a_plugin_that_exists():
    """An extra of zoopipe-core is the dependency of a first-party plugin that is registered
    (no extra for a plugin yet to come), and every first-party plugin has its extra."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    from zoopipe_core.plugins import registry
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    plugin_extras = set(extras) - {"all", "test", "bench"}
    registered = {
        component.extra
        for plugin in plugins.list_plugins() if plugin.distribution == "zoopipe-core"
        for component in plugin.components if component.extra
    }
    assert plugin_extras == registered == {p.extra for p in plugins.FIRST_PARTY_PLUGINS.values()}
    assert plugin_extras == set(registry.FIRST_PARTY_EXTRA_IMPORTS)
