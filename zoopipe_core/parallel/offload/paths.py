"""Where an offloaded function's input and output paths are in its arguments: dotted locations.

``"data_dir"`` names a parameter; ``"config.data.path"`` reaches from the parameter ``config``
into dicts, lists (by index), dataclasses, OmegaConf ``DictConfig`` and plain attributes. A name
that is not a parameter of a function taking ``**kwargs`` is looked up among those.
:func:`replaced` builds a changed copy along the location and never mutates the caller's objects.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import os
from collections.abc import Mapping, MutableMapping, MutableSequence
from typing import Any


class LocationError(ValueError):
    """A dep or out names a location the call's arguments do not have, or that holds no path."""


@dataclasses.dataclass(frozen=True)
class Location:
    """A place in a call's arguments: a parameter name and the keys below it.

    Example:
        >>> import inspect
        >>> def train(config, seed=0): ...
        >>> loc = Location.parse("config.data.path", inspect.signature(train))
        >>> loc.parameter, loc.keys
        ('config', ('data', 'path'))
        >>> loc.get({"config": {"data": {"path": "./data"}}})
        './data'
    """

    spec: str
    parameter: str
    keys: tuple[str, ...]

    @classmethod
    def parse(cls, spec: str, signature: inspect.Signature) -> Location:
        if not isinstance(spec, str) or not spec or any(not part for part in spec.split(".")):
            raise LocationError(
                f"a dep or out is a parameter name or a dotted path like 'config.data.path', not {spec!r}"
            )
        first, *rest = spec.split(".")
        if first in signature.parameters:
            return cls(spec, first, tuple(rest))
        var_keyword = next(
            (p.name for p in signature.parameters.values() if p.kind is inspect.Parameter.VAR_KEYWORD), None
        )
        if var_keyword is not None:
            return cls(spec, var_keyword, (first, *rest))
        raise LocationError(
            f"{spec!r} names no parameter of the function; its parameters are "
            f"{', '.join(signature.parameters) or 'none'}"
        )

    def get(self, arguments: Mapping[str, Any]) -> Any:
        """The value at this location in ``arguments`` (parameter name -> value)."""
        if self.parameter not in arguments:
            raise LocationError(f"{self.spec!r}: the call passes no argument {self.parameter!r}")
        value = arguments[self.parameter]
        for depth, key in enumerate(self.keys):
            try:
                value = _child(value, key)
            except (KeyError, IndexError, AttributeError, TypeError, ValueError):
                reached = ".".join((self.parameter, *self.keys[:depth]))
                raise LocationError(
                    f"{self.spec!r}: {reached} ({type(value).__name__}) has no {key!r}"
                ) from None
        return value

    def path(self, arguments: Mapping[str, Any]) -> str:
        """The path at this location: a ``str`` or ``os.PathLike``."""
        value = self.get(arguments)
        if isinstance(value, str | os.PathLike) and os.fspath(value):
            return os.fspath(value)
        raise LocationError(
            f"{self.spec!r} must hold a path (str or os.PathLike), got {type(value).__name__} {value!r}"
        )


def replaced(arguments: Mapping[str, Any], values: Mapping[Location, Any]) -> dict[str, Any]:
    """A copy of ``arguments`` with each location set to its new value; the originals are
    left as they were (containers along a location are copied, nothing else).

    Example:
        >>> import inspect
        >>> def train(config): ...
        >>> config = {"data": {"path": "./data"}, "epochs": 3}
        >>> loc = Location.parse("config.data.path", inspect.signature(train))
        >>> replaced({"config": config}, {loc: "/scratch/data"})
        {'config': {'data': {'path': '/scratch/data'}, 'epochs': 3}}
        >>> config["data"]["path"]
        './data'
    """
    result = dict(arguments)
    for location, value in values.items():
        result[location.parameter] = _set(result[location.parameter], location.keys, value)
    return result


def _child(value: Any, key: str) -> Any:
    if _is_omegaconf(value):
        return value[int(key)] if _is_omegaconf_list(value) else value[key]
    if isinstance(value, Mapping):
        return value[key]
    if isinstance(value, list | tuple):
        return value[int(key)]
    return getattr(value, key)


def _set(container: Any, keys: tuple[str, ...], value: Any) -> Any:
    if not keys:
        return value
    key, rest = keys[0], keys[1:]
    new_child = _set(_child(container, key), rest, value)
    if _is_omegaconf(container):
        copied = copy.deepcopy(container)
        from omegaconf import flag_override

        # A read-only or struct config (Hydra's) is changed on this copy only.
        with flag_override(copied, ["readonly", "struct"], False):
            copied[int(key) if _is_omegaconf_list(copied) else key] = new_child
        return copied
    if isinstance(container, MutableMapping):
        copied = copy.copy(container)
        copied[key] = new_child
        return copied
    if isinstance(container, tuple):
        return type(container)(new_child if i == int(key) else item for i, item in enumerate(container))
    if isinstance(container, MutableSequence):
        copied = copy.copy(container)
        copied[int(key)] = new_child
        return copied
    if dataclasses.is_dataclass(container) and not isinstance(container, type):
        field = next((f for f in dataclasses.fields(container) if f.name == key), None)
        if field is not None and field.init:
            return dataclasses.replace(container, **{key: new_child})
    copied = copy.copy(container)
    object.__setattr__(copied, key, new_child)
    return copied


def _is_omegaconf(value: Any) -> bool:
    module = type(value).__module__
    if not module.startswith("omegaconf"):
        return False
    from omegaconf import OmegaConf

    return OmegaConf.is_config(value)


def _is_omegaconf_list(value: Any) -> bool:
    from omegaconf import OmegaConf

    return OmegaConf.is_list(value)
