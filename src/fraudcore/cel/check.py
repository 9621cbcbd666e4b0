"""Stage 2 of the pipeline: the type checker.

``check(expr, declarations)`` resolves every identifier against the declared
variables (qualified names such as ``a.b.c`` included), resolves every call
against the standard library's overloads, and infers a type for every node.
Where a type cannot be known statically it is ``dyn`` and the interpreter
decides at run time. All problems are collected and raised together.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Diagnostic, RuleError
from . import ast
from .functions import Overload, overloads
from .source import Source
from .types import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    ERROR,
    INT,
    NULL,
    STRING,
    TIMESTAMP,
    TYPE,
    UINT,
    CelType,
    list_of,
    map_of,
    type_of_type,
)

__all__ = ["Checked", "check", "TYPE_IDENTIFIERS"]

# Identifiers that denote type values (``type(x) == int``).
TYPE_IDENTIFIERS: dict[str, CelType] = {
    "int": INT,
    "uint": UINT,
    "double": DOUBLE,
    "bool": BOOL,
    "string": STRING,
    "bytes": BYTES,
    "null_type": NULL,
    "list": list_of(DYN),
    "map": map_of(DYN, DYN),
    "type": TYPE,
    "dyn": DYN,
    "google.protobuf.Timestamp": TIMESTAMP,
    "google.protobuf.Duration": DURATION,
}

_LITERAL_TYPES = {
    "int": INT,
    "uint": UINT,
    "double": DOUBLE,
    "string": STRING,
    "bytes": BYTES,
    "bool": BOOL,
    "null_type": NULL,
}


@dataclass(slots=True)
class Checked:
    """What the checker learnt about an expression, keyed by ``id(node)``."""

    expr: ast.Expr
    types: dict[int, CelType] = field(default_factory=dict)
    # Ident or Select chain resolved to a declared variable name.
    references: dict[int, str] = field(default_factory=dict)
    # Ident or Select chain that names a type (``int``, ``google.protobuf.Duration``).
    type_names: dict[int, str] = field(default_factory=dict)
    # Call -> the overloads that may apply (one when resolved statically).
    calls: dict[int, list[Overload]] = field(default_factory=dict)

    @property
    def result_type(self) -> CelType:
        return self.types[id(self.expr)]


def check(expr: ast.Expr, declarations: dict[str, CelType], source: Source) -> Checked:
    checker = _Checker(declarations, source)
    checker.visit(expr, {})
    if checker.errors:
        raise RuleError(checker.errors)
    checker.result.expr = expr
    return checker.result


def qualified_name(node: ast.Expr) -> str | None:
    """``a.b.c`` for a chain of plain Selects ending in an Ident, else None."""
    parts = []
    while isinstance(node, ast.Select) and not node.test_only:
        parts.append(node.field)
        node = node.operand
    if not isinstance(node, ast.Ident):
        return None
    parts.append(node.name)
    return ".".join(reversed(parts))


def _free(t: CelType, subst: dict[str, CelType]) -> CelType:
    """Substitute bound type parameters; unbound ones become dyn."""
    if t.kind == "param":
        bound = subst.get(t.params[0].kind)
        return _free(bound, subst) if bound is not None else DYN
    if t.params:
        return CelType(t.kind, tuple(_free(p, subst) for p in t.params))
    return t


def _assignable(param: CelType, arg: CelType, subst: dict[str, CelType]) -> bool:
    """Can a value of static type ``arg`` be passed where ``param`` is expected?
    Binds type parameters in ``subst`` as a side effect."""
    if param.kind == "param":
        name = param.params[0].kind
        bound = subst.get(name)
        if bound is None or bound.is_dyn:
            subst[name] = arg
            return True
        if arg.is_dyn:
            return True
        return _assignable(bound, arg, subst) or _assignable(arg, bound, {})
    if arg.is_dyn or param.is_dyn:
        return True
    if param.kind == "type" and arg.kind == "type":
        return True  # type values compare whatever type they denote
    if param.kind != arg.kind or len(param.params) != len(arg.params):
        return False
    return all(_assignable(p, a, subst) for p, a in zip(param.params, arg.params))


def join(a: CelType, b: CelType) -> CelType:
    """The most specific type that holds values of both ``a`` and ``b``."""
    if a == b:
        return a
    if a.kind == b.kind and a.params and len(a.params) == len(b.params):
        return CelType(a.kind, tuple(join(x, y) for x, y in zip(a.params, b.params)))
    return DYN


class _Checker:
    def __init__(self, declarations: dict[str, CelType], source: Source):
        self.decls = declarations
        self.source = source
        self.errors: list[Diagnostic] = []
        self.result = Checked(expr=None)  # type: ignore[arg-type]

    def error(self, node: ast.Expr, message: str) -> CelType:
        self.errors.append(self.source.diagnostic(node.pos, message))
        return ERROR

    def visit(self, node: ast.Expr, scope: dict[str, CelType]) -> CelType:
        t = self._visit(node, scope)
        self.result.types[id(node)] = t
        return t

    def _visit(self, node: ast.Expr, scope: dict[str, CelType]) -> CelType:
        if isinstance(node, ast.Literal):
            return _LITERAL_TYPES[node.kind]
        if isinstance(node, ast.Ident):
            return self._ident(node, node.name, scope)
        if isinstance(node, ast.Select):
            return self._select(node, scope)
        if isinstance(node, ast.Call):
            return self._call(node, scope)
        if isinstance(node, ast.CreateList):
            elem: CelType | None = None
            for e in node.elements:
                t = self.visit(e, scope)
                elem = t if elem is None else join(elem, t)
            return list_of(elem or DYN)
        if isinstance(node, ast.CreateMap):
            key: CelType | None = None
            val: CelType | None = None
            for k, v in node.entries:
                kt, vt = self.visit(k, scope), self.visit(v, scope)
                if kt.kind not in ("int", "uint", "string", "bool", "dyn", "error"):
                    self.error(k, f"unsupported map key type: {kt}")
                key = kt if key is None else join(key, kt)
                val = vt if val is None else join(val, vt)
            return map_of(key or DYN, val or DYN)
        if isinstance(node, ast.CreateStruct):
            for _, v in node.fields:
                self.visit(v, scope)
            return self.error(node, f"message construction is not supported: {node.type_name!r} is not a known type")
        if isinstance(node, ast.Comprehension):
            return self._comprehension(node, scope)
        raise TypeError(f"not a CEL AST node: {node!r}")  # pragma: no cover - parser bug

    def _ident(self, node: ast.Expr, name: str, scope: dict[str, CelType]) -> CelType:
        if name in scope:
            return scope[name]
        name = name.lstrip(".")
        if name in self.decls:
            self.result.references[id(node)] = name
            return self.decls[name]
        if name in TYPE_IDENTIFIERS:
            self.result.type_names[id(node)] = name
            return type_of_type(TYPE_IDENTIFIERS[name])
        return self.error(node, f"undeclared reference to '{name}'")

    def _select(self, node: ast.Select, scope: dict[str, CelType]) -> CelType:
        # A qualified name (``a.b.c``) may be a declared variable or a type.
        name = qualified_name(node)
        if name is not None and name.split(".")[0] not in scope:
            bare = name.lstrip(".")
            if bare in self.decls or bare in TYPE_IDENTIFIERS:
                return self._ident(node, bare, scope)
        operand = self.visit(node.operand, scope)
        if operand.kind == "map":
            if operand.params[0].kind not in ("string", "dyn"):
                return self.error(node, f"field selection '.{node.field}' needs a map with string keys, not {operand}")
            result = operand.params[1]
        elif operand.is_dyn:
            result = DYN
        else:
            return self.error(node, f"type '{operand}' does not support field selection ('.{node.field}')")
        return BOOL if node.test_only else result

    def _comprehension(self, node: ast.Comprehension, scope: dict[str, CelType]) -> CelType:
        rng = self.visit(node.iter_range, scope)
        if rng.kind == "list":
            var = rng.params[0]
        elif rng.kind == "map":
            var = rng.params[0]
        elif rng.is_dyn:
            var = DYN
        else:
            self.error(node.iter_range, f"expression of type '{rng}' cannot be the range of a comprehension (expected a list or map)")
            var = DYN
        accu = self.visit(node.accu_init, scope)
        inner = {**scope, node.iter_var: var, node.accu_var: accu}
        self.visit(node.loop_condition, inner)
        step = self.visit(node.loop_step, inner)
        accu = join(accu, step) if not (accu.kind == "list" and accu.params[0].is_dyn) else step
        inner[node.accu_var] = accu
        # Re-type the result with the accumulator's final type.
        return self.visit(node.result, inner)

    def _call(self, node: ast.Call, scope: dict[str, CelType]) -> CelType:
        # A receiver call on a qualified name may really be a namespaced
        # function; fraudcore has none, so the target is always a value.
        args = [self.visit(a, scope) for a in node.args]
        receiver = node.target is not None
        if receiver:
            args.insert(0, self.visit(node.target, scope))  # type: ignore[arg-type]
        if any(a.kind == "error" for a in args):
            return ERROR
        candidates = [o for o in overloads(node.function) if o.receiver == receiver and len(o.params) == len(args)]
        if not overloads(node.function):
            return self.error(node, f"undeclared reference to '{node.function}' (unknown function)")
        matched: list[tuple[Overload, CelType]] = []
        for ov in candidates:
            subst: dict[str, CelType] = {}
            if all(_assignable(p, a, subst) for p, a in zip(ov.params, args)):
                matched.append((ov, _free(ov.result, subst)))
        if not matched:
            shown = ", ".join(str(a) for a in args)
            spelled = ast.OPERATORS.get(node.function, node.function)
            return self.error(node, f"found no matching overload for '{spelled}' applied to '({shown})'")
        self.result.calls[id(node)] = [ov for ov, _ in matched]
        result = matched[0][1]
        for _, t in matched[1:]:
            result = join(result, t)
        return result
