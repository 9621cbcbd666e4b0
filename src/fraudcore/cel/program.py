"""The ``fraudcore.cel`` entry points: one call per pipeline, ``compile``
chains parse → check → compile, ``Program.evaluate`` runs the result on the
native VM when it can and on the reference interpreter otherwise."""

from __future__ import annotations

from typing import Mapping

from .. import _native
from ..errors import Diagnostic, RuleError
from . import refvm
from .check import check as check_types
from .compile import Bytecode, Layout, compile_expr
from .convert import from_cel, to_cel
from .parse import parse
from .source import Source
from .types import CelType, parse_type
from .values import Err

__all__ = ["Program", "compile", "evaluate", "build"]


class Program:
    """A compiled CEL expression. Immutable; safe to share between threads."""

    __slots__ = ("bytecode", "_native")

    def __init__(self, bytecode: Bytecode):
        self.bytecode = bytecode
        vm = _native.vm
        self._native = vm.NativeProgram(bytecode) if vm is not None and bytecode.native else None

    @property
    def source(self) -> str:
        return self.bytecode.source

    @property
    def native(self) -> bool:
        """True when the native VM runs this program."""
        return self._native is not None

    @property
    def native_blockers(self) -> list[str]:
        """Why the native VM does not run this program (empty when it does)."""
        if self._native is None and not self.bytecode.native_blockers:
            return ["native extension unavailable"]
        return list(self.bytecode.native_blockers)

    @property
    def result_type(self) -> str:
        return str(self.bytecode.result_type)

    def evaluate(self, activation: Mapping[str, object] | None = None) -> object:
        """Evaluate with the variables in ``activation``; raise
        :class:`~fraudcore.cel.EvaluationError` when CEL reports an error."""
        activation = activation or {}
        if self._native is not None:
            ok, value = self._native.evaluate(activation)
            if ok:
                return value
            # The native VM met an error or a value outside its domain: the
            # reference path computes the authoritative result and message.
        return self.evaluate_reference(activation)

    def evaluate_reference(self, activation: Mapping[str, object] | None = None) -> object:
        """Evaluate on the pure-Python reference interpreter."""
        return from_cel(refvm.run(self.bytecode, reference_slots(self.bytecode.layout, activation or {})))

    def __repr__(self) -> str:
        return f"<fraudcore.cel.Program {self.source!r} native={self.native}>"


def reference_slots(layout: Layout, activation: Mapping[str, object]) -> list[object]:
    slots: list[object] = []
    for name in layout.names:
        if name in activation:
            slots.append(to_cel(activation[name]))
        else:
            slots.append(Err(f"no such attribute: {name}"))
    return slots


def build(expr: str, layout: Layout, *, check: bool = True, macros: bool = True) -> Bytecode:
    """parse → check → compile one expression against ``layout``; raise
    RuleError with every problem (positions relative to ``expr``)."""
    source = Source(expr)
    tree = parse(expr, macros=macros)
    checked = check_types(tree, layout.types, source) if check else None
    bc, errors = compile_expr(checked, tree, layout, source)
    if errors:
        raise RuleError(errors)
    return bc


def compile(
    expr: str,
    declarations: Mapping[str, str | CelType] | None = None,
    *,
    check: bool = True,
    macros: bool = True,
) -> Program:
    """Compile ``expr`` with variables declared by CEL type name
    (``{"amount": "double", "tags": "list(string)"}``)."""
    types: dict[str, CelType] = {}
    problems: list[Diagnostic] = []
    for name, t in (declarations or {}).items():
        try:
            types[name] = t if isinstance(t, CelType) else parse_type(t)
        except ValueError as e:
            problems.append(Diagnostic(f"declaration of '{name}': {e}"))
    if problems:
        raise RuleError(problems)
    layout = Layout(types=types)
    for name in types:
        layout.slot(name)
    return Program(build(expr, layout, check=check, macros=macros))


def evaluate(
    expr: str,
    activation: Mapping[str, object] | None = None,
    declarations: Mapping[str, str | CelType] | None = None,
) -> object:
    """Compile and evaluate in one call. Without declarations, variables are
    typed ``dyn`` from ``activation``'s keys."""
    if declarations is None:
        declarations = {name: "dyn" for name in (activation or {})}
    return compile(expr, declarations).evaluate(activation)
