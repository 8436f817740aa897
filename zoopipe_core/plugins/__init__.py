"""The plugin system: finds plugins, collects what they register, and looks components up.

Plugins are found through the entry-point group ``zoopipe``; the built-in components register
through the same door (entry point ``core``). Everything is loaded on the first lookup and cached
until :func:`reset`. Components are registered by import string, so loading every plugin imports
no heavy dependency: the import happens when a component is first used.

Environment variables, read when plugins are loaded:

- ``ZOOPIPE_DISABLE_PLUGINS=name1,name2`` skips those entry points.
- ``ZOOPIPE_PLUGINS=name1,name2`` loads only those entry points, plus ``core``
  (``ZOOPIPE_PLUGINS=`` loads only ``core``).

This package's ``__init__`` is its public face; the work is done in its modules:

- :mod:`~zoopipe_core.plugins.hookspecs`: the hooks, ``hookimpl`` and the ``register`` callbacks' types;
- :mod:`~zoopipe_core.plugins.registry`: what plugins registered (components, clashes, checks);
- :mod:`~zoopipe_core.plugins.loading`: discovery, loading, the loaded state, ``reset``;
- :mod:`~zoopipe_core.plugins.lookup`: components by name, suffix or scheme;
- :mod:`~zoopipe_core.plugins.listing`: ``list_plugins`` for ``zoopipe plugins``;
- :mod:`~zoopipe_core.plugins.first_party`: the first-party plugins and their extras (one table);
- :mod:`~zoopipe_core.plugins.extras`: whether a component's extra is installed;
- :mod:`~zoopipe_core.plugins.builtin`: the built-in components, a plugin like any other.

Example:
    >>> from zoopipe_core import plugins
    >>> plugins.adapter_name_for_path("s3://bucket/day=1/events.jsonl.gz", "input")
    'jsonl'
    >>> plugins.syncer_name_for_url("file:///tmp/data.csv")
    'local'
    >>> "multiprocess" in plugins.component_names("engine")
    True
"""

from __future__ import annotations

from typing import Any

from zoopipe_core.plugins import hookspecs
from zoopipe_core.plugins.extras import extra_installed, install_command
from zoopipe_core.plugins.first_party import (
    FIRST_PARTY,
    FIRST_PARTY_EXTRA_IMPORTS,
    FIRST_PARTY_LIBRARIES,
    FIRST_PARTY_PLUGINS,
    FirstPartyLibrary,
    FirstPartyPlugin,
)
from zoopipe_core.plugins.hookspecs import (
    RegisterAdapter,
    RegisterEngine,
    RegisterInstaller,
    RegisterSyncer,
    Target,
    hookimpl,
)
from zoopipe_core.plugins.listing import ComponentInfo, PluginInfo, list_plugins
from zoopipe_core.plugins.loading import (
    BUILTIN_MODULE,
    BUILTIN_PLUGIN,
    ENTRY_POINT_GROUP,
    ONLY_ENV,
    hooks,
    load_plugins,
    register_plugin,
    reset,
)
from zoopipe_core.plugins.lookup import (
    DEFAULT_ENGINE,
    DIRECTIONS,
    Direction,
    adapter_for_path,
    adapter_name_for_path,
    component_names,
    get_adapter_class,
    get_engine_class,
    get_installer_class,
    get_syncer_class,
    get_syncer_class_for_url,
    select_installer,
    syncer_name_for_url,
)
from zoopipe_core.plugins.registry import (
    DISABLE_ENV,
    DISTRIBUTION,
    KINDS,
    Collector,
    Component,
    Kind,
    PluginSource,
    Registry,
    disable_hint,
    env_names,
)

__all__ = [
    "BUILTIN_MODULE",
    "BUILTIN_PLUGIN",
    "DEFAULT_ENGINE",
    "DIRECTIONS",
    "DISABLE_ENV",
    "DISTRIBUTION",
    "ENTRY_POINT_GROUP",
    "FIRST_PARTY",
    "FIRST_PARTY_EXTRA_IMPORTS",
    "FIRST_PARTY_LIBRARIES",
    "FIRST_PARTY_PLUGINS",
    "KINDS",
    "ONLY_ENV",
    "Collector",
    "Component",
    "ComponentInfo",
    "Direction",
    "FirstPartyLibrary",
    "FirstPartyPlugin",
    "Kind",
    "PluginInfo",
    "PluginSource",
    "RegisterAdapter",
    "RegisterEngine",
    "RegisterInstaller",
    "RegisterSyncer",
    "Registry",
    "Target",
    "adapter_for_path",
    "adapter_name_for_path",
    "component_names",
    "disable_hint",
    "env_names",
    "extra_installed",
    "get_adapter_class",
    "get_engine_class",
    "get_installer_class",
    "get_syncer_class",
    "get_syncer_class_for_url",
    "hookimpl",
    "hooks",
    "hookspecs",
    "install_command",
    "list_plugins",
    "load_plugins",
    "register_plugin",
    "reset",
    "resolve_engine",
    "select_installer",
    "syncer_name_for_url",
]


# --------------------------------------------------------------------------- resolving specs


def resolve_engine(spec: Any = None) -> Any:
    """An engine instance from ``spec``: None → the default engine, a name → a new instance of
    the registered class, a class → a new instance, anything else → itself."""
    if spec is None:
        spec = DEFAULT_ENGINE
    if isinstance(spec, str):
        return get_engine_class(spec)()
    if isinstance(spec, type):
        return spec()
    return spec
