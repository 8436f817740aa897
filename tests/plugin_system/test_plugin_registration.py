"""Registering components: clashes between plugins (and with the built-ins), invalid
registrations explained, and the lifecycle hooks reaching the plugins that implement them."""

from __future__ import annotations

import pytest
from plugin_fakes import GOOD_PLUGIN, FakeEngine, FakeInput, plugin_module

from zoopipe_core import plugins
from zoopipe_core.errors import PluginError

pytestmark = pytest.mark.usefixtures("fresh_plugins")  # a fresh registry per test (tests/plugin_fakes.py)


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
    with pytest.raises(PluginError, match="adapter 'csv' is registered by two plugins: plugin 'core'"):
        plugins.register_plugin(module, "clash")
    # Nothing of the failed plugin stays registered.
    assert "clash" not in [info.name for info in plugins.list_plugins()]


def test_suffix_clash_and_double_registration():
    def zoopipe_register_adapters(register):
        register("other-csv", input=FakeInput, suffixes=(".CSV",))

    module = plugin_module("suffix_clash", zoopipe_register_adapters=zoopipe_register_adapters)
    with pytest.raises(PluginError, match=r"input suffix '.csv' is registered by two plugins"):
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
        with pytest.raises(PluginError, match=r"neither input= nor output=|start with a dot"):
            plugins.register_plugin(module, hook.__name__)


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
