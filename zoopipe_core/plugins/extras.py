"""Whether the dependencies of a component's extra are installed, found without importing them.

An extra of zoopipe-core is looked up in :mod:`zoopipe_core.plugins.first_party` (its import
names, with ``find_spec``); a third party's extra by the ``Requires-Dist`` lines of its
distribution's metadata.

Example:
    >>> from zoopipe_core.plugins.registry import Component, PluginSource
    >>> source = PluginSource("demo", "demo_plugin", "demo-dist", "1.0")
    >>> component = Component("engine", "turbo", source, {"factory": "demo:Turbo"}, extra="fast")
    >>> install_command(component)
    'pip install "demo-dist[fast]"'
    >>> extra_installed(component) is None  # demo-dist is not installed: nothing to go by
    True
"""

from __future__ import annotations

import importlib.util
import re
from importlib import metadata

from zoopipe_core.plugins.first_party import FIRST_PARTY_EXTRA_IMPORTS
from zoopipe_core.plugins.registry import DISTRIBUTION, Component


def _extra_requirements(distribution: str, extra: str) -> list[str] | None:
    """Project names a distribution requires for ``extra``, from its metadata."""
    try:
        requires = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return None
    marker = re.compile(r"""extra\s*==\s*["']""" + re.escape(extra) + r"""["']""")
    names = []
    for requirement in requires:
        spec, _, markers = requirement.partition(";")
        if marker.search(markers):
            names.append(re.match(r"\s*([A-Za-z0-9._-]+)", spec).group(1))  # type: ignore[union-attr]
    return names


def distribution_installed(name: str) -> bool:
    """Whether a distribution (a project name such as ``zoopipe-core``) is installed."""
    try:
        metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def extra_installed(component: Component) -> bool | None:
    """Whether the dependencies of the component's extra are present, without importing them."""
    extra = component.extra
    if extra is None:
        return None
    distribution = component.source.distribution
    if distribution in (None, DISTRIBUTION) and extra in FIRST_PARTY_EXTRA_IMPORTS:
        imports = FIRST_PARTY_EXTRA_IMPORTS[extra]
        return all(importlib.util.find_spec(name) is not None for name in imports)
    if distribution is None:
        return None
    # A third-party extra: its import names are unknown, so look for the distributions instead.
    requirements = _extra_requirements(distribution, extra)
    if requirements is None:
        return None
    return all(distribution_installed(name) for name in requirements)


def install_command(component: Component) -> str:
    """The pip command that installs the dependencies of the component's extra."""
    distribution = component.source.distribution or DISTRIBUTION
    return f'pip install "{distribution}[{component.extra}]"'
