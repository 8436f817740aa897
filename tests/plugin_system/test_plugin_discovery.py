"""The plugin system's discovery and loading: the built-ins, plugins found through their entry points,
broken and disabled plugins, the plugins a run may load, and the extras of first-party plugins."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from plugin_fakes import GOOD_PLUGIN, broken_distribution, plugin_module

from zoopipe_core import plugins
from zoopipe_core.errors import PluginError
from zoopipe_core.installers import (
    ManualInstaller,
    PipInstaller,
    PoetryInstaller,
    UvInstaller,
)
from zoopipe_core.syncers import LocalSyncer

REPO_ROOT = Path(__file__).resolve().parents[2]
HEAVY_MODULES = ("ray", "dask", "distributed", "boto3", "botocore", "s3fs", "torch", "dvc")

pytestmark = pytest.mark.usefixtures("fresh_plugins")  # a fresh registry per test (tests/plugin_fakes.py)


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


# --------------------------------------------------------------------------- discovery and errors


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
    fake_distribution("hookfail", "2.0", {"hookfail": "hookfail_module"}, {"hookfail_module": source})
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


def test_every_plugin_extra_names_a_plugin_that_exists():
    """An extra of zoopipe-core is the dependency of a first-party plugin that is registered, or
    of a first-party package that registers nothing (no extra for a plugin yet to come), and
    every first-party plugin has its extra."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    plugin_extras = set(extras) - {"all", "test", "bench"}
    registered = {
        component.extra
        for plugin in plugins.list_plugins()
        if plugin.distribution == "zoopipe-core"
        for component in plugin.components
        if component.extra
    }
    libraries = {library.extra for library in plugins.FIRST_PARTY_LIBRARIES}
    assert plugin_extras - libraries == registered == {p.extra for p in plugins.FIRST_PARTY_PLUGINS.values()}
    assert plugin_extras == set(plugins.FIRST_PARTY_EXTRA_IMPORTS)
    for library in plugins.FIRST_PARTY_LIBRARIES:
        assert importlib.util.find_spec(library.package) is not None
