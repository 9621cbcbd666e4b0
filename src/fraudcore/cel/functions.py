"""The CEL standard library: every function overload, its signature and its
reference implementation, in one table.

The checker resolves calls against the signatures; the compiler turns a
resolved overload into a native opcode where the VM has one
(:mod:`fraudcore.cel.opcodes`); the reference interpreter calls ``impl``.

An implementation takes CEL runtime values (see :mod:`fraudcore.cel.values`)
and returns one, or raises :class:`~fraudcore.cel.values.CelFault` with the
message of CEL's error value (overflow, division by zero, bad conversion...).
For receiver-style overloads (``s.startsWith(p)``) the receiver is the first
argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .types import CelType

__all__ = ["Overload", "FUNCTIONS", "overloads"]


@dataclass(frozen=True, slots=True)
class Overload:
    id: str  # unique, cel-go style: "add_int64", "starts_with_string"
    function: str  # "_+_", "startsWith", "size"
    params: tuple[CelType, ...]  # receiver first when receiver=True
    result: CelType
    impl: Callable[..., object]
    receiver: bool = False


# function name -> its overloads, filled below.
FUNCTIONS: dict[str, list[Overload]] = {}


def overloads(function: str) -> list[Overload]:
    return FUNCTIONS.get(function, [])
