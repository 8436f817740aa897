"""Ray for zoopipe: RayEngine runs pipes and tasks on a Ray cluster (`pip install "zoopipe-core[ray]"`);
RayMap is ray-map's parallel map API on it; ray_decorator and ray_zen are ray-decorator's API on
zoopipe's offload (a function's input and output paths stay local while it runs on Ray).

Importing this package does not import Ray; the engine does, when it starts.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "RayEngine": "zoopipe_ray.engine",
    "RayMap": "zoopipe_ray.raymap",
    "RayOffload": "zoopipe_ray.offload",
    "RayZen": "zoopipe_ray.offload",
    "ray_decorator": "zoopipe_ray.offload",
    "ray_zen": "zoopipe_ray.offload",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'zoopipe_ray' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
