"""Looking components up: by name, by a path's suffix, by a URL's scheme; importing them on first use.

A name, suffix or scheme nobody registered is a :class:`~zoopipe_core.errors.PluginError` that
lists what is installed and, for a first-party plugin, the command that installs it.

Example:
    >>> from zoopipe_core.plugins import lookup
    >>> lookup.adapter_name_for_path("s3://bucket/day=1/events.jsonl.gz", "input")
    'jsonl'
    >>> lookup.syncer_name_for_url("file:///tmp/data.csv")
    'local'
"""

from __future__ import annotations

import importlib
import os
import pathlib
from typing import Any, Literal

from zoopipe_core.errors import PluginError
from zoopipe_core.plugins.extras import extra_installed, install_command
from zoopipe_core.plugins.first_party import FIRST_PARTY_PLUGINS
from zoopipe_core.plugins.loading import hooks, loaded_plugins
from zoopipe_core.plugins.registry import KINDS, Component, Kind, disable_hint

DEFAULT_ENGINE = "multiprocess"

Direction = Literal["input", "output"]
DIRECTIONS: tuple[Direction, ...] = ("input", "output")


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
    return loaded_plugins().registry.names(kind, role)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown component kind {kind!r}; expected one of {', '.join(KINDS)}")


def _check_direction(direction: str) -> str:
    """``direction`` itself if it is ``"input"`` or ``"output"``; ValueError otherwise."""
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; expected 'input' or 'output'")
    return direction


def _component(kind: Kind, name: str) -> Component:
    registry = loaded_plugins().registry
    component = registry.components.get((kind, name))
    if component is None:
        installed = ", ".join(registry.names(kind)) or "none"
        raise PluginError(
            f"no {kind} named {name!r} is installed; installed {kind}s: {installed}."
            + _first_party_hint(name)
        )
    return component


def _import_target(component: Component, role: str) -> Any:
    state = loaded_plugins()
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
        others = ", ".join(loaded_plugins().registry.names("adapter", role)) or "none"
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
    owners = loaded_plugins().registry.suffix_owners
    matches = [(s, c) for (d, s), c in owners.items() if d == role and file_name.endswith(s)]
    if matches:
        return max(matches, key=lambda match: len(match[0]))[1].name
    known = sorted(s for (d, s) in owners if d == role)
    hint = next(
        (
            f" {first_party.package} reads {suffix!r} files; install it with: {first_party.install_command}"
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
    owners = loaded_plugins().registry.scheme_owners
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
        f"no syncer serves {scheme}:// URLs like {os.fspath(url)!r}; served schemes: {installed}." + hint
    )


def get_syncer_class_for_url(url: str | os.PathLike[str]) -> Any:
    """The path syncer class for ``url`` by its scheme; plain paths and file:// → ``local``."""
    return get_syncer_class(syncer_name_for_url(url))
