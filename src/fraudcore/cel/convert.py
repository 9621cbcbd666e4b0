"""Conversion between Python values and CEL runtime values, at the API edge
(SPEC §2: uint ↔ UInt, timestamp ↔ aware datetime, duration ↔ timedelta,
map ↔ dict, type ↔ Type)."""

from __future__ import annotations

import datetime as _dt

from ..errors import EvaluationError
from .values import CelMap, Duration, Err, Timestamp, Type, UInt

__all__ = ["from_cel", "to_cel"]

_SCALARS = (bool, int, UInt, float, str, bytes, type(None), Type)


def to_cel(value: object) -> object:
    """A Python value as a CEL value. Values of no CEL type become an error
    value naming the type, so only expressions that touch them fail."""
    t = type(value)
    if t in _SCALARS:
        return value
    if isinstance(value, (list, tuple)):
        return [to_cel(v) for v in value]
    if isinstance(value, dict):
        try:
            return CelMap.from_pairs((k, to_cel(v)) for k, v in value.items())
        except ValueError as e:
            return Err(str(e))
    if isinstance(value, _dt.datetime):
        return Timestamp.from_datetime(value)
    if isinstance(value, _dt.timedelta):
        return Duration.from_timedelta(value)
    if isinstance(value, (Timestamp, Duration, CelMap, Err)):
        return value
    if isinstance(value, int):  # int subclasses (e.g. IntEnum) as plain ints
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return Err(f"unsupported value type: {t.__name__}")


def from_cel(value: object) -> object:
    """A CEL result as a Python value; an error value raises EvaluationError."""
    if isinstance(value, Err):
        raise EvaluationError(value.message)
    if isinstance(value, list):
        return [from_cel(v) for v in value]
    if isinstance(value, CelMap):
        return {k: from_cel(v) for k, v in value.items()}
    if isinstance(value, Timestamp):
        return value.to_datetime()
    if isinstance(value, Duration):
        return value.to_timedelta()
    return value
