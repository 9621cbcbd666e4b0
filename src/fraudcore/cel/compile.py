"""Stage 3 of the pipeline: checked AST → bytecode.

Names, slots, constants, regexes and constant lists are all resolved here,
once; the evaluators only run. While emitting, the compiler decides from the
checked types whether the native VM can run every instruction; when it
cannot, :attr:`Bytecode.native_blockers` says why, and the program runs on the
reference interpreter instead, never with a silently different answer.
"""

from __future__ import annotations

import re
import sys
import re._parser as _sre_parse  # the stdlib's regex parser: read-only use
from array import array
from dataclasses import dataclass, field

from ..errors import Diagnostic
from . import ast
from .check import TYPE_IDENTIFIERS, Checked, qualified_name
from .functions import Overload, compile_regex
from .opcodes import ARITH_FUNCTIONS, CMP_FUNCTIONS, CMP_OPS, Op, SPECS
from .source import Source
from .types import DYN, CelType
from .values import Err, Type, hashable

__all__ = ["Bytecode", "ConstSet", "compile_expr", "Layout"]

# Static types whose values the native VM holds without Python objects.
NATIVE_SCALARS = frozenset({"int", "uint", "double", "bool", "string", "null_type", "dyn", "error"})
_NUMERIC = frozenset({"int", "uint", "double", "dyn", "error"})
_STRINGY = frozenset({"string", "dyn", "error"})

# Functions compiled to a dedicated opcode: name -> (opcode, receiver style?).
_FUNCTION_OPS: dict[tuple[str, bool, int], Op] = {
    ("!_", False, 1): Op.NOT,
    ("-_", False, 1): Op.NEG,
    ("@not_strictly_false", False, 1): Op.NOT_STRICTLY_FALSE,
    ("_[_]", False, 2): Op.INDEX,
    ("@in", False, 2): Op.IN,
    ("size", False, 1): Op.SIZE,
    ("size", True, 1): Op.SIZE,
    ("startsWith", True, 2): Op.STARTS_WITH,
    ("endsWith", True, 2): Op.ENDS_WITH,
    ("contains", True, 2): Op.CONTAINS,
    ("int", False, 1): Op.TO_INT,
    ("double", False, 1): Op.TO_DOUBLE,
}
_FUNCTION_OPS.update({(f, False, 2): Op[o] for f, o in ARITH_FUNCTIONS.items()})
_FUNCTION_OPS.update({(f, False, 2): Op[o] for f, o in CMP_FUNCTIONS.items()})

# The function each dispatched opcode stands for, for the reference path.
OP_FUNCTIONS: dict[Op, tuple[str, bool]] = {op: (name, recv) for (name, recv, _), op in _FUNCTION_OPS.items()}
OP_FUNCTIONS[Op.SIZE] = ("size", False)

# Operand types under which an opcode stays on the native path.
_NATIVE_OPERANDS: dict[Op, frozenset[str]] = {
    Op.NOT: frozenset({"bool", "dyn", "error"}),
    Op.NEG: _NUMERIC,
    Op.SIZE: _STRINGY,
    Op.STARTS_WITH: _STRINGY,
    Op.ENDS_WITH: _STRINGY,
    Op.CONTAINS: _STRINGY,
    Op.TO_INT: _NUMERIC,
    Op.TO_DOUBLE: _NUMERIC,
    **{Op[o]: _NUMERIC for o in ARITH_FUNCTIONS.values()},
    **{Op[o]: NATIVE_SCALARS for o in CMP_FUNCTIONS.values()},
}


class ConstSet:
    """A constant list used with ``in``: kept as the list (for the reference
    path's exact CEL semantics) and as a hash set (for the native VM)."""

    __slots__ = ("values", "members", "kind")

    def __init__(self, values: list, kind: str):
        self.values = values
        self.kind = kind  # "string" or "int" when homogeneous, else "dyn"
        self.members = frozenset(values) if kind in ("string", "int") else frozenset()

    def __repr__(self) -> str:
        return f"ConstSet({len(self.values)} {self.kind})"


class RegexConst:
    """A constant regex for ``matches``. When the pattern is an alternation
    of plain literals (``(?i)headless|phantomjs``, the common shape in fraud
    rules) the native VM searches for the literals itself instead of calling
    the regex engine; ``literals`` is then set (lower-cased when
    ``ignore_case``)."""

    __slots__ = ("regex", "literals", "ignore_case")

    def __init__(self, regex: re.Pattern[str]):
        self.regex = regex
        self.ignore_case = bool(regex.flags & re.IGNORECASE)
        self.literals = _literal_alternatives(regex, self.ignore_case)

    def search(self, text: str) -> bool:
        return self.regex.search(text) is not None


def _literal_alternatives(regex: re.Pattern[str], ignore_case: bool) -> tuple[str, ...] | None:
    """The literals whose presence is exactly what ``regex.search`` tests,
    or None for any other pattern. Case-insensitive literals must be ASCII:
    the native search folds ASCII only."""
    items = list(_sre_parse.parse(regex.pattern, regex.flags))
    if len(items) == 1 and items[0][0] == _sre_parse.SUBPATTERN:
        _group, add_flags, del_flags, inner = items[0][1]
        if add_flags or del_flags:
            return None
        items = list(inner)
    if len(items) == 1 and items[0][0] == _sre_parse.BRANCH:
        branches = [list(b) for b in items[0][1][1]]
    else:
        branches = [items]
    out = []
    for branch in branches:
        if not branch or any(op != _sre_parse.LITERAL for op, _ in branch):
            return None
        text = "".join(chr(c) for _, c in branch)
        if ignore_case:
            if not text.isascii():
                return None
            text = text.lower()
        out.append(text)
    return tuple(out)


@dataclass(slots=True)
class Layout:
    """The variable slots shared by every program of one environment: slot i
    holds the variable ``names[i]``, of static type ``types[names[i]]``."""

    types: dict[str, CelType]
    names: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    # Variables whose value is fixed at compile time (a rules file's lists).
    constants: dict[str, object] = field(default_factory=dict)
    # Variables that are fields of the map variable ``event`` too (a rules
    # file's fields): ``has(event.f)`` then tests the field's slot.
    event_fields: frozenset[str] = frozenset()

    def slot(self, name: str) -> int:
        i = self.index.get(name)
        if i is None:
            # Interned, so looking a field up in an event dict whose keys are
            # interned too (literals, msgspec/json keys) is a pointer compare.
            name = sys.intern(name)
            i = self.index[name] = len(self.names)
            self.names.append(name)
        return i


@dataclass(slots=True)
class Bytecode:
    source: str
    code: array
    constants: list
    overloads: list[Overload]
    functions: list[tuple[str, bool]]
    layout: Layout
    n_locals: int
    result_type: CelType
    reads: frozenset[str]
    native_blockers: list[str]
    # A necessary condition the rule-set runner can test before running the
    # program: (slot, constant) when the expression is ``slot == "constant"
    # && ...`` (a string field), (slot, True) when it is ``flag && ...``.
    guard: tuple[int, object] | None = None

    @property
    def native(self) -> bool:
        return not self.native_blockers

    def disassemble(self) -> str:
        """One instruction a line, for debugging and ``fraudcore check -v``."""
        out, pc = [], 0
        while pc < len(self.code):
            spec = SPECS[self.code[pc]]
            args = list(self.code[pc + 1 : pc + 1 + spec.nargs])
            out.append(f"{pc:4d} {spec.name:<16} {' '.join(map(str, args))}")
            pc += 1 + spec.nargs
        return "\n".join(out)


def compile_expr(checked: Checked | None, expr: ast.Expr, layout: Layout, source: Source) -> tuple[Bytecode, list[Diagnostic]]:
    """Compile ``expr``. ``checked`` is None when type checking was disabled:
    every type is then ``dyn`` and calls are resolved at run time."""
    c = _Compiler(checked, layout, source)
    c.emit_expr(expr, {})
    c.emit(Op.RETURN)
    c.thread_false_jumps()
    result_type = checked.result_type if checked else DYN
    code = array("i", c.code)
    return (
        Bytecode(
            source=source.text,
            code=code,
            constants=c.constants,
            overloads=c.overloads,
            functions=c.functions,
            layout=layout,
            n_locals=c.n_locals,
            result_type=result_type,
            reads=frozenset(c.reads),
            native_blockers=sorted(set(c.blockers)),
            guard=_guard(checked, expr, layout),
        ),
        c.errors,
    )


def _guard(checked: Checked | None, expr: ast.Expr, layout: Layout) -> tuple[int, object] | None:
    """The leftmost conjunct of an ``&&`` chain, when it is a string field
    compared to a string literal or a bool field alone. If it is false the
    whole expression is false, whatever the other conjuncts (CEL's ``&&``
    absorbs their errors), so a rule set may skip the program; if the field
    is not a string (or bool) the program must run and report it."""
    if checked is None:
        return None
    node = expr
    while isinstance(node, ast.Call) and node.function == "_&&_":
        node = node.args[0]
    if isinstance(node, ast.Ident):
        name = checked.references.get(id(node))
        if name is not None and name not in layout.constants and checked.types[id(node)].kind == "bool":
            return layout.slot(name), True
        return None
    if isinstance(node, ast.Call) and node.function == "_==_" and node.target is None:
        left, right = node.args
        if isinstance(left, ast.Literal):
            left, right = right, left
        name = checked.references.get(id(left)) if isinstance(left, ast.Ident) else None
        if name is not None and name not in layout.constants and isinstance(right, ast.Literal) and right.kind == "string":
            return layout.slot(name), right.value
    return None


class _Compiler:
    def __init__(self, checked: Checked | None, layout: Layout, source: Source):
        self.checked = checked
        self.layout = layout
        self.source = source
        self.code: list[int] = []
        self.last = -1      # where the last instruction emitted starts
        self.label = -1     # the last position a jump was patched to
        self.constants: list = []
        self._const_index: dict[tuple[type, object], int] = {}
        self.overloads: list[Overload] = []
        self.functions: list[tuple[str, bool]] = []
        self.errors: list[Diagnostic] = []
        self.blockers: list[str] = []
        self.reads: set[str] = set()
        self.n_locals = 0

    # -- emission helpers
    def emit(self, op: Op, *args: int) -> int:
        """Append an instruction; return the position of its first operand."""
        if not SPECS[op].native:
            self.blockers.append(f"{op.name.lower().replace('_', ' ')}")
        self.last = len(self.code)
        self.code.append(int(op))
        self.code.extend(args)
        return len(self.code) - len(args)

    def patch(self, at: int) -> None:
        """Point the jump operand at ``at`` to the current position."""
        self.code[at] = len(self.code)
        self.label = len(self.code)

    def thread_false_jumps(self) -> None:
        """A jump taken on false that lands on an AND_SHORT would jump again
        (``a && b && c`` nests as ``(a && b) && c``): point it at the final
        target, so a false conjunct leaves the chain at once."""
        jump_operand = {Op.AND_SHORT: 1, Op.LOAD_CMP_CONST_AND: 4}
        pc = 0
        while pc < len(self.code):
            op = Op(self.code[pc])
            k = jump_operand.get(op)
            if k is not None:
                target = self.code[pc + k]
                while target < len(self.code) and self.code[target] == Op.AND_SHORT:
                    target = self.code[target + 1]
                self.code[pc + k] = target
            pc += 1 + SPECS[op].nargs

    def fuse_and_short(self) -> int:
        """AND_SHORT after the left operand of ``&&``; when that operand was a
        LOAD_CMP_CONST just emitted, and no jump lands between the two, the
        pair becomes one LOAD_CMP_CONST_AND. Returns the jump operand."""
        at = self.last
        if at == len(self.code) - 4 and self.code[at] == Op.LOAD_CMP_CONST and self.label != len(self.code):
            self.code[at] = int(Op.LOAD_CMP_CONST_AND)
            self.code.append(0)
            return len(self.code) - 1
        return self.emit(Op.AND_SHORT, 0)

    def const(self, value: object) -> int:
        key = (type(value), value if hashable(value) else id(value))
        i = self._const_index.get(key)
        if i is None:
            i = self._const_index[key] = len(self.constants)
            self.constants.append(value)
        return i

    def type_of(self, node: ast.Expr) -> CelType:
        return self.checked.types.get(id(node), DYN) if self.checked else DYN

    def block(self, why: str) -> None:
        self.blockers.append(why)

    # -- expressions
    def emit_expr(self, node: ast.Expr, scope: dict[str, int]) -> None:
        if isinstance(node, ast.Literal):
            self.emit_const(node.value, node.kind)
        elif isinstance(node, (ast.Ident, ast.Select)) and self.emit_name(node, scope):
            pass
        elif isinstance(node, ast.Select) and self.emit_has_field(node, scope):
            pass
        elif isinstance(node, ast.Select):
            self.emit_expr(node.operand, scope)
            if self.type_of(node.operand).kind not in ("map", "dyn", "error"):
                self.block("field selection on a non-map value")
            self.emit(Op.HAS if node.test_only else Op.SELECT, self.const(node.field))
        elif isinstance(node, ast.Ident):
            # Unchecked mode: an undeclared name is looked up at run time.
            self.emit_variable(node.name.lstrip("."))
        elif isinstance(node, ast.Call):
            self.emit_call(node, scope)
        elif isinstance(node, ast.CreateList):
            for e in node.elements:
                self.emit_expr(e, scope)
            self.emit(Op.MAKE_LIST, len(node.elements))
        elif isinstance(node, ast.CreateMap):
            for k, v in node.entries:
                self.emit_expr(k, scope)
                self.emit_expr(v, scope)
            self.emit(Op.MAKE_MAP, len(node.entries))
        elif isinstance(node, ast.CreateStruct):
            self.emit(Op.ERROR, self.const(Err(f"message construction is not supported: {node.type_name}")))
        elif isinstance(node, ast.Comprehension):
            self.emit_comprehension(node, scope)
        else:  # pragma: no cover - parser bug
            raise TypeError(f"not a CEL AST node: {node!r}")

    def emit_has_field(self, node: ast.Select, scope: dict[str, int]) -> bool:
        """``has(event.f)`` for a declared field f: whether its slot was
        loaded, so the event map itself need not be."""
        if not node.test_only or node.field not in self.layout.event_fields:
            return False
        operand = node.operand
        if not isinstance(operand, ast.Ident) or operand.name in scope:
            return False
        name = self.checked.references.get(id(operand)) if self.checked else operand.name
        if name != "event":
            return False
        self.reads.add(node.field)
        self.emit(Op.HAS_FIELD, self.layout.slot(node.field), self.const(node.field))
        return True

    def emit_const(self, value: object, kind: str) -> None:
        if kind not in NATIVE_SCALARS:
            self.block(f"{kind} constant")
        self.emit(Op.CONST, self.const(value))

    def emit_name(self, node: ast.Ident | ast.Select, scope: dict[str, int]) -> bool:
        """Emit a local, a declared variable or a type name; False if ``node``
        is none of these (a field selection on a value)."""
        if isinstance(node, ast.Ident) and node.name in scope:
            self.block("comprehension variable")
            self.emit(Op.LOAD, scope[node.name])
            return True
        checked = self.checked
        if checked is not None:
            name = checked.references.get(id(node))
            if name is not None:
                self.emit_variable(name)
                return True
            tname = checked.type_names.get(id(node))
            if tname is not None:
                self.emit_const(Type(tname), "type")
                return True
            return False
        name = qualified_name(node)
        if name is None or name.split(".")[0] in scope:
            return False
        name = name.lstrip(".")
        # ``dyn`` denotes no runtime type: unchecked, it is an unknown variable.
        runtime_type = name in TYPE_IDENTIFIERS and name != "dyn"
        if name in self.layout.types or (isinstance(node, ast.Ident) and not runtime_type):
            self.emit_variable(name)
            return True
        if runtime_type:
            self.emit_const(Type(name), "type")
            return True
        return False

    def emit_variable(self, name: str) -> None:
        if name in self.layout.constants:
            value = self.layout.constants[name]
            kind = self.layout.types[name].kind
            self.emit_const(value, kind)
            return
        self.reads.add(name)
        t = self.layout.types.get(name, DYN)
        if t.kind not in NATIVE_SCALARS and not (name == "event" and t.kind == "map"):
            self.block(f"variable of type {t}")
        self.emit(Op.LOAD, self.layout.slot(name))

    def emit_call(self, node: ast.Call, scope: dict[str, int]) -> None:
        fn, args = node.function, list(node.args)
        if node.target is not None:
            args.insert(0, node.target)
        if fn in ("_&&_", "_||_"):
            short, combine = (Op.AND_SHORT, Op.AND) if fn == "_&&_" else (Op.OR_SHORT, Op.OR)
            self.emit_expr(args[0], scope)
            jump = self.fuse_and_short() if short == Op.AND_SHORT else self.emit(short, 0)
            self.emit_expr(args[1], scope)
            self.emit(combine)
            self.patch(jump)
            return
        if fn == "_?_:_":
            self.emit_expr(args[0], scope)
            at = self.emit(Op.COND, 0, 0)
            self.emit_expr(args[1], scope)
            end = self.emit(Op.JUMP, 0)
            self.patch(at)
            self.emit_expr(args[2], scope)
            self.patch(end)
            self.patch(at + 1)
            return
        if fn in CMP_FUNCTIONS and self.emit_compare_const(node, args, scope):
            return
        if fn == "@in" and self.emit_in_const(args, scope):
            return
        if fn == "matches" and len(args) == 2 and isinstance(args[1], ast.Literal) and args[1].kind == "string":
            try:
                regex = compile_regex(args[1].value)
            except ValueError as e:
                self.errors.append(self.source.diagnostic(args[1].pos, str(e)))
                regex = None
            self.emit_expr(args[0], scope)
            self.require(Op.MATCHES_CONST, [args[0]], _STRINGY)
            self.emit(Op.MATCHES_CONST, self.const(RegexConst(regex) if regex is not None else Err("invalid regular expression")))
            return
        for a in args:
            self.emit_expr(a, scope)
        op = _FUNCTION_OPS.get((fn, node.target is not None, len(args)))
        if op is not None:
            self.require(op, args, _NATIVE_OPERANDS.get(op))
            self.emit(op)
            return
        candidates = self.checked.calls.get(id(node), []) if self.checked else []
        if len(candidates) == 1:
            self.overloads.append(candidates[0])
            self.emit(Op.CALL, len(self.overloads) - 1, len(args))
        else:
            self.functions.append((fn, node.target is not None))
            self.emit(Op.DISPATCH, len(self.functions) - 1, len(args))

    def require(self, op: Op, args: list[ast.Expr], kinds: frozenset[str] | None) -> None:
        """Block the native path unless every operand's static type is in ``kinds``."""
        if kinds is None:
            return
        for a in args:
            t = self.type_of(a)
            if t.kind not in kinds:
                self.block(f"{op.name.lower()} on {t}")

    def emit_compare_const(self, node: ast.Call, args: list[ast.Expr], scope: dict[str, int]) -> bool:
        """``x <op> literal`` (or ``literal <op> x``) as one superinstruction."""
        cmp = CMP_FUNCTIONS[node.function]
        left, right = args
        if isinstance(left, ast.Literal) and not isinstance(right, ast.Literal):
            left, right = right, left
            cmp = {"LT": "GT", "LE": "GE", "GT": "LT", "GE": "LE"}.get(cmp, cmp)
        if not isinstance(right, ast.Literal) or right.kind not in NATIVE_SCALARS:
            return False
        self.require(Op[cmp], [left], NATIVE_SCALARS)
        k = self.const(right.value)
        if isinstance(left, ast.Ident) and left.name not in scope and self._plain_variable(left):
            name = self.checked.references[id(left)] if self.checked else left.name.lstrip(".")
            if name not in self.layout.constants:
                self.emit_variable(name)
                # Fuse the LOAD just emitted with the comparison.
                slot = self.code.pop()
                self.code.pop()
                self.emit(Op.LOAD_CMP_CONST, slot, CMP_OPS.index(cmp), k)
                return True
        self.emit_expr(left, scope)
        self.emit(Op.CMP_CONST, CMP_OPS.index(cmp), k)
        return True

    def _plain_variable(self, node: ast.Ident) -> bool:
        if self.checked is not None:
            return id(node) in self.checked.references
        return node.name.lstrip(".") not in TYPE_IDENTIFIERS or node.name in self.layout.types

    def emit_in_const(self, args: list[ast.Expr], scope: dict[str, int]) -> bool:
        """``x in [constants]`` and ``x in declared_list`` as a hash-set probe."""
        needle, haystack = args
        values: list | None = None
        if isinstance(haystack, ast.CreateList) and all(isinstance(e, ast.Literal) for e in haystack.elements):
            values = [e.value for e in haystack.elements]  # type: ignore[union-attr]
        elif isinstance(haystack, ast.Ident):
            name = self.checked.references.get(id(haystack)) if self.checked else haystack.name
            if name is not None and name not in scope and name in self.layout.constants:
                values = list(self.layout.constants[name])  # type: ignore[arg-type]
        if values is None:
            return False
        kinds = {type(v) for v in values}
        kind = "string" if kinds == {str} else "int" if kinds == {int} else "dyn"
        self.emit_expr(needle, scope)
        needle_type = self.type_of(needle).kind
        if kind == "dyn" or needle_type not in (kind, "dyn", "error"):
            self.block(f"'in' on a list of {kind} with a {needle_type}")
        self.emit(Op.IN_SET, self.const(ConstSet(values, kind)))
        return True

    def emit_comprehension(self, node: ast.Comprehension, scope: dict[str, int]) -> None:
        accu = self._local()
        it = self._local()
        inner = {**scope, node.accu_var: accu, node.iter_var: it}
        self.emit_expr(node.accu_init, scope)
        self.emit(Op.STORE, accu)
        self.emit_expr(node.iter_range, scope)
        bad_range = self.emit(Op.ITER_INIT, 0)
        loop = len(self.code)
        done = self.emit(Op.ITER_NEXT, 0, it)
        self.emit_expr(node.loop_condition, inner)
        brk = self.emit(Op.JUMP_IF_FALSE, 0)
        self.emit_expr(node.loop_step, inner)
        self.emit(Op.STORE, accu)
        self.emit(Op.JUMP, loop)
        self.patch(brk)
        self.emit(Op.POP)
        self.patch(done)
        self.emit_expr(node.result, inner)
        self.patch(bad_range)

    def _local(self) -> int:
        # Locals get negative slot numbers (local k is -k-1): the layout's
        # variable slots keep growing while a rules file compiles, so locals
        # live in an array of their own.
        self.n_locals += 1
        return -self.n_locals

