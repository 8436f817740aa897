"""Remote offload: run a function on a worker while its input and output paths stay local.

``api`` holds :func:`remote` and :class:`Offload` (the driver's side); ``worker`` runs one call
on a worker; ``paths`` finds and replaces paths inside arguments; ``storage`` picks the content
store. See docs/offload.md.

Example:
    >>> from zoopipe_core.parallel.offload import remote
    >>> callable(remote)
    True
"""

from zoopipe_core.parallel.offload.api import Offload, remote
from zoopipe_core.parallel.offload.paths import LocationError

__all__ = ["LocationError", "Offload", "remote"]
