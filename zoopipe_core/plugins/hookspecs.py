"""The hooks a zoopipe plugin can implement.

A plugin is a module (or any object) with functions decorated by :data:`hookimpl`, named after the
hooks below. It is found through the entry-point group ``zoopipe``; see ``docs/plugins.md``.

Registration hooks receive a ``register`` callback and register components by *import string*
(``"package.module:Class"``) or by class. Import strings keep plugins cheap to load: listing or
loading every plugin never imports Ray, Dask, boto3 or torch.

Example:
    >>> from zoopipe_core.plugins.hookspecs import hookimpl
    >>> @hookimpl
    ... def zoopipe_register_engines(register):
    ...     register("inline", "my_plugin.engine:InlineEngine")
    >>> seen = []
    >>> zoopipe_register_engines(lambda name, target, **kw: seen.append((name, target)))
    >>> seen
    [('inline', 'my_plugin.engine:InlineEngine')]
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from zoopipe_core.pipe.pipe import Pipe
    from zoopipe_core.pipe.report import PipeReport

hookspec = pluggy.HookspecMarker("zoopipe")
hookimpl = pluggy.HookimplMarker("zoopipe")

#: What a component is registered as: a class (or other factory) or an import string
#: ``"package.module:attribute"``, imported on first use.
Target = str | Callable[..., Any]


class RegisterEngine(Protocol):
    """The ``register`` callback of :func:`zoopipe_register_engines`."""

    def __call__(self, name: str, factory: Target, *, extra: str | None = None) -> None: ...


class RegisterAdapter(Protocol):
    """The ``register`` callback of :func:`zoopipe_register_adapters`."""

    def __call__(
        self,
        name: str,
        *,
        input: Target | None = None,
        output: Target | None = None,
        suffixes: Iterable[str] = (),
        extra: str | None = None,
    ) -> None: ...


class RegisterInstaller(Protocol):
    """The ``register`` callback of :func:`zoopipe_register_installers`."""

    def __call__(self, name: str, factory: Target) -> None: ...


class RegisterSyncer(Protocol):
    """The ``register`` callback of :func:`zoopipe_register_syncers`."""

    def __call__(
        self,
        name: str,
        factory: Target,
        *,
        schemes: Iterable[str] = (),
        extra: str | None = None,
    ) -> None: ...


# --- registration hooks: called once per plugin, the first time a component is looked up ---


@hookspec
def zoopipe_register_engines(register: RegisterEngine) -> None:
    """Register engines: where parallel work runs (local processes, Ray, Dask).

    Call ``register(name, factory, extra=None)`` once per engine. ``factory`` is the engine class
    or its import string; it is called with no arguments when a user passes the engine's name
    (``engine="ray"``). ``extra`` names the optional-dependency extra of the plugin's distribution
    that the engine needs (``"ray"`` → ``pip install "zoopipe-core[ray]"``).

    :return: Nothing; the return value is ignored.
    """


@hookspec
def zoopipe_register_adapters(register: RegisterAdapter) -> None:
    """Register adapters: where records come from and where they go.

    Call ``register(name, input=..., output=..., suffixes=(...), extra=None)`` once per adapter.
    ``input`` and ``output`` are :class:`~zoopipe_core.adapters.base.InputAdapter` /
    :class:`~zoopipe_core.adapters.base.OutputAdapter` subclasses or their import strings; give at
    least one. ``suffixes`` (``".csv"``, ``".csv.gz"``) let a path or URL select the adapter: the
    longest matching suffix wins. The class is then called as ``cls(path, **options)``.

    :return: Nothing; the return value is ignored.
    """


@hookspec
def zoopipe_register_installers(register: RegisterInstaller) -> None:
    """Register dependency installers: how a project's requirements reach the workers.

    Call ``register(name, factory)``; ``factory`` is an
    :class:`~zoopipe_core.installers.Installer` subclass or its import string.

    :return: Nothing; the return value is ignored.
    """


@hookspec
def zoopipe_register_syncers(register: RegisterSyncer) -> None:
    """Register path syncers: how local paths are pushed to and pulled from remote storage.

    Call ``register(name, factory, schemes=(...), extra=None)``. ``schemes`` are the URL schemes
    the syncer serves (``"s3"``); ``""`` stands for plain local paths.

    :return: Nothing; the return value is ignored.
    """


# --- decisions ---


@hookspec(firstresult=True)
def zoopipe_select_installer(project_dir: pathlib.Path) -> str | None:
    """Name the dependency installer for the project in ``project_dir``.

    Called when an engine prepares workers and the user named no installer. Implementations look
    at the project's files (``uv.lock``, ``poetry.lock``, ``requirements.txt``...).

    :return: The registered name of an installer, or None when this plugin does not recognise
        the project.

    Stops at the first non-None result (``firstresult``). The built-in implementation runs last,
    so a third-party plugin can override its choice.
    """


# --- run lifecycle: for observability plugins (metrics, tracing, notifications) ---


@hookspec
def zoopipe_before_run(pipe: Pipe) -> None:
    """Called when ``pipe.run()`` starts, before the first record is read.

    :return: Nothing; the return value is ignored. An exception aborts the run and reaches the
        caller of ``run()``.
    """


@hookspec
def zoopipe_after_run(pipe: Pipe, report: PipeReport) -> None:
    """Called when ``pipe.run()`` finished and its output was committed.

    ``report`` carries the final counts (``success_count``, ``error_count``, ``total_processed``).

    :return: Nothing; the return value is ignored.
    """


@hookspec
def zoopipe_on_error(pipe: Pipe, error: BaseException) -> None:
    """Called when ``pipe.run()`` fails, after its output was aborted, before ``error`` is raised.

    Record-level validation errors are data and do not trigger this hook, and a cancelled run is
    not a failure; it reports runs that could not complete (unreadable input, failed write).

    :return: Nothing; the return value is ignored. ``error`` is re-raised after every
        implementation ran.
    """


__all__ = [
    "RegisterAdapter",
    "RegisterEngine",
    "RegisterInstaller",
    "RegisterSyncer",
    "Target",
    "hookimpl",
    "hookspec",
]
