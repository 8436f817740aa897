"""The plugin system is the core's bottom layer: loading and listing every plugin imports no other
part of the core (adapters, engines, pipe, installers...) and no plugin's component."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_loading_and_listing_plugins_imports_only_the_plugin_system():
    code = textwrap.dedent(
        """
        import sys
        from zoopipe_core import plugins
        plugins.load_plugins()
        plugins.list_plugins()
        plugins.adapter_name_for_path("data.csv", "input")
        loaded = sorted(m for m in sys.modules if m.startswith(("zoopipe_", "zoopipe_core.")))
        print("\\n".join(loaded))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(result.stdout.split())
    core = {m for m in loaded if m.startswith("zoopipe_core.")}
    assert core <= {"zoopipe_core.errors"} | {m for m in core if m.startswith("zoopipe_core.plugins")}, core
    # First-party plugin modules are loaded (their entry points), their components are not.
    assert not {m for m in loaded - core if not m.endswith(".plugin") and "." in m}, loaded
