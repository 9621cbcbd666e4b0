"""The native VM against the reference interpreter, on generated programs.

The reference interpreter (fraudcore/cel/refvm.py) is the spec: for every
well-typed expression and every activation, the native VM must return the
same value (type included: ``1`` is not ``1.0`` nor ``1u``), or decline
(``(False, None)``: an error or a value outside its domain), in which case
``Program.evaluate`` must give exactly the reference result, error message
included. Strategies live in strategies.py beside this file.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import fraudcore.cel as cel
from fraudcore import _native
from fraudcore.cel.values import INT64_MAX, INT64_MIN, UINT64_MAX, UInt

from .strategies import DECLARATIONS, activations, numeric_comparisons, typed_expressions

pytestmark = pytest.mark.skipif(_native.vm is None, reason=f"native VM not built: {_native.IMPORT_ERROR}")

# The main property runs 1.5x the profile's count (300 with the ci profile).
EXAMPLES = settings.default.max_examples * 3 // 2


def outcome(evaluate, activation: dict) -> tuple:
    """('value', v) or ('error', message): the result of one evaluation."""
    try:
        return ("value", evaluate(activation))
    except cel.EvaluationError as e:
        return ("error", str(e))


def same_value(a: object, b: object) -> bool:
    """Exact equality: same Python type (bool ≠ int ≠ float, UInt ≠ int),
    NaN equal to NaN, and -0.0 distinct from 0.0."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return a == b


def same_outcome(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and (same_value(a[1], b[1]) if a[0] == "value" else a[1] == b[1])


def compile_checked(expr: str, static_type: str) -> cel.Program:
    """Compile generated text; a compile error is a bug of the generator."""
    prog = cel.compile(expr, DECLARATIONS)
    assert prog.result_type in (static_type, "dyn"), f"{expr}: generated as {static_type}, checked {prog.result_type}"
    return prog


def assert_agree(prog: cel.Program, activation: dict) -> None:
    ref = outcome(prog.evaluate_reference, activation)
    if prog.native:
        ok, value = prog._native.evaluate(activation)
        if ok:
            assert same_outcome(("value", value), ref), f"native {value!r}, reference {ref!r}"
    public = outcome(prog.evaluate, activation)
    assert same_outcome(public, ref), f"evaluate {public!r}, reference {ref!r}"


NAN = math.nan


@settings(max_examples=EXAMPLES)
@given(typed=typed_expressions(), activation=activations())
# Overflow at the int64 edges, by constant and through variables.
@example(typed=("int", "9223372036854775807 + count"), activation={"count": 1})
@example(typed=("int", "count / age"), activation={"count": INT64_MIN, "age": -1})
@example(typed=("int", "count % age"), activation={"count": INT64_MIN, "age": -1})
@example(typed=("int", "-count"), activation={"count": INT64_MIN})
@example(typed=("uint", "big - 1u"), activation={"big": UInt(0)})
@example(typed=("uint", "big * 2u"), activation={"big": UInt(UINT64_MAX)})
# NaN, infinities and exact comparison of int64 against double.
@example(typed=("bool", "amount < fee || amount >= fee"), activation={"amount": NAN, "fee": 1.0})
@example(typed=("bool", "amount == amount"), activation={"amount": NAN})
@example(typed=("bool", "amount != amount"), activation={"amount": NAN})
@example(typed=("bool", "count < amount"), activation={"count": 2**53 + 1, "amount": 2.0**53})
@example(typed=("bool", "count >= amount"), activation={"count": INT64_MAX, "amount": 2.0**63})
@example(typed=("bool", "big > count"), activation={"big": UInt(2**63), "count": INT64_MAX})
@example(typed=("int", "int(amount)"), activation={"amount": 2.0**63})
@example(typed=("int", "int(amount)"), activation={"amount": -(2.0**63)})
@example(typed=("int", "int(amount)"), activation={"amount": NAN})
@example(typed=("int", "int(big)"), activation={"big": UInt(2**63)})
@example(typed=("double", "double(big)"), activation={"big": UInt(UINT64_MAX)})
@example(typed=("double", "amount / 0.0"), activation={"amount": -0.0})
@example(typed=("double", "-amount"), activation={"amount": 0.0})
# Strings: code-point order beyond the BMP, interned constants, regexes.
@example(typed=("bool", "type < country"), activation={"type": "\uffff", "country": "😀"})
@example(typed=("bool", 'type == "é"'), activation={"type": "é"})
@example(typed=("bool", 'type in ["a", "日本"] && type != "a"'), activation={"type": "日本"})
@example(typed=("int", "size(type)"), activation={"type": "a😀"})
@example(typed=("bool", 'device.matches("^.$")'), activation={"device": "😀"})
# The event map: missing keys, runtime types, heterogeneous numeric equality.
@example(typed=("bool", "event.amount in [1, 2]"), activation={"event": {"amount": 1.0}})
@example(typed=("bool", "has(event.amount) && event.amount > 10.0"), activation={"event": {"amount": 11}})
@example(typed=("bool", "event.extra == event.nested"), activation={"event": {"extra": 1, "nested": UInt(1)}})
@example(typed=("int", "event.count + 1"), activation={"event": {"count": 2**63}})
@example(typed=("bool", "event.nested.a > 1"), activation={"event": {"nested": {"a": 2}}})
@example(typed=("bool", "flag"), activation={})
def test_native_agrees_with_reference(typed: tuple[str, str], activation: dict) -> None:
    static_type, expr = typed
    assert_agree(compile_checked(expr, static_type), activation)


@settings(max_examples=EXAMPLES // 2)
@given(typed=typed_expressions(native=True), activation=activations(wrong_types=True))
@example(typed=("bool", "count in [1, 2]"), activation={"count": True})
@example(typed=("int", "count + age"), activation={"count": 1.0, "age": 1})
@example(typed=("double", "amount + fee"), activation={"amount": 1, "fee": 2})
@example(typed=("bool", "count > 1"), activation={"count": 2**64})
@example(typed=("bool", 'type == "a"'), activation={"type": b"a"})
def test_wrong_runtime_types(typed: tuple[str, str], activation: dict) -> None:
    """The standalone API types variables by their runtime value, whatever
    was declared: a double holding a Python int, an int holding a bool or a
    2**64, a string holding bytes. Native constructs only: the reference path
    alone (non-native programs) once crashed on these, see the test below."""
    static_type, expr = typed
    assert_agree(compile_checked(expr, static_type), activation)


@settings(max_examples=EXAMPLES // 2)
@given(expr=numeric_comparisons(), activation=activations())
@example(expr="count > amount", activation={"count": 2**53 + 1, "amount": 2.0**53})
@example(expr="event.count == event.amount", activation={"event": {"count": 2**53 + 1, "amount": 2.0**53}})
@example(expr="event.amount in [9007199254740993]", activation={"event": {"amount": 2.0**53}})
@example(expr="big > amount", activation={"big": UInt(UINT64_MAX), "amount": 2.0**64})
def test_numeric_comparisons_across_types(expr: str, activation: dict) -> None:
    """int, uint and double meet as cel-go has them meet (SPEC §1), which the
    VM's C comparisons must reproduce bit for bit at 2**53 and 2**63."""
    prog = compile_checked(expr, "bool")
    assert prog.native, prog.native_blockers
    assert_agree(prog, activation)


@pytest.mark.parametrize(
    ("expr", "activation"),
    [
        ("uint(count)", {"count": None}),
        ("uint(count)", {"count": "x"}),
        ("uint(amount)", {"amount": "x"}),
    ],
)
def test_wrong_runtime_type_in_a_resolved_call(expr: str, activation: dict) -> None:
    """Regression, found by test_native_agrees_with_reference: a call the
    checker resolved to one overload (Op.CALL) ran its implementation on
    whatever runtime value the variable held, so the reference path raised a
    Python TypeError instead of a CEL error (fixed in refvm meanwhile)."""
    prog = cel.compile(expr, DECLARATIONS)
    assert outcome(prog.evaluate_reference, activation)[0] == "error"
    assert outcome(prog.evaluate, activation)[0] == "error"


@settings(max_examples=EXAMPLES // 3)
@given(typed=typed_expressions(native=True))
def test_native_subset_runs_natively(typed: tuple[str, str]) -> None:
    static_type, expr = typed
    prog = compile_checked(expr, static_type)
    assert prog.native, f"{expr}: {prog.native_blockers}"


@settings(max_examples=EXAMPLES // 3)
@given(typed=typed_expressions(native=True), activations=st.lists(activations(), min_size=1, max_size=5))
def test_one_program_many_activations(typed: tuple[str, str], activations: list[dict]) -> None:
    """A native program keeps no state between evaluations (its slots and
    stack are reused): each result matches a fresh reference evaluation."""
    static_type, expr = typed
    prog = compile_checked(expr, static_type)
    for activation in activations:
        assert_agree(prog, activation)
