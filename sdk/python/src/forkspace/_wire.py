"""Turning the agent's JSON (camelCase) into the SDK's dataclasses (snake_case) and back.

A dataclass field ``memory_peak_bytes`` reads the key ``memoryPeakBytes``; a trailing underscore is
dropped (``from_`` reads ``from``). Nested dataclasses, lists of them and optionals follow the field's type.
Keys the SDK does not know are ignored, so a newer agent that adds fields keeps working.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, Union, cast

from .errors import ProtocolMismatchError

T = TypeVar("T")

_hints: dict[type[Any], dict[str, Any]] = {}


def camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def to_wire(params: Mapping[str, Any]) -> dict[str, Any]:
    """snake_case keyword arguments -> the protocol's camelCase params, dropping ``None`` (absent)."""
    return {camel(k): v for k, v in params.items() if v is not None}


def from_wire(cls: type[T], data: Any) -> T:
    """Builds ``cls`` (a dataclass) from the agent's JSON object."""
    if not isinstance(data, Mapping):
        raise ProtocolMismatchError(f"expected a JSON object for {cls.__name__}, got {type(data).__name__}: {str(data)[:200]}")
    hints = _hints.get(cls)
    if hints is None:
        hints = _hints[cls] = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cast(Any, cls)):
        if not f.init:
            continue
        key = camel(f.name)
        if key in data:
            kwargs[f.name] = _convert(hints[f.name], data[key], f"{cls.__name__}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ProtocolMismatchError(
                f"the agent's {cls.__name__} has no `{key}`: is the agent a different version than this SDK?"
            )
    return cls(**kwargs)


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, where) if len(args) == 1 else value
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ProtocolMismatchError(f"{where}: expected a list, got {type(value).__name__}")
        return [_convert(item, v, where) for v in value]
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        wire = getattr(tp, "from_wire", None)
        return wire(value) if callable(wire) else from_wire(tp, value)
    return value
