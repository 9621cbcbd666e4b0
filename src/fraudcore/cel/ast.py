"""The CEL abstract syntax tree, as produced by :mod:`fraudcore.cel.parse`.

It follows cel-go's shape: every operator is a :class:`Call` of a function
with a reserved name (``_+_``, ``_&&_``, ``!_``, ``_?_:_``, ``_[_]``,
``@in``...), so the checker resolves operators and functions the same way,
and the macros (``all``, ``exists``, ``map``...) are already expanded into
:class:`Comprehension` nodes. ``has(a.b)`` is a :class:`Select` with
``test_only`` set.

Every node carries ``pos``, the 0-based offset of its first character in the
expression source, used to point errors at the right column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

__all__ = [
    "Call",
    "Comprehension",
    "CreateList",
    "CreateMap",
    "CreateStruct",
    "Expr",
    "Ident",
    "Literal",
    "Select",
    "ACCU_VAR",
    "OPERATORS",
    "walk",
]

# The accumulator variable of expanded macros; not a valid identifier, so
# user code can never shadow or read it.
ACCU_VAR = "@result"

# Reserved function names of the operators, with their source spelling.
OPERATORS = {
    "_?_:_": "?:",
    "_||_": "||",
    "_&&_": "&&",
    "_==_": "==",
    "_!=_": "!=",
    "_<_": "<",
    "_<=_": "<=",
    "_>_": ">",
    "_>=_": ">=",
    "@in": "in",
    "_+_": "+",
    "_-_": "-",
    "_*_": "*",
    "_/_": "/",
    "_%_": "%",
    "!_": "!",
    "-_": "-",
    "_[_]": "[]",
    "@not_strictly_false": "not_strictly_false",
}


@dataclass(slots=True, eq=False)
class Literal:
    """A constant. ``kind`` is the CEL type name of the value:
    int, uint, double, string, bytes, bool or null_type."""

    value: object
    kind: str
    pos: int = 0


@dataclass(slots=True, eq=False)
class Ident:
    """A variable reference (possibly qualified: ``a.b.c`` stays a chain of
    Selects until the checker resolves it)."""

    name: str
    pos: int = 0


@dataclass(slots=True, eq=False)
class Select:
    """``operand.field``; with ``test_only`` it is ``has(operand.field)``."""

    operand: "Expr"
    field: str
    test_only: bool = False
    pos: int = 0


@dataclass(slots=True, eq=False)
class Call:
    """A function call. ``target`` is the receiver of ``x.f(...)`` calls."""

    function: str
    args: list["Expr"]
    target: "Expr | None" = None
    pos: int = 0


@dataclass(slots=True, eq=False)
class CreateList:
    elements: list["Expr"]
    pos: int = 0


@dataclass(slots=True, eq=False)
class CreateMap:
    entries: list[tuple["Expr", "Expr"]]
    pos: int = 0


@dataclass(slots=True, eq=False)
class CreateStruct:
    """``Name{field: value}``: a protobuf message literal. Parsed so that the
    error can say so precisely; fraudcore has no message types."""

    type_name: str
    fields: list[tuple[str, "Expr"]]
    pos: int = 0


@dataclass(slots=True, eq=False)
class Comprehension:
    """The expansion of a macro, with cel-go's semantics::

        accu = accu_init
        for iter_var in iter_range:
            if not loop_condition: break
            accu = loop_step
        return result
    """

    iter_var: str
    iter_range: "Expr"
    accu_var: str
    accu_init: "Expr"
    loop_condition: "Expr"
    loop_step: "Expr"
    result: "Expr"
    pos: int = 0


Expr = Union[Literal, Ident, Select, Call, CreateList, CreateMap, CreateStruct, Comprehension]


def walk(node: Expr):
    """Yield ``node`` and all its descendants, parents first."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, Select):
            stack.append(n.operand)
        elif isinstance(n, Call):
            stack.extend(reversed(n.args))
            if n.target is not None:
                stack.append(n.target)
        elif isinstance(n, CreateList):
            stack.extend(reversed(n.elements))
        elif isinstance(n, CreateMap):
            for k, v in reversed(n.entries):
                stack.extend((v, k))
        elif isinstance(n, CreateStruct):
            stack.extend(v for _, v in reversed(n.fields))
        elif isinstance(n, Comprehension):
            stack.extend((n.result, n.loop_step, n.loop_condition, n.accu_init, n.iter_range))

