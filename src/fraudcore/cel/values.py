"""Runtime values of the reference interpreter.

CEL values are Python values wherever Python has the same semantics:
int → ``int``, double → ``float``, string → ``str``, bytes → ``bytes``,
bool → ``bool``, null → ``None``, list → ``list``. The rest get small classes:

* :class:`UInt` — an ``int`` subclass, so ``1u`` and ``1`` stay distinct types;
* :class:`Timestamp` and :class:`Duration` — nanosecond precision, which
  ``datetime`` lacks; converted to ``datetime``/``timedelta`` at the API edge;
* :class:`CelMap` — a map whose keys follow CEL equality (``true`` and ``1``
  are different keys, ``1`` and ``1u`` the same one), which ``dict`` gets wrong;
* :class:`Type` — a type value, whose ``str()`` is the CEL type name;
* :class:`Err` — CEL's error value. Errors are values so that ``&&``, ``||``
  and ``?:`` can absorb them; they become exceptions only at the API edge.
"""

from __future__ import annotations

import datetime as _dt
import math

__all__ = [
    "Missing",
    "CelFault",
    "CelMap",
    "Duration",
    "Err",
    "Timestamp",
    "Type",
    "UInt",
    "INT64_MAX",
    "INT64_MIN",
    "UINT64_MAX",
    "type_name",
]

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1

# Timestamps range over years 0001..9999 (google.protobuf.Timestamp).
MIN_TIMESTAMP_SECONDS = -62135596800
MAX_TIMESTAMP_SECONDS = 253402300799
# Durations are one int64 of nanoseconds (about ±292 years), as in CEL's
# language definition and its conformance cases.
MAX_DURATION_NS = (1 << 63) - 1

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


class UInt(int):
    """A CEL ``uint`` (an ``int`` in 0..2**64-1 that remembers its type)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"{int(self)}u"


class Type:
    """A CEL type value, as returned by ``type(x)``; ``str()`` is its name."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Type) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("cel-type", self.name))

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"Type({self.name!r})"


class Err:
    """CEL's error value. Never raised inside the interpreter."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message

    def __repr__(self) -> str:
        return f"Err({self.message!r})"


class Missing(Err):
    """The error value of a declared event field the event does not have
    (so ``has(event.f)`` can tell it from a present but mistyped field)."""

    __slots__ = ()


class Timestamp:
    """A point in time: nanoseconds since the Unix epoch, UTC."""

    __slots__ = ("ns",)

    def __init__(self, ns: int):
        self.ns = ns

    @property
    def seconds(self) -> int:
        return self.ns // 1_000_000_000

    @property
    def nanos(self) -> int:
        return self.ns % 1_000_000_000

    def in_range(self) -> bool:
        return MIN_TIMESTAMP_SECONDS <= self.seconds <= MAX_TIMESTAMP_SECONDS

    def to_datetime(self) -> _dt.datetime:
        """An aware UTC datetime (truncated to microseconds)."""
        return _EPOCH + _dt.timedelta(microseconds=self.ns // 1000)

    @classmethod
    def from_datetime(cls, value: _dt.datetime) -> "Timestamp":
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        delta = value - _EPOCH
        return cls((delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timestamp) and other.ns == self.ns

    def __hash__(self) -> int:
        return hash(("ts", self.ns))

    def __repr__(self) -> str:
        return f"Timestamp({self.ns})"


class Duration:
    """A signed span of time in nanoseconds."""

    __slots__ = ("ns",)

    def __init__(self, ns: int):
        self.ns = ns

    def in_range(self) -> bool:
        return -MAX_DURATION_NS - 1 <= self.ns <= MAX_DURATION_NS

    def to_timedelta(self) -> _dt.timedelta:
        # int(ns / 1000) truncates toward zero, as Go's Duration does.
        return _dt.timedelta(microseconds=int(self.ns / 1000) if abs(self.ns) < 1 << 52 else self.ns // 1000)

    @classmethod
    def from_timedelta(cls, value: _dt.timedelta) -> "Duration":
        return cls((value.days * 86400 + value.seconds) * 1_000_000_000 + value.microseconds * 1000)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Duration) and other.ns == self.ns

    def __hash__(self) -> int:
        return hash(("dur", self.ns))

    def __repr__(self) -> str:
        return f"Duration({self.ns})"


def map_key(key: object) -> object:
    """The dict key under which a CEL map stores ``key``.

    CEL compares int, uint and (integral) double keys by numeric value, but
    ``true`` is not ``1``; Python's ``dict`` would merge ``True`` and ``1``.
    Returns None when ``key`` can never be a map key (a non-integral double,
    for instance), so lookups simply miss.
    """
    t = type(key)
    if t is bool:
        return ("b", key)
    if t is int or t is UInt:
        return ("n", int(key))
    if t is float:
        if math.isfinite(key) and key == int(key):
            return ("n", int(key))
        return None
    if t is str:
        return ("s", key)
    return ("o", key) if hashable(key) else None


def hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


class CelMap:
    """An immutable CEL map preserving insertion order."""

    __slots__ = ("_items",)

    def __init__(self, items: dict[object, tuple[object, object]] | None = None):
        # map_key(k) -> (k, v)
        self._items = items if items is not None else {}

    @classmethod
    def from_pairs(cls, pairs) -> "CelMap":
        """Build from (key, value) pairs; raises ValueError on a repeated key
        or a key of a type maps cannot hold."""
        items: dict[object, tuple[object, object]] = {}
        for k, v in pairs:
            if type(k) not in (bool, int, UInt, str):
                raise ValueError(f"unsupported key type: {type_name(k)}")
            mk = map_key(k)
            if mk in items:
                raise ValueError(f"Failed with repeated key: {k!r}")
            items[mk] = (k, v)
        return cls(items)

    def get(self, key: object, default: object = None) -> object:
        mk = map_key(key)
        if mk is None:
            return default
        hit = self._items.get(mk)
        return default if hit is None else hit[1]

    def __contains__(self, key: object) -> bool:
        mk = map_key(key)
        return mk is not None and mk in self._items

    def __len__(self) -> int:
        return len(self._items)

    def keys(self):
        return [k for k, _ in self._items.values()]

    def items(self):
        return list(self._items.values())

    def __iter__(self):
        return iter(self.keys())

    def __repr__(self) -> str:
        return "CelMap({" + ", ".join(f"{k!r}: {v!r}" for k, v in self._items.values()) + "})"


_TYPE_NAMES = {
    bool: "bool",
    int: "int",
    UInt: "uint",
    float: "double",
    str: "string",
    bytes: "bytes",
    type(None): "null_type",
    list: "list",
    CelMap: "map",
    Timestamp: "google.protobuf.Timestamp",
    Duration: "google.protobuf.Duration",
    Type: "type",
}


def type_name(value: object) -> str:
    """The CEL type name of a runtime value (``dyn`` if it is not a CEL value)."""
    return _TYPE_NAMES.get(type(value), "dyn" if not isinstance(value, Err) else "error")


class CelFault(Exception):
    """Raised by standard-library implementations; the interpreter turns it
    into an :class:`Err` value carrying the same message."""
