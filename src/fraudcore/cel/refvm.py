"""The reference interpreter: the executable specification of fraudcore's CEL.

It runs the same bytecode as the native VM, one opcode at a time, on plain
Python values (:mod:`fraudcore.cel.values`), and delegates every operator and
function to the standard library table (:mod:`fraudcore.cel.functions`), so
its semantics are exactly those of that table. It favours being obviously
right over being fast; the native VM must agree with it on every program.

Errors are values (:class:`Err`): an operator given an error returns it, and
only ``&&``, ``||``, ``?:`` and the macros' loop conditions absorb them.
"""

from __future__ import annotations

from typing import Sequence

from .compile import OP_FUNCTIONS, Bytecode, ConstSet
from .functions import Overload, cel_equals, matches_type, resolve
from .opcodes import CMP_OPS, Op, SPECS
from .values import CelFault, CelMap, Err, Missing, type_name

__all__ = ["run"]

_CMP_FUNCTION = {"EQ": "_==_", "NE": "_!=_", "LT": "_<_", "LE": "_<=_", "GT": "_>_", "GE": "_>=_"}
_NARGS = [s.nargs for s in SPECS]


def run(bc: Bytecode, slots: Sequence[object]) -> object:
    """Run ``bc`` over variable ``slots`` (indexed by the layout); return the
    result, an :class:`Err` when evaluation failed."""
    code, consts = bc.code, bc.constants
    local: list[object] = [None] * bc.n_locals
    stack: list[object] = []
    push, pop = stack.append, stack.pop
    pc = 0
    while True:
        op = code[pc]
        a = code[pc + 1] if _NARGS[op] > 0 else 0
        nxt = pc + 1 + _NARGS[op]
        if op == Op.CONST:
            push(consts[a])
        elif op == Op.LOAD:
            push(slots[a] if a >= 0 else local[-a - 1])
        elif op == Op.STORE:
            local[-a - 1] = pop()
        elif op == Op.POP:
            pop()
        elif op == Op.JUMP:
            nxt = a
        elif op == Op.AND_SHORT:
            if stack[-1] is False:
                nxt = a
        elif op == Op.OR_SHORT:
            if stack[-1] is True:
                nxt = a
        elif op == Op.AND or op == Op.OR:
            b, x = pop(), pop()
            push(_logic(x, b, op == Op.AND))
        elif op == Op.COND:
            c = pop()
            if c is False:
                nxt = a
            elif c is not True:
                push(c if isinstance(c, Err) else _no_overload("_?_:_", c))
                nxt = code[pc + 2]
        elif op == Op.NOT_STRICTLY_FALSE:
            push(pop() is not False)
        elif op == Op.ITER_INIT:
            rng = pop()
            if isinstance(rng, list):
                push(iter(rng))
            elif isinstance(rng, CelMap):
                push(iter(rng.keys()))
            else:
                push(rng if isinstance(rng, Err) else Err(f"expression of type '{type_name(rng)}' cannot be iterated"))
                nxt = a
        elif op == Op.ITER_NEXT:
            try:
                local[-code[pc + 2] - 1] = next(stack[-1])  # type: ignore[call-overload]
            except StopIteration:
                pop()
                nxt = a
        elif op == Op.JUMP_IF_FALSE:
            if pop() is not True:
                nxt = a
        elif op == Op.CMP_CONST:
            v = pop()
            push(_call(_CMP_FUNCTION[CMP_OPS[a]], False, [v, consts[code[pc + 2]]]))
        elif op == Op.LOAD_CMP_CONST or op == Op.LOAD_CMP_CONST_AND:
            push(_call(_CMP_FUNCTION[CMP_OPS[code[pc + 2]]], False, [slots[a], consts[code[pc + 3]]]))
            if op == Op.LOAD_CMP_CONST_AND and stack[-1] is False:
                nxt = code[pc + 4]
        elif op == Op.IN_SET:
            push(_in_set(pop(), consts[a]))
        elif op == Op.MATCHES_CONST:
            s, regex = pop(), consts[a]
            if isinstance(s, Err):
                push(s)
            elif isinstance(regex, Err):
                push(regex)
            elif type(s) is not str:
                push(_no_overload("matches", s))
            else:
                push(regex.search(s))
        elif op == Op.CALL:
            args = _pop_args(stack, code[pc + 2])
            push(_apply(bc.overloads[a], args))
        elif op == Op.DISPATCH:
            fn, receiver = bc.functions[a]
            push(_call(fn, receiver, _pop_args(stack, code[pc + 2])))
        elif op == Op.HAS_FIELD:
            push(not isinstance(slots[a], Missing))
        elif op == Op.SELECT or op == Op.HAS:
            push(_select(pop(), consts[a], op == Op.HAS))
        elif op == Op.MAKE_LIST:
            items = _pop_args(stack, a)
            err = _first_error(items)
            push(err if err is not None else items)
        elif op == Op.MAKE_MAP:
            flat = _pop_args(stack, 2 * a)
            err = _first_error(flat)
            if err is not None:
                push(err)
            else:
                try:
                    push(CelMap.from_pairs(zip(flat[0::2], flat[1::2])))
                except ValueError as e:
                    push(Err(str(e)))
        elif op == Op.ERROR:
            push(consts[a])
        elif op == Op.RETURN:
            return pop()
        else:
            fn, receiver = OP_FUNCTIONS[Op(op)]
            n = 2 if op in _BINARY else 1
            push(_call(fn, receiver, _pop_args(stack, n)))
        pc = nxt


_BINARY = frozenset(
    {Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.MOD, Op.EQ, Op.NE, Op.LT, Op.LE, Op.GT, Op.GE}
    | {Op.IN, Op.INDEX, Op.STARTS_WITH, Op.ENDS_WITH, Op.CONTAINS}
)


def _pop_args(stack: list[object], n: int) -> list[object]:
    if n == 0:
        return []
    args = stack[-n:]
    del stack[-n:]
    return args


def _first_error(values: list[object]) -> Err | None:
    for v in values:
        if isinstance(v, Err):
            return v
    return None


def _logic(a: object, b: object, is_and: bool) -> object:
    """CEL's commutative ``&&``/``||``: the absorbing value wins over errors."""
    absorbing = not is_and
    if a is absorbing or b is absorbing:
        return absorbing
    for v in (a, b):
        if isinstance(v, Err):
            return v
        if type(v) is not bool:
            return _no_overload("_&&_" if is_and else "_||_", v)
    return not absorbing


def _no_overload(fn: str, *args: object) -> Err:
    shown = ", ".join(type_name(a) for a in args)
    return Err(f"no such overload: {fn}({shown})")


def _apply(ov: Overload, args: list[object]) -> object:
    err = _first_error(args)
    if err is not None:
        return err
    if not all(matches_type(a, p) for a, p in zip(args, ov.params)):
        # The checker resolved the call on declared types; the values given
        # at run time disagree, so resolve again on what they are.
        return _call(ov.function, ov.receiver, args)
    try:
        return ov.impl(*args)
    except CelFault as e:
        return Err(str(e))


def _call(fn: str, receiver: bool, args: list[object]) -> object:
    err = _first_error(args)
    if err is not None:
        return err
    ov = resolve(fn, args, receiver)
    if ov is None:
        return _no_overload(fn, *args)
    return _apply(ov, args)


def _in_set(v: object, s: ConstSet) -> object:
    if isinstance(v, Err):
        return v
    return any(cel_equals(v, x) for x in s.values)


def _select(operand: object, field: str, test_only: bool) -> object:
    if isinstance(operand, Err):
        return operand
    if not isinstance(operand, CelMap):
        return Err(f"type '{type_name(operand)}' does not support field selection")
    if test_only:
        return field in operand
    value = operand.get(field, _MISSING)
    return Err(f"no such key: {field}") if value is _MISSING else value


_MISSING = object()
