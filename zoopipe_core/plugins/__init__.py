"""The plugin manager: finds plugins, collects what they register, and looks components up.

Plugins are found through the entry-point group ``zoopipe``; the built-in components register
through the same door (entry point ``core``). Everything is loaded on the first lookup and cached
until :func:`reset`. Components are registered by import string, so loading every plugin imports
no heavy dependency: the import happens when a component is first used.

Environment variables, read when plugins are loaded:

- ``ZOOPIPE_DISABLE_PLUGINS=name1,name2`` skips those entry points.
- ``ZOOPIPE_PLUGINS=name1,name2`` loads only those entry points, plus ``core``
  (``ZOOPIPE_PLUGINS=`` loads only ``core``).

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

import dataclasses
import importlib
import os
import pathlib
import threading
from importlib import metadata
from typing import Any, Literal

import pluggy

from zoopipe_core.plugins import hookspecs
from zoopipe_core.errors import PluginError
from zoopipe_core.plugins.hookspecs import Target
from zoopipe_core.plugins.registry import (
    DISABLE_ENV,
    DISTRIBUTION,
    FIRST_PARTY_PLUGINS,
    KINDS,
    Collector,
    Component,
    Kind,
    PluginSource,
    Registry,
    disable_hint,
    env_names,
    extra_installed,
    install_command,
)

ENTRY_POINT_GROUP = "zoopipe"
BUILTIN_PLUGIN = "core"
BUILTIN_MODULE = "zoopipe_core.plugins.builtin"
DEFAULT_ENGINE = "multiprocess"
ONLY_ENV = "ZOOPIPE_PLUGINS"

Direction = Literal["input", "output"]
DIRECTIONS: tuple[Direction, ...] = ("input", "output")


# --------------------------------------------------------------------------- listing types


@dataclasses.dataclass(frozen=True)
class ComponentInfo:
    """One registered component, as listed by :func:`list_plugins`.

    Example:
        >>> from zoopipe_core import plugins
        >>> core = next(p for p in plugins.list_plugins() if p.name == "core")
        >>> local = next(c for c in core.components if c.kind == "syncer")
        >>> (local.name, local.schemes, local.extra_installed)
        ('local', ('', 'file'), None)
    """

    kind: Kind
    name: str
    targets: dict[str, str]
    suffixes: tuple[str, ...]
    schemes: tuple[str, ...]
    extra: str | None
    extra_installed: bool | None  # None when the component needs no extra
    install_command: str | None  # set when the extra's dependencies are missing


@dataclasses.dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin and what it registers, as listed by :func:`list_plugins`.

    Example:
        >>> from zoopipe_core import plugins
        >>> core = next(p for p in plugins.list_plugins() if p.name == "core")
        >>> (core.module, core.distribution)
        ('zoopipe_core.plugins.builtin', 'zoopipe-core')
        >>> sorted(c.name for c in core.components if c.kind == "installer")
        ['manual', 'pip', 'poetry', 'uv']
    """

    name: str
    module: str
    distribution: str | None
    version: str | None
    components: tuple[ComponentInfo, ...]
    hooks: tuple[str, ...]  # every zoopipe_* hook the plugin implements

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- loading


@dataclasses.dataclass
class _LoadedPlugins:
    manager: pluggy.PluginManager
    sources: dict[str, PluginSource]
    registry: Registry
    imported: dict[tuple[str, str, str], Any]


_lock = threading.RLock()
_loaded: _LoadedPlugins | None = None


def _installed(distribution: str) -> bool:
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


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
    if BUILTIN_PLUGIN not in found and not _installed(DISTRIBUTION):
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


def _add_plugin(state: _LoadedPlugins, plugin: object, source: PluginSource) -> None:
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
                f"does not define; the hooks are: {', '.join(_hook_names())}. Check the "
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


def _hook_names() -> list[str]:
    return sorted(n for n in vars(hookspecs) if n.startswith("zoopipe_"))


def _load() -> _LoadedPlugins:
    manager = pluggy.PluginManager(ENTRY_POINT_GROUP)
    manager.add_hookspecs(hookspecs)
    state = _LoadedPlugins(manager, {}, Registry(), {})
    for source, entry_point in _select(_discover()):
        try:
            if entry_point is None:
                plugin = importlib.import_module(source.module)
            else:
                plugin = entry_point.load()
        except Exception as exc:
            raise _load_error(source, exc, "to import") from exc
        _add_plugin(state, plugin, source)
    return state


def _state() -> _LoadedPlugins:
    global _loaded
    with _lock:
        if _loaded is None:
            # Assigned only after every plugin loaded: a failed load is retried, and fails
            # again loudly, on the next lookup instead of leaving half a registry behind.
            _loaded = _load()
        return _loaded


def load_plugins() -> None:
    """Load every plugin now (lookups do it on first use); raises PluginError if one is broken."""
    _state()


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
        _add_plugin(_state(), plugin, PluginSource(name=name, module=module))


def hooks() -> Any:
    """The hook relay, for calling lifecycle hooks: ``hooks().zoopipe_before_run(pipe=pipe)``."""
    return _state().manager.hook


# --------------------------------------------------------------------------- lookups


def _first_party_hint(name: str) -> str:
    known = FIRST_PARTY_PLUGINS.get(name)
    if known is None:
        return " Run `zoopipe plugins` to see every plugin and what it registers."
    return (
        f" {name!r} is provided by the first-party plugin {known.package}; install it with: "
        f"{known.install_command}"
    )


def component_names(kind: Kind, direction: Direction | None = None) -> list[str]:
    """Sorted names of the registered components of ``kind`` (adapters: of one direction)."""
    _check_kind(kind)
    role = None if direction is None else _check_direction(direction)
    return _state().registry.names(kind, role)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown component kind {kind!r}; expected one of {', '.join(KINDS)}")


def _check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; expected 'input' or 'output'")
    return direction


def _component(kind: Kind, name: str) -> Component:
    registry = _state().registry
    component = registry.components.get((kind, name))
    if component is None:
        installed = ", ".join(registry.names(kind)) or "none"
        raise PluginError(
            f"no {kind} named {name!r} is installed; installed {kind}s: {installed}."
            + _first_party_hint(name)
        )
    return component


def _import_target(component: Component, role: str) -> Any:
    state = _state()
    key = (component.kind, component.name, role)
    if key in state.imported:
        return state.imported[key]
    target = component.targets[role]
    if isinstance(target, str):
        module_name, _, attribute_path = target.partition(":")
        try:
            value: Any = importlib.import_module(module_name)
            for attribute in attribute_path.split("."):
                value = getattr(value, attribute)
        except Exception as exc:
            if isinstance(exc, ImportError) and extra_installed(component) is False:
                raise PluginError(
                    f"{component.describe()} needs the dependencies of extra "
                    f"{component.extra!r}, which are not installed ({exc}). Install them with: "
                    f"{install_command(component)}"
                ) from exc
            raise PluginError(
                f"{component.describe()} could not be loaded from {target!r}: "
                f"{type(exc).__name__}: {exc}. Fix or upgrade "
                f"{component.source.distribution or 'the plugin'}, or run without it: "
                f"{disable_hint(component.source.name)}"
            ) from exc
        target = value
    state.imported[key] = target
    return target


def get_engine_class(name: str) -> Any:
    """The engine class (or factory) registered as ``name``."""
    return _import_target(_component("engine", name), "factory")


def get_adapter_class(name: str, direction: Direction) -> Any:
    """The input or output adapter class registered as ``name``."""
    role = _check_direction(direction)
    component = _component("adapter", name)
    if role not in component.targets:
        others = ", ".join(_state().registry.names("adapter", role)) or "none"
        raise PluginError(f"{component.describe()} has no {role} side; {role} adapters: {others}")
    return _import_target(component, role)


def _file_name(path: str | os.PathLike[str]) -> str:
    text = os.fspath(path)
    if "://" in text:
        # A URL: drop the scheme and any query string (s3://b/k.csv?versionId=3).
        text = text.split("://", 1)[1].split("?", 1)[0]
    return text.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].lower()


def adapter_name_for_path(path: str | os.PathLike[str], direction: Direction) -> str:
    """The name of the adapter whose suffix matches ``path``; the longest suffix wins."""
    role = _check_direction(direction)
    file_name = _file_name(path)
    owners = _state().registry.suffix_owners
    matches = [(s, c) for (d, s), c in owners.items() if d == role and file_name.endswith(s)]
    if matches:
        return max(matches, key=lambda match: len(match[0]))[1].name
    known = sorted(s for (d, s) in owners if d == role)
    hint = next(
        (
            f" {first_party.package} reads {suffix!r} files; install it with: "
            f"{first_party.install_command}"
            for first_party in FIRST_PARTY_PLUGINS.values()
            for suffix in first_party.suffixes
            if file_name.endswith(suffix)
        ),
        " Name the adapter explicitly, or install a plugin for this format.",
    )
    raise PluginError(
        f"no {role} adapter matches {os.fspath(path)!r}; registered {role} suffixes: "
        f"{', '.join(known) or 'none'}." + hint
    )


def adapter_for_path(path: str | os.PathLike[str], direction: Direction) -> Any:
    """The input or output adapter class for ``path`` (local path or fsspec URL), by suffix."""
    return get_adapter_class(adapter_name_for_path(path, direction), direction)


def get_installer_class(name: str) -> Any:
    """The dependency installer class registered as ``name``."""
    return _import_target(_component("installer", name), "factory")


def select_installer(project_dir: str | os.PathLike[str]) -> str | None:
    """The installer name the plugins choose for ``project_dir``, or None if none recognises it."""
    return hooks().zoopipe_select_installer(project_dir=pathlib.Path(project_dir))


def get_syncer_class(name: str) -> Any:
    """The path syncer class registered as ``name``."""
    return _import_target(_component("syncer", name), "factory")


def _scheme(url: str | os.PathLike[str]) -> str:
    text = os.fspath(url)
    # Only "scheme://" counts, so Windows paths like C:\data are local paths.
    return text.split("://", 1)[0].lower() if "://" in text else ""


def syncer_name_for_url(url: str | os.PathLike[str]) -> str:
    """The name of the syncer serving the scheme of ``url``; plain paths have scheme ``""``."""
    scheme = _scheme(url)
    owners = _state().registry.scheme_owners
    if scheme in owners:
        return owners[scheme].name
    installed = ", ".join(repr(s) for s in sorted(owners)) or "none"
    hint = next(
        (
            f" {p.package} serves {scheme}:// URLs; install it with: {p.install_command}"
            for p in FIRST_PARTY_PLUGINS.values()
            if scheme in p.schemes
        ),
        " Run `zoopipe plugins` to see every plugin and what it registers.",
    )
    raise PluginError(
        f"no syncer serves {scheme}:// URLs like {os.fspath(url)!r}; served schemes: "
        f"{installed}." + hint
    )


def get_syncer_class_for_url(url: str | os.PathLike[str]) -> Any:
    """The path syncer class for ``url`` by its scheme; plain paths and file:// → ``local``."""
    return get_syncer_class(syncer_name_for_url(url))


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


# --------------------------------------------------------------------------- listing


def _target_text(target: Target) -> str:
    if isinstance(target, str):
        return target
    return f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', repr(target))}"


def _component_info(component: Component) -> ComponentInfo:
    installed = extra_installed(component)
    return ComponentInfo(
        kind=component.kind,
        name=component.name,
        targets={role: _target_text(t) for role, t in component.targets.items()},
        suffixes=component.suffixes,
        schemes=component.schemes,
        extra=component.extra,
        extra_installed=installed,
        install_command=install_command(component) if installed is False else None,
    )


def list_plugins() -> list[PluginInfo]:
    """Every loaded plugin, sorted by name, with what it registers and the state of its extras."""
    state = _state()
    infos = []
    for name in sorted(state.sources):
        source = state.sources[name]
        plugin = state.manager.get_plugin(name)
        components = [c for c in state.registry.components.values() if c.source == source]
        components.sort(key=lambda c: (KINDS.index(c.kind), c.name))
        hook_names = sorted(c.name for c in state.manager.get_hookcallers(plugin) or [])
        infos.append(
            PluginInfo(
                name=source.name,
                module=source.module,
                distribution=source.distribution,
                version=source.version,
                components=tuple(_component_info(c) for c in components),
                hooks=tuple(hook_names),
            )
        )
    return infos
