"""Large objects an engine shares with its workers once, as small handles (:class:`SharedRef`)."""

from __future__ import annotations

import abc
from typing import Any


class SharedRef(abc.ABC):
    """A handle to one large object an engine shared with its workers (see :meth:`Engine.share`).

    The handle is small to pickle: pass it to ``submit`` in place of the object, and call
    :meth:`get` in the task. Engines implement it over their object store.

    Example:
        >>> from zoopipe_core.engines import MultiProcessEngine
        >>> with MultiProcessEngine(max_workers=1) as engine:
        ...     ref = engine.share({"vocabulary": ["a", "b"]})
        ...     engine.submit(lambda r: r.get()["vocabulary"][1], ref).result()
        'b'
    """

    @property
    @abc.abstractmethod
    def key(self) -> str:
        """Identifies the shared copy: two refs with the same key resolve to the same copy."""

    @abc.abstractmethod
    def get(self) -> Any:
        """The shared object.

        The first call in a process loads it; later calls in the same process return the same
        object. Raises LookupError when the engine that shared it has been shut down.
        """
