"""What ``zoopipe plugins`` lists: every loaded plugin, its components and the state of their extras."""

from __future__ import annotations

import dataclasses
from typing import Any

from zoopipe_core.plugins.extras import extra_installed, install_command
from zoopipe_core.plugins.hookspecs import Target
from zoopipe_core.plugins.loading import loaded_plugins
from zoopipe_core.plugins.registry import KINDS, Component, Kind


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
    state = loaded_plugins()
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
