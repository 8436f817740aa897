"""The first-party plugins: the one table of which extra of zoopipe-core each one needs.

Each first-party plugin ships in the ``zoopipe-core`` distribution; its heavy dependency arrives
with an extra. Everything else is derived from :data:`FIRST_PARTY`: the install hints of a
"not found" error, the check that an extra is installed (without importing it), and the
``zoopipe plugins`` listing. What cannot import Python (``pyproject.toml``'s extras and entry
points, ``docs/plugins.md``'s table, the plugins' own ``register(..., extra=...)`` calls) is
compared with this table by the test suite (``tests/test_plugins.py``).

Example:
    >>> FIRST_PARTY_PLUGINS["s3"].install_command
    'pip install "zoopipe-core[s3]"'
    >>> FIRST_PARTY_EXTRA_IMPORTS["dask"]
    ('dask', 'distributed')
    >>> extra_requirements()["all"]
    ['zoopipe-core[ray,dask,s3,duckdb,dvc,zerocopy]']
"""

from __future__ import annotations

import dataclasses

from zoopipe_core.plugins.registry import DISTRIBUTION, Kind


@dataclasses.dataclass(frozen=True)
class FirstPartyPlugin:
    """A plugin shipped by zoopipe whose dependencies arrive with an extra of ``zoopipe-core``.

    - ``name``: the entry-point name, also the name of the one component it registers;
    - ``package``: its import package (under ``plugins/``), whose ``plugin`` module is the entry point;
    - ``requirements``: the extra's requirement lines, as in pyproject.toml;
    - ``imports``: the import names of those requirements, looked up with ``find_spec``.

    Example:
        >>> ray = FIRST_PARTY_PLUGINS["ray"]
        >>> ray.kind, ray.package, ray.entry_point, ray.install_command
        ('engine', 'zoopipe_ray', 'zoopipe_ray.plugin', 'pip install "zoopipe-core[ray]"')
    """

    name: str
    kind: Kind
    package: str
    extra: str
    requirements: tuple[str, ...]
    imports: tuple[str, ...]
    schemes: tuple[str, ...] = ()
    suffixes: tuple[str, ...] = ()

    @property
    def entry_point(self) -> str:
        return f"{self.package}.plugin"

    @property
    def install_command(self) -> str:
        return f'pip install "{DISTRIBUTION}[{self.extra}]"'


FIRST_PARTY: tuple[FirstPartyPlugin, ...] = (
    FirstPartyPlugin("ray", "engine", "zoopipe_ray", "ray", ("ray[default]>=2.50",), ("ray",)),
    FirstPartyPlugin(
        "dask", "engine", "zoopipe_dask", "dask", ("dask[distributed]>=2026.1",), ("dask", "distributed")
    ),
    FirstPartyPlugin("s3", "syncer", "zoopipe_s3", "s3", ("s3fs>=2026.1",), ("s3fs",), schemes=("s3", "s3a")),
    FirstPartyPlugin(
        "duckdb", "adapter", "zoopipe_duckdb", "duckdb", ("duckdb>=1.0",), ("duckdb",), suffixes=(".duckdb",)
    ),
    FirstPartyPlugin("dvc", "syncer", "zoopipe_dvc", "dvc", ("dvc>=3.0",), ("dvc",), schemes=("dvc",)),
)


@dataclasses.dataclass(frozen=True)
class FirstPartyLibrary:
    """A first-party package that registers no component (nothing to look up by name): users
    import it, and its dependencies arrive with its extra.

    Example:
        >>> zerocopy = FIRST_PARTY_LIBRARIES[0]
        >>> zerocopy.package, zerocopy.install_command
        ('zoopipe_zerocopy', 'pip install "zoopipe-core[zerocopy]"')
    """

    package: str
    extra: str
    requirements: tuple[str, ...]
    imports: tuple[str, ...]

    @property
    def install_command(self) -> str:
        return f'pip install "{DISTRIBUTION}[{self.extra}]"'


FIRST_PARTY_LIBRARIES: tuple[FirstPartyLibrary, ...] = (
    # Zero-copy model sharing (ModelWrapper): torch from PyPI is large, so it is its own extra.
    FirstPartyLibrary("zoopipe_zerocopy", "zerocopy", ("torch>=2.4",), ("torch",)),
)

# Component name -> the first-party plugin that provides it, so an unknown name that we know
# about gets the exact install command instead of a bare "not found".
FIRST_PARTY_PLUGINS: dict[str, FirstPartyPlugin] = {plugin.name: plugin for plugin in FIRST_PARTY}

# Extra of zoopipe-core -> import names of its dependencies, checked with find_spec (no import).
_EVERY: tuple[FirstPartyPlugin | FirstPartyLibrary, ...] = (*FIRST_PARTY, *FIRST_PARTY_LIBRARIES)
FIRST_PARTY_EXTRA_IMPORTS: dict[str, tuple[str, ...]] = {p.extra: p.imports for p in _EVERY}

#: The extra that installs every first-party plugin's dependencies.
ALL_EXTRA = "all"


def extra_requirements() -> dict[str, list[str]]:
    """The first-party extras as pyproject.toml's ``[project.optional-dependencies]`` lists them,
    ``all`` included."""
    extras = {plugin.extra: list(plugin.requirements) for plugin in _EVERY}
    extras[ALL_EXTRA] = [f"{DISTRIBUTION}[{','.join(p.extra for p in _EVERY)}]"]
    return extras
