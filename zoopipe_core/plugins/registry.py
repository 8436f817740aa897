"""What plugins register: components, their register callbacks, and the checks on them.

:mod:`zoopipe_core.plugins` loads the plugins and answers lookups; this module holds what they
registered. A component is kept as an import string until first use, so nothing here imports a
plugin's dependencies.

Example:
    >>> collector = Collector(PluginSource(name="demo", module="demo_plugin"))
    >>> collector.register_adapter("lines", input="demo_plugin:LinesInput", suffixes=(".TXT",))
    >>> registry = Registry()
    >>> registry.add_all(collector.components)
    >>> registry.names("adapter", "input"), registry.suffix_owners[("input", ".txt")].name
    (['lines'], 'lines')
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable
from typing import Any, Literal

from zoopipe_core.errors import PluginError
from zoopipe_core.plugins.hookspecs import Target

DISTRIBUTION = "zoopipe-core"
DISABLE_ENV = "ZOOPIPE_DISABLE_PLUGINS"

Kind = Literal["engine", "adapter", "installer", "syncer"]
KINDS: tuple[Kind, ...] = ("engine", "adapter", "installer", "syncer")


# --------------------------------------------------------------------------- data model


@dataclasses.dataclass(frozen=True)
class PluginSource:
    """Where a plugin comes from: its entry-point name, module and distribution.

    Example:
        >>> PluginSource("lines", "zoopipe_lines.plugin", "zoopipe-lines", "0.1.0").describe()
        "plugin 'lines' (package zoopipe-lines 0.1.0)"
    """

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None

    def describe(self) -> str:
        if self.distribution is None:
            return f"plugin {self.name!r}"
        return f"plugin {self.name!r} (package {self.distribution} {self.version})"


@dataclasses.dataclass(frozen=True)
class Component:
    """One registered engine, adapter, installer or syncer.

    Example:
        >>> source = PluginSource("core", "zoopipe_core.plugins.builtin")
        >>> Component("engine", "multiprocess", source, {"factory": "m:Engine"}).describe()
        "engine 'multiprocess' from plugin 'core'"
    """

    kind: Kind
    name: str
    source: PluginSource
    targets: dict[str, Target]  # role ("factory", "input", "output") -> class or import string
    suffixes: tuple[str, ...] = ()
    schemes: tuple[str, ...] = ()
    extra: str | None = None

    def describe(self) -> str:
        return f"{self.kind} {self.name!r} from {self.source.describe()}"


# --------------------------------------------------------------------------- registry


class Registry:
    """Every component registered by the loaded plugins, indexed by name, suffix and scheme.

    Example:
        >>> collector = Collector(PluginSource("demo", "demo"))
        >>> collector.register_syncer("ftp", "demo:FtpSyncer", schemes=("ftp",))
        >>> registry = Registry()
        >>> registry.add_all(collector.components)
        >>> registry.scheme_owners["ftp"].name
        'ftp'
    """

    def __init__(self) -> None:
        self.components: dict[tuple[str, str], Component] = {}
        self.suffix_owners: dict[tuple[str, str], Component] = {}  # (direction, suffix)
        self.scheme_owners: dict[str, Component] = {}

    def add_all(self, components: list[Component]) -> None:
        """Add one plugin's components, or none of them if any clashes."""
        staged = Registry()
        staged.components = dict(self.components)
        staged.suffix_owners = dict(self.suffix_owners)
        staged.scheme_owners = dict(self.scheme_owners)
        for component in components:
            staged._add(component)
        self.__dict__.update(staged.__dict__)

    def _add(self, component: Component) -> None:
        key = (component.kind, component.name)
        _check_free(self.components.get(key), component, f"{component.kind} {component.name!r}")
        suffix_keys = [(d, s) for d in component.targets for s in component.suffixes]
        for direction, suffix in suffix_keys:
            owner = self.suffix_owners.get((direction, suffix))
            _check_free(owner, component, f"{direction} suffix {suffix!r}")
        for scheme in component.schemes:
            _check_free(self.scheme_owners.get(scheme), component, f"URL scheme {scheme!r}")
        self.components[key] = component
        self.suffix_owners.update({k: component for k in suffix_keys})
        self.scheme_owners.update({s: component for s in component.schemes})

    def names(self, kind: Kind, role: str | None = None) -> list[str]:
        return sorted(
            name
            for (k, name), component in self.components.items()
            if k == kind and (role is None or role in component.targets)
        )


def _check_free(owner: Component | None, newcomer: Component, what: str) -> None:
    if owner is None:
        return
    if owner.source == newcomer.source:
        raise PluginError(
            f"{what} is registered twice by {newcomer.source.describe()}; register each name once"
        )
    raise PluginError(
        f"{what} is registered by two plugins: {owner.source.describe()} and "
        f"{newcomer.source.describe()}. Uninstall one of them, or disable one with "
        f"{disable_hint(newcomer.source.name)}"
    )


# --------------------------------------------------------------------------- register callbacks

_IMPORT_STRING = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class Collector:
    """The ``register`` callbacks handed to one plugin; collects what it registers.

    Example:
        >>> collector = Collector(PluginSource("demo", "demo"))
        >>> collector.register_engine("inline", "demo:InlineEngine")
        >>> [(c.kind, c.name) for c in collector.components]
        [('engine', 'inline')]
    """

    def __init__(self, source: PluginSource) -> None:
        self.source = source
        self.components: list[Component] = []

    def callbacks(self) -> dict[str, Any]:
        return {
            "zoopipe_register_engines": self.register_engine,
            "zoopipe_register_adapters": self.register_adapter,
            "zoopipe_register_installers": self.register_installer,
            "zoopipe_register_syncers": self.register_syncer,
        }

    def register_engine(self, name: str, factory: Target, *, extra: str | None = None) -> None:
        self._add("engine", name, {"factory": factory}, extra=extra)

    def register_adapter(
        self,
        name: str,
        *,
        input: Target | None = None,
        output: Target | None = None,
        suffixes: Iterable[str] = (),
        extra: str | None = None,
    ) -> None:
        targets = {role: t for role, t in (("input", input), ("output", output)) if t is not None}
        if not targets:
            raise PluginError(
                f"adapter {name!r} from {self.source.describe()} gives neither input= nor "
                "output=; pass the adapter class or its import string for at least one"
            )
        normalized = tuple(self._suffix(name, s) for s in _as_tuple(suffixes))
        self._add("adapter", name, targets, suffixes=normalized, extra=extra)

    def register_installer(self, name: str, factory: Target) -> None:
        self._add("installer", name, {"factory": factory})

    def register_syncer(
        self,
        name: str,
        factory: Target,
        *,
        schemes: Iterable[str] = (),
        extra: str | None = None,
    ) -> None:
        normalized = tuple(self._scheme(name, s) for s in _as_tuple(schemes))
        self._add("syncer", name, {"factory": factory}, schemes=normalized, extra=extra)

    def _add(self, kind: Kind, name: str, targets: dict[str, Target], **fields: Any) -> None:
        if not isinstance(name, str) or not name or name != name.strip():
            raise PluginError(
                f"{self.source.describe()} registered a {kind} with the name {name!r}; "
                "names are non-empty strings without surrounding spaces"
            )
        for role, target in targets.items():
            if isinstance(target, str) and not _IMPORT_STRING.match(target):
                raise PluginError(
                    f"{kind} {name!r} from {self.source.describe()} has {role} {target!r}, "
                    "which is not an import string; write it as 'package.module:ClassName'"
                )
            if not isinstance(target, str) and not callable(target):
                raise PluginError(
                    f"{kind} {name!r} from {self.source.describe()} has {role} {target!r}; "
                    "pass a class or an import string 'package.module:ClassName'"
                )
        self.components.append(Component(kind, name, self.source, targets, **fields))

    def _suffix(self, name: str, suffix: str) -> str:
        if not isinstance(suffix, str) or not suffix.startswith(".") or len(suffix) < 2:
            raise PluginError(
                f"adapter {name!r} from {self.source.describe()} has suffix {suffix!r}; "
                "suffixes start with a dot, like '.csv' or '.csv.gz'"
            )
        return suffix.lower()

    def _scheme(self, name: str, scheme: str) -> str:
        if not isinstance(scheme, str) or not re.fullmatch(r"[A-Za-z0-9+.-]*", scheme):
            raise PluginError(
                f"syncer {name!r} from {self.source.describe()} has scheme {scheme!r}; "
                "give the bare scheme, like 's3' (or '' for local paths)"
            )
        return scheme.lower()


def _as_tuple(values: Iterable[str]) -> tuple[str, ...]:
    # A lone string is a common slip (suffixes=".txt"); treat it as one value, not characters.
    return (values,) if isinstance(values, str) else tuple(values)


# --------------------------------------------------------------------------- environment


def env_names(variable: str) -> set[str]:
    """The comma-separated names in an environment variable such as ZOOPIPE_DISABLE_PLUGINS."""
    return {n.strip() for n in os.environ.get(variable, "").split(",") if n.strip()}


def disable_hint(plugin_name: str) -> str:
    """The setting that disables ``plugin_name``, keeping the plugins already disabled."""
    already = sorted(env_names(DISABLE_ENV) - {plugin_name})
    return f"{DISABLE_ENV}={','.join([*already, plugin_name])}"
