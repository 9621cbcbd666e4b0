"""CEL types as the checker sees them, and the parser of type names.

A :class:`CelType` is immutable and hashable. ``params`` holds the element type
of a list, the key and value types of a map, or the type a ``type(T)`` value
denotes. Type parameters of generic overloads (``A`` in ``list(A)``) have kind
``param``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "BOOL",
    "BYTES",
    "CelType",
    "DOUBLE",
    "DURATION",
    "DYN",
    "ERROR",
    "INT",
    "NULL",
    "STRING",
    "TIMESTAMP",
    "TYPE",
    "UINT",
    "list_of",
    "map_of",
    "param",
    "parse_type",
    "type_of_type",
]


@dataclass(frozen=True, slots=True)
class CelType:
    kind: str
    params: tuple["CelType", ...] = ()

    def __str__(self) -> str:
        if self.kind == "list":
            return f"list({self.params[0]})"
        if self.kind == "map":
            return f"map({self.params[0]}, {self.params[1]})"
        if self.kind == "type" and self.params:
            return f"type({self.params[0]})"
        if self.kind == "param":
            return self.params[0].kind if self.params else "?"
        return self.kind

    @property
    def is_dyn(self) -> bool:
        return self.kind in ("dyn", "error")


INT = CelType("int")
UINT = CelType("uint")
DOUBLE = CelType("double")
BOOL = CelType("bool")
STRING = CelType("string")
BYTES = CelType("bytes")
NULL = CelType("null_type")
TIMESTAMP = CelType("google.protobuf.Timestamp")
DURATION = CelType("google.protobuf.Duration")
DYN = CelType("dyn")
TYPE = CelType("type")
ERROR = CelType("error")


def list_of(elem: CelType) -> CelType:
    return CelType("list", (elem,))


def map_of(key: CelType, value: CelType) -> CelType:
    return CelType("map", (key, value))


def type_of_type(t: CelType) -> CelType:
    return CelType("type", (t,))


def param(name: str) -> CelType:
    """A type parameter of a generic overload."""
    return CelType("param", (CelType(name),))


_SIMPLE = {
    "int": INT,
    "int64": INT,
    "uint": UINT,
    "uint64": UINT,
    "double": DOUBLE,
    "float": DOUBLE,
    "bool": BOOL,
    "string": STRING,
    "bytes": BYTES,
    "null": NULL,
    "null_type": NULL,
    "timestamp": TIMESTAMP,
    "google.protobuf.Timestamp": TIMESTAMP,
    "duration": DURATION,
    "google.protobuf.Duration": DURATION,
    "dyn": DYN,
    "any": DYN,
    "type": TYPE,
    "list": list_of(DYN),
    "map": map_of(DYN, DYN),
}

_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*|[(),])")


def parse_type(text: str) -> CelType:
    """Parse a declaration such as ``list(string)`` or ``map(string, int)``.

    Raises ``ValueError`` naming the offending text when it is not a type.
    """
    tokens: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"not a CEL type: {text!r} (unexpected {text[pos:]!r})")
        tokens.append(m.group(1))
        pos = m.end()
    result, rest = _parse_tokens(tokens, text)
    if rest:
        raise ValueError(f"not a CEL type: {text!r} (unexpected {' '.join(rest)!r})")
    return result


def _parse_tokens(tokens: list[str], text: str) -> tuple[CelType, list[str]]:
    if not tokens or tokens[0] in "(),":
        raise ValueError(f"not a CEL type: {text!r}")
    name, rest = tokens[0], tokens[1:]
    if rest and rest[0] == "(":
        args: list[CelType] = []
        rest = rest[1:]
        while True:
            arg, rest = _parse_tokens(rest, text)
            args.append(arg)
            if not rest:
                raise ValueError(f"not a CEL type: {text!r} (missing ')')")
            if rest[0] == ")":
                rest = rest[1:]
                break
            if rest[0] != ",":
                raise ValueError(f"not a CEL type: {text!r}")
            rest = rest[1:]
        if name == "list" and len(args) == 1:
            return list_of(args[0]), rest
        if name == "map" and len(args) == 2:
            return map_of(args[0], args[1]), rest
        raise ValueError(f"not a CEL type: {text!r} ({name} takes {'one' if name == 'list' else 'two'} parameters)"
                         if name in ("list", "map") else f"not a CEL type: {text!r} ({name!r} takes no parameters)")
    if name not in _SIMPLE:
        known = ", ".join(sorted(k for k in _SIMPLE if "." not in k))
        raise ValueError(f"unknown CEL type {name!r} (expected one of {known}, list(T), map(K, V))")
    return _SIMPLE[name], rest
