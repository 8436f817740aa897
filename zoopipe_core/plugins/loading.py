"""Finding and loading plugins: entry points, the environment variables, and the loaded state.

Plugins are found through the entry-point group ``zoopipe``; the built-in components register
through the same door (entry point ``core``). Everything is loaded on the first lookup and cached
until :func:`reset`.

Example:
    >>> from zoopipe_core.plugins import loading
    >>> state = loading.loaded_plugins()
    >>> "core" in state.sources, state is loading.loaded_plugins()
    (True, True)
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import threading
from importlib import metadata
from typing import Any

import pluggy

from zoopipe_core.errors import PluginError
from zoopipe_core.plugins import hookspecs
from zoopipe_core.plugins.extras import distribution_installed
from zoopipe_core.plugins.registry import (
    DISABLE_ENV,
    DISTRIBUTION,
    Collector,
    PluginSource,
    Registry,
    disable_hint,
    env_names,
)

ENTRY_POINT_GROUP = "zoopipe"
BUILTIN_PLUGIN = "core"
BUILTIN_MODULE = "zoopipe_core.plugins.builtin"
ONLY_ENV = "ZOOPIPE_PLUGINS"


@dataclasses.dataclass
class LoadedPlugins:
    """What loading every plugin produced: pluggy's manager, the plugins' sources, their
    components, and the component targets imported so far (by kind, name and role)."""

    manager: pluggy.PluginManager
    sources: dict[str, PluginSource]
    registry: Registry
    imported: dict[tuple[str, str, str], Any]


_lock = threading.RLock()
_loaded: LoadedPlugins | None = None


def _discover() -> list[tuple[PluginSource, metadata.EntryPoint | None]]:
    found: dict[str, tuple[PluginSource, metadata.EntryPoint | None]] = {}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(entry_point, "dist", None)
        source = PluginSource(
            name=entry_point.name,
            module=entry_point.value,
            distribution=dist.metadata["Name"] if dist is not None else None,
            version=dist.version if dist is not None else None,
        )
        if entry_point.name in found:
            other = found[entry_point.name][0]
            raise PluginError(
                f"two packages provide a zoopipe plugin named {entry_point.name!r}: "
                f"{other.distribution} {other.version} and {source.distribution} "
                f"{source.version}. Uninstall one of them"
            )
        found[entry_point.name] = (source, entry_point)
    if BUILTIN_PLUGIN not in found and not distribution_installed(DISTRIBUTION):
        # Running from a source tree that was never installed: without distribution metadata
        # the "core" entry point does not exist, so register the built-ins directly.
        from zoopipe_core import __version__

        source = PluginSource(BUILTIN_PLUGIN, BUILTIN_MODULE, DISTRIBUTION, __version__)
        found[BUILTIN_PLUGIN] = (source, None)
    # The built-ins first, then the rest by name: a stable order, and pluggy asks plugins
    # registered later first, so third-party hooks run before the built-in ones.
    return sorted(found.values(), key=lambda item: (item[0].name != BUILTIN_PLUGIN, item[0].name))


def _select(
    discovered: list[tuple[PluginSource, metadata.EntryPoint | None]],
) -> list[tuple[PluginSource, metadata.EntryPoint | None]]:
    disabled = env_names(DISABLE_ENV)
    selected = [item for item in discovered if item[0].name not in disabled]
    if ONLY_ENV not in os.environ:
        return selected
    wanted = env_names(ONLY_ENV)
    unknown = wanted - {source.name for source, _ in discovered}
    if unknown:
        installed = ", ".join(source.name for source, _ in discovered)
        raise PluginError(
            f"{ONLY_ENV} names {', '.join(sorted(unknown))}, which is not an installed plugin; "
            f"installed plugins: {installed}. Fix {ONLY_ENV} or install the plugin"
        )
    return [item for item in selected if item[0].name in wanted | {BUILTIN_PLUGIN}]


def _load_error(source: PluginSource, exc: BaseException, during: str) -> PluginError:
    return PluginError(
        f"{source.describe()} failed {during}: {type(exc).__name__}: {exc}. "
        f"Fix or upgrade {source.distribution or 'the plugin'}, or run without it: "
        f"{disable_hint(source.name)}"
    )


def _add_plugin(state: LoadedPlugins, plugin: object, source: PluginSource) -> None:
    """Register ``plugin`` with pluggy and collect its components; all or nothing."""
    if source.name in state.sources:
        raise PluginError(
            f"a plugin named {source.name!r} is already loaded "
            f"({state.sources[source.name].describe()}); choose another name"
        )
    try:
        state.manager.register(plugin, name=source.name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise _load_error(source, exc, "validation") from exc
    try:
        unknown = [c.name for c in state.manager.get_hookcallers(plugin) or [] if not c.has_spec()]
        if unknown:
            raise PluginError(
                f"{source.describe()} implements {', '.join(sorted(unknown))}, which zoopipe "
                f"does not define; the hooks are: {', '.join(hook_names())}. Check the "
                "spelling, or upgrade zoopipe-core"
            )
        collector = Collector(source)
        for hook_name, register in collector.callbacks().items():
            for impl in getattr(state.manager.hook, hook_name).get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                try:
                    impl.function(*[{"register": register}[arg] for arg in impl.argnames])
                except PluginError:
                    raise
                except Exception as exc:
                    raise _load_error(source, exc, f"in {hook_name}") from exc
        state.registry.add_all(collector.components)
    except BaseException:
        state.manager.unregister(plugin)
        raise
    state.sources[source.name] = source


def hook_names() -> list[str]:
    """The names of every hook a plugin may implement, sorted."""
    return sorted(n for n in vars(hookspecs) if n.startswith("zoopipe_"))


def _load() -> LoadedPlugins:
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    state = LoadedPlugins(manager, {}, Registry(), {})
    for source, entry_point in _select(_discover()):
        try:
            plugin = importlib.import_module(source.module) if entry_point is None else entry_point.load()
        except Exception as exc:
            raise _load_error(source, exc, "to import") from exc
        _add_plugin(state, plugin, source)
    return state


def loaded_plugins() -> LoadedPlugins:
    """The loaded plugins, loading them on the first call (and after :func:`reset`)."""
    global _loaded
    with _lock:
        if _loaded is None:
            # Assigned only after every plugin loaded: a failed load is retried, and fails
            # again loudly, on the next lookup instead of leaving half a registry behind.
            _loaded = _load()
        return _loaded


def load_plugins() -> None:
    """Load every plugin now (lookups do it on first use); raises PluginError if one is broken."""
    loaded_plugins()


def reset() -> None:
    """Forget loaded plugins and imported components; the next lookup loads them again."""
    global _loaded
    with _lock:
        _loaded = None


def register_plugin(plugin: object, name: str) -> None:
    """Register an in-process plugin (a module or object with hookimpls) until :func:`reset`.

    Useful in tests and notebooks; installed plugins are found through entry points instead.
    """
    module = getattr(plugin, "__name__", None) or type(plugin).__module__
    with _lock:
        _add_plugin(loaded_plugins(), plugin, PluginSource(name=name, module=module))


def hooks() -> Any:
    """The hook relay, for calling lifecycle hooks: ``hooks().zoopipe_before_run(pipe=pipe)``."""
    return loaded_plugins().manager.hook
