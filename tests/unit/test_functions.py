"""The CEL standard library (fraudcore.cel.functions), called directly.

Every case goes through ``resolve`` the way the interpreter dispatches a call
whose overload the checker could not pick, so the runtime type matching is
tested along the way.
"""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fraudcore.cel import functions as fn
from fraudcore.cel.functions import (
    FUNCTIONS,
    cel_equals,
    compile_regex,
    format_double,
    format_duration,
    format_timestamp,
    matches_type,
    parse_duration,
    parse_timestamp,
    resolve,
)
from fraudcore.cel.types import BOOL, DOUBLE, INT, STRING, UINT, list_of, map_of, param
from fraudcore.cel.values import (
    INT64_MAX,
    INT64_MIN,
    UINT64_MAX,
    CelFault,
    CelMap,
    Duration,
    Timestamp,
    Type,
    UInt,
)

NAN = math.nan
INF = math.inf


class Fault:
    """Expected outcome: a CelFault whose message contains ``text``."""

    def __init__(self, text: str = ""):
        self.text = text

    def __repr__(self) -> str:
        return f"Fault({self.text!r})"


def call(name: str, *args: object, receiver: bool = False) -> object:
    overload = resolve(name, args, receiver)
    assert overload is not None, f"no overload of {name} for {args!r}"
    return overload.impl(*args)


def check(expected: object, name: str, *args: object, receiver: bool = False) -> None:
    if isinstance(expected, Fault):
        with pytest.raises(CelFault, match=re.escape(expected.text)):
            call(name, *args, receiver=receiver)
        return
    got = call(name, *args, receiver=receiver)
    assert type(got) is type(expected), f"{got!r} is a {type(got).__name__}, expected {expected!r}"
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == expected
        if isinstance(expected, float):
            assert math.copysign(1, got) == math.copysign(1, expected)  # -0.0 stays -0.0


def ts(text: str) -> Timestamp:
    return parse_timestamp(text)


def dur(text: str) -> Duration:
    return parse_duration(text)


def cmap(*pairs) -> CelMap:
    return CelMap.from_pairs(pairs)


U = UInt


# --------------------------------------------------------------------------- the table


def test_overload_ids_are_unique_and_name_their_function():
    ids = [ov.id for ovs in FUNCTIONS.values() for ov in ovs]
    assert len(ids) == len(set(ids))
    for name, ovs in FUNCTIONS.items():
        assert ovs and all(ov.function == name for ov in ovs)


@pytest.mark.parametrize(
    "function, overload_id",
    [
        ("_+_", "add_int64"), ("_+_", "add_uint64"), ("_+_", "add_double"), ("_+_", "add_string"),
        ("_+_", "add_bytes"), ("_+_", "add_list"), ("_+_", "add_timestamp_duration"),
        ("_+_", "add_duration_timestamp"), ("_+_", "add_duration_duration"),
        ("_<_", "less_int64_double"), ("_>=_", "greater_equals_uint64_int64"),
        ("startsWith", "starts_with_string"), ("size", "size_string"), ("size", "string_size"),
        ("@in", "in_list"), ("@in", "in_map"), ("_[_]", "index_map"),
        ("getDate", "timestamp_to_day_of_month_1_based_with_tz"),
    ],
)
def test_cel_go_overload_ids(function, overload_id):
    assert overload_id in {ov.id for ov in FUNCTIONS[function]}


@pytest.mark.parametrize("function", ["_&&_", "_||_", "_?_:_", "@not_strictly_false"])
def test_non_strict_operators_are_declared_without_impl(function):
    [ov] = FUNCTIONS[function]
    assert ov.impl is None


@pytest.mark.parametrize(
    "value, celtype, expected",
    [
        (1, INT, True), (True, INT, False), (U(1), INT, False), (U(1), UINT, True), (1, UINT, False),
        (1.0, DOUBLE, True), (1, DOUBLE, False), (True, BOOL, True), (1, BOOL, False),
        ("a", STRING, True), ([1], list_of(STRING), True), ((1,), list_of(INT), False),
        (CelMap(), map_of(STRING, INT), True), ({}, map_of(STRING, INT), False),
        (object(), param("A"), True), (None, param("A"), True),
    ],
)
def test_matches_type(value, celtype, expected):
    assert matches_type(value, celtype) is expected


@pytest.mark.parametrize(
    "name, args, receiver, overload_id",
    [
        ("_+_", (1, 2), False, "add_int64"),
        ("_+_", (U(1), U(2)), False, "add_uint64"),
        ("_<_", (1, 2.0), False, "less_int64_double"),
        ("_<_", (True, False), False, "less_bool"),
        ("size", ("abc",), True, "string_size"),
        ("size", ("abc",), False, "size_string"),
        ("_+_", (1, U(2)), False, None),  # no mixed-type arithmetic
        ("-_", (U(5),), False, None),
        ("-_", (False,), False, None),
        ("!_", (0,), False, None),
        ("_%_", (47.5, 5.5), False, None),
        ("_<_", ([0], [1]), False, None),
        ("_<_", (None, None), False, None),
        ("_<=_", ("foo", 1024), False, None),
        ("nope", (), False, None),
    ],
)
def test_resolve(name, args, receiver, overload_id):
    overload = resolve(name, args, receiver)
    assert (overload.id if overload else None) == overload_id


# --------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize(
    "op, a, b, expected",
    [
        ("_+_", 40, 2, 42),
        ("_+_", INT64_MAX, 1, Fault("integer overflow")),
        ("_+_", INT64_MIN, -1, Fault("integer overflow")),
        ("_+_", INT64_MAX, INT64_MIN, -1),
        ("_-_", INT64_MIN, 1, Fault("integer overflow")),
        ("_-_", 1, -INT64_MAX, Fault("integer overflow")),
        ("_-_", -1, INT64_MAX, INT64_MIN),
        ("_*_", INT64_MIN, -1, Fault("integer overflow")),
        ("_*_", 5_000_000_000, 5_000_000_000, Fault("integer overflow")),
        ("_*_", -5_000_000_000, 5_000_000_000, Fault("integer overflow")),
        ("_/_", INT64_MIN, -1, Fault("integer overflow")),
        ("_/_", 15, 0, Fault("division by zero")),
        ("_%_", 34, 0, Fault("modulus by zero")),
        ("_%_", INT64_MIN, -1, Fault("integer overflow")),
        # Truncation toward zero; % takes the dividend's sign (Go, C).
        ("_/_", -7, 2, -3),
        ("_/_", 7, -2, -3),
        ("_/_", -7, -2, 3),
        ("_%_", -7, 2, -1),
        ("_%_", 7, -2, 1),
        ("_%_", 43, -5, 3),
        ("_%_", -42, -5, -2),
        ("_%_", -3, 5, -3),
        ("_/_", INT64_MIN, 1, INT64_MIN),
        ("_/_", INT64_MIN + 1, -1, INT64_MAX),
    ],
)
def test_int_arithmetic(op, a, b, expected):
    check(expected, op, a, b)


@pytest.mark.parametrize(
    "a, expected",
    [(42, -42), (-42, 42), (0, 0), (INT64_MIN, Fault("integer overflow")), (INT64_MAX, -INT64_MAX)],
)
def test_int_negation(a, expected):
    check(expected, "-_", a)


@pytest.mark.parametrize(
    "op, a, b, expected",
    [
        ("_+_", U(42), U(2), U(44)),
        ("_+_", U(UINT64_MAX), U(1), Fault("unsigned integer overflow")),
        ("_-_", U(0), U(1), Fault("unsigned integer overflow")),
        ("_-_", U(42), U(12), U(30)),
        ("_*_", U(5_000_000_000), U(5_000_000_000), Fault("unsigned integer overflow")),
        ("_*_", U(1 << 32), U((1 << 32) - 1), U(UINT64_MAX - (1 << 32) + 1)),
        ("_/_", U(60), U(2), U(30)),
        ("_/_", U(15), U(0), Fault("division by zero")),
        ("_%_", U(42), U(5), U(2)),
        ("_%_", U(34), U(0), Fault("modulus by zero")),
    ],
)
def test_uint_arithmetic(op, a, b, expected):
    check(expected, op, a, b)


@pytest.mark.parametrize(
    "op, a, b, expected",
    [
        ("_+_", 4.25, 15.25, 19.5),
        ("_-_", -4.875, -0.125, -4.75),
        ("_*_", 2.0, 8.988466e307, INF),
        ("_*_", 2.0, -8.988466e307, -INF),
        ("_/_", 15.75, 0.0, INF),
        ("_/_", -15.75, 0.0, -INF),
        ("_/_", 15.75, -0.0, -INF),
        ("_/_", 0.0, 0.0, NAN),
        ("_/_", NAN, 0.0, NAN),
        ("_/_", 1e-324, 2.0, 0.0),
        ("_/_", -8.875, -0.0625, 142.0),
    ],
)
def test_double_arithmetic(op, a, b, expected):
    check(expected, op, a, b)


@pytest.mark.parametrize("a, expected", [(4.5, -4.5), (-1.25, 1.25), (0.0, -0.0), (-INF, INF)])
def test_double_negation(a, expected):
    check(expected, "-_", a)


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ("he", "llo", "hello"),
        ("a\u00ff", "\U0001f431", "a\u00ff\U0001f431"),
        (b"", b"\xffoo", b"\xffoo"),
        ([0, 1], [2], [0, 1, 2]),
        ([], [], []),
    ],
)
def test_concatenation(a, b, expected):
    check(expected, "_+_", a, b)


def test_list_concatenation_copies():
    a = [1]
    result = call("_+_", a, [2])
    assert result == [1, 2] and a == [1]


@pytest.mark.parametrize(
    "op, a, b, expected",
    [
        ("_+_", ts("2009-02-13T23:00:00Z"), dur("240s"), ts("2009-02-13T23:04:00Z")),
        ("_+_", dur("120s"), ts("2009-02-13T23:01:00Z"), ts("2009-02-13T23:03:00Z")),
        ("_+_", dur("600s"), dur("50s"), dur("650s")),
        ("_+_", ts("0001-01-01T00:00:01.000000001Z"), dur("-999999999ns"), ts("0001-01-01T00:00:00.000000002Z")),
        ("_+_", ts("0001-01-01T00:00:01.999999999Z"), dur("999999999ns"), ts("0001-01-01T00:00:02.999999998Z")),
        ("_-_", ts("2009-02-13T23:10:00Z"), dur("600s"), ts("2009-02-13T23:00:00Z")),
        ("_-_", ts("2009-02-13T23:31:00Z"), ts("2009-02-13T23:29:00Z"), dur("120s")),
        ("_-_", dur("900s"), dur("42s"), dur("858s")),
        ("_+_", ts("0001-01-01T00:00:00Z"), dur("-1s"), Fault("timestamp out of range")),
        ("_+_", ts("9999-12-31T23:59:59Z"), dur("1s"), Fault("timestamp out of range")),
        ("_+_", ts("9999-12-31T23:59:59.999999999Z"), dur("1ns"), Fault("timestamp out of range")),
        ("_+_", ts("0001-01-01T00:00:00Z"), dur("-1ns"), Fault("timestamp out of range")),
        ("_-_", ts("9999-12-31T23:59:59Z"), ts("0001-01-01T00:00:00Z"), Fault("duration out of range")),
        ("_-_", ts("0001-01-01T00:00:00Z"), ts("9999-12-31T23:59:59Z"), Fault("duration out of range")),
        ("_+_", Duration(INT64_MAX), Duration(1), Fault("duration out of range")),
        ("_-_", Duration(INT64_MIN), Duration(1), Fault("duration out of range")),
        ("_-_", ts("2262-04-11T23:47:16.854775807Z"), ts("1970-01-01T00:00:00Z"), Duration(INT64_MAX)),
    ],
)
def test_time_arithmetic(op, a, b, expected):
    check(expected, op, a, b)


@given(st.integers(INT64_MIN, INT64_MAX), st.integers(INT64_MIN, INT64_MAX))
def test_int64_arithmetic_is_exact_or_faults(a, b):
    for op, exact in [("_+_", a + b), ("_-_", a - b), ("_*_", a * b)]:
        if INT64_MIN <= exact <= INT64_MAX:
            assert call(op, a, b) == exact
        else:
            with pytest.raises(CelFault, match="integer overflow"):
                call(op, a, b)


@given(st.integers(INT64_MIN, INT64_MAX), st.integers(INT64_MIN, INT64_MAX).filter(bool))
def test_int64_division_identity(a, b):
    if a == INT64_MIN and b == -1:
        return
    q, r = call("_/_", a, b), call("_%_", a, b)
    assert q * b + r == a
    assert abs(r) < abs(b) and (r == 0 or (r < 0) == (a < 0))


# --------------------------------------------------------------------------- equality


@pytest.mark.parametrize(
    "a, b, expected",
    [
        (1, U(1), True), (1, 1.0, True), (U(1), 1.0, True), (2, U(1), False), (2, 1.0, False),
        (NAN, NAN, False), (1, NAN, False), (U(1), NAN, False),
        (2**53 + 1, float(2**53), True),  # the int meets the double as a double (cel-go)
        (UINT64_MAX, 1.8446744073709552e19, False),
        (True, 1, False), (False, 0, False), (False, None, False), (1, None, False),
        (None, None, True), ("abc", "abc", True), ("a", "\u00e0", False),
        ("Am\u00e9lie", "Ame\u0301lie", False), (b"\xc3\xbf", b"\xc3\xbf", True), (b"abc", "abc", False),
        ([], [], True), ([None], [None], True), ([1.0, 2.0, 3], [U(1), 2, U(3)], True),
        ([1.0, 2.1], [U(1), 2], False), ([1, "dos", 3], [1, 2, 4], False), ([[]], [[]], True),
        ([1], [1, 2], False), ([NAN], [NAN], False),
        (cmap(), cmap(), True),
        (cmap((1, 1.0), (U(2), U(3))), cmap((U(1), 1), (2, 3.0)), True),
        (cmap(("k", 1), ("j", 2)), cmap(("k", 1), ("j", None)), False),
        (cmap(("k1", "v1"), ("k2", "v2")), cmap(("k2", "v2"), ("k1", "v1")), True),
        (cmap(("k", "v"), ("k1", "v1")), cmap(("k", "v"),), False),
        (cmap((True, 1)), cmap((1, 1)), False),
        (ts("2009-02-13T23:31:30Z"), ts("2009-02-13T23:31:30Z"), True),
        (ts("2009-02-13T23:31:29Z"), ts("2009-02-13T23:31:30Z"), False),
        (dur("123s"), dur("123s"), True), (dur("0s"), 0, False), (Timestamp(0), Duration(0), False),
        (Type("int"), Type("int"), True), (Type("int"), Type("uint"), False), (Type("int"), "int", False),
    ],
)
def test_equality(a, b, expected):
    assert cel_equals(a, b) is expected
    assert cel_equals(b, a) is expected
    check(expected, "_==_", a, b)
    check(not expected, "_!=_", a, b)


# --------------------------------------------------------------------------- ordering

_ORDER_OPS = {"_<_": lambda c: c < 0, "_<=_": lambda c: c <= 0, "_>_": lambda c: c > 0, "_>=_": lambda c: c >= 0}


@pytest.mark.parametrize("op", list(_ORDER_OPS))
@pytest.mark.parametrize(
    "a, b, cmp",  # cmp: sign of a - b
    [
        (-1, 0, -1), (0, 0, 0), (U(0), U(1), -1), (1.0, 1.0000001, -1), (-0.0, 0.0, 0),
        (1, U(2), -1), (1, 2.0, -1), (U(1), 2, -1), (U(1), 2.0, -1), (1.0, 2, -1), (1.0, U(2), -1),
        (1, U(1), 0), (1, 1.0, 0), (U(1), 1.0, 0),
        (1, U(9223372036854775808), -1), (-1, U(0), -1), (U(1), INT64_MIN, 1), (U(2**63), 1, 1),
        # An int meets a double as a double (cel-go, pinned by the conformance
        # cases): 2**53 + 1 rounds to 2**53, INT64_MAX to 2**63.
        (2**53 + 1, float(2**53), 0), (2**53 + 1, float(2**53 + 2), -1),
        (INT64_MAX, 9223372036854775808.0, 0), (INT64_MAX, 9223372036854777856.0, -1),
        (INT64_MIN, -9223372036854775808.0, 0), (INT64_MIN, -9223372036854777856.0, 1),
        (U(UINT64_MAX), -1.0, 1), (U(UINT64_MAX), 18446744073709590000.0, -1),
        (18446744073709553665.0, U(UINT64_MAX), 1), (9223372036854775808.0, INT64_MAX, 0),
        ("a", "b", -1), ("", "a", -1), ("Abc", "aBC", -1), ("abc", "abcd", -1), ("a", "AB", 1),
        ("a", "\u00e1", -1), ("f", "\u1ebf", -1), ("\u03c4", "t", 1),
        # Code point order, not UTF-16: U+FFFF < U+1F600 though its UTF-16 units are larger.
        ("\uffff", "\U0001f600", -1), ("a", "\U0001f600", -1), ("\ue000", "\U00010000", -1),
        (b"a", b"b", -1), (b"abc", b"abc", 0), (b"\xc3\xa1", b"b", 1), (b" ", b"", 1),
        (False, True, -1), (True, True, 0),
        (ts("2009-02-13T23:00:00Z"), ts("2009-03-13T23:00:00Z"), -1),
        (ts("0001-01-01T00:00:00Z"), ts("0001-01-01T00:00:00.000000001Z"), -1),
        (dur("200s"), dur("300s"), -1), (dur("-1ns"), dur("0s"), -1), (dur("1m"), dur("60s"), 0),
    ],
)
def test_ordering(op, a, b, cmp):
    check(_ORDER_OPS[op](cmp), op, a, b)
    check(_ORDER_OPS[op](-cmp), op, b, a)


@pytest.mark.parametrize("op", list(_ORDER_OPS))
@pytest.mark.parametrize("a, b", [(NAN, 1.0), (NAN, NAN), (NAN, 1), (U(1), NAN)])
def test_ordering_with_nan_is_false(op, a, b):
    check(False, op, a, b)


# --------------------------------------------------------------------------- in, index, size


@pytest.mark.parametrize(
    "value, container, expected",
    [
        (7, [], False), (U(4), [U(4)], True), ("alpha", ["alpha", "beta"], True),
        (3.0, [5, 4, 3], True), (U(3), [5, 4, 3], True), (3, [5.0, 3.0], True), (3, [U(5), U(3)], True),
        ("elem", [1, "elem", 2], True), ("elem", [U(1), "str", 2, b"bytes"], False), (1, [True], False),
        ("key", cmap(("key", "1"), ("other", "2")), True), ("key", cmap((3, 3.0), ("key", U(2))), True),
        ("key", cmap((U(1), "str"), (2, b"bytes")), False), (True, cmap((True, 1)), True),
        (1, cmap((True, 1)), False), (3.0, cmap((1, 1), (2, 2), (U(3), 3)), True),
        (3.1, cmap((1, 1), (2, 2), (U(3), 3)), False), (U(2), cmap((U(1), 1), (2, 2)), True),
        ([1], cmap((1, 1)), False),
    ],
)
def test_in(value, container, expected):
    check(expected, "@in", value, container)


@pytest.mark.parametrize(
    "container, index, expected",
    [
        ([7, 8, 9], 0, 7), ([7, 8, 9], U(0), 7), ([7, 8, 9], 0.0, 7), ([7, 8, 9], 2.0, 9),
        ([7, 8, 9], 0.1, Fault("invalid list index")), ([7, 8, 9], NAN, Fault("invalid list index")),
        ([1, 2, 3], 3, Fault("index out of range: 3")), ([1, 2, 3], -1, Fault("index out of range: -1")),
        ([1, 2, 3], U(3), Fault("index out of range: 3")),
        (cmap((0, 1), (2, 2), (5, True)), 5, True), (cmap((U(2), "happy"),), U(2), "happy"),
        (cmap((True, 5),), True, 5), (cmap((True, 1), (2, 2), (U(5), 3)), True, 1),
        (cmap((U(1), 1.0), (2, 2.0), (U(3), 3.0)), 3.0, 3.0), (cmap((U(1), 1.0), (2, 2.0)), 1, 1.0),
        (cmap((U(1), 1.0), (2, 2.0), (U(3), 3.0)), 3.1, Fault("no such key: 3.1")),
        (cmap((0, 1), (2, 2)), 1, Fault("no such key: 1")), (cmap((0, 1),), b"", Fault("no such key")),
        (cmap(("k", None),), "k", None), (cmap(), "name", Fault("no such key: 'name'")),
    ],
)
def test_index(container, index, expected):
    check(expected, "_[_]", container, index)


def test_index_list_rejects_other_types_at_runtime():
    assert resolve("_[_]", ([1], "")) is None
    with pytest.raises(CelFault, match="invalid list index type: string"):
        fn._index_list([1], "")


@pytest.mark.parametrize("receiver", [False, True])
@pytest.mark.parametrize(
    "value, expected",
    [
        ("", 0), ("A", 1), ("\u00ff", 1), ("\u03c0\u03ad\u03bd\u03c4\u03b5", 5), ("\U0001f431\U0001f600", 2),
        (b"", 0), (b"abc", 3), ("\u00ff".encode(), 2), ([], 0), ([1, 2, 3], 3), (cmap(), 0),
        (cmap((1, "one"), (2, "two")), 2),
    ],
)
def test_size(value, expected, receiver):
    check(expected, "size", value, receiver=receiver)


# --------------------------------------------------------------------------- strings


@pytest.mark.parametrize(
    "name, s, arg, expected",
    [
        ("startsWith", "foobar", "foo", True), ("startsWith", "foobar", "bar", False),
        ("startsWith", "", "", True), ("startsWith", "\U0001f431\U0001f600", "\U0001f431", True),
        ("endsWith", "foobar", "bar", True), ("endsWith", "", "foo", False), ("endsWith", "fort\u00e9", "t\u00e9", True),
        ("contains", "hello", "he", True), ("contains", "hello", "", True), ("contains", "hello", "ol", False),
        ("contains", "abababc", "ababc", True), ("contains", "Stra\u00dfe", "a\u00df", True),
        ("contains", "", "x", False),
        ("matches", "hubba", "ubb", True), ("matches", "", "foo|bar", False), ("matches", "cows", "", True),
        ("matches", "grey", "gr(a|e)y", True), ("matches", "banana", "ba(na)*", True),
        ("matches", "ma\u00f1ana", "a+\u00f1+a+", True), ("matches", "\U0001f431\U0001f600\U0001f600", "(a|\U0001f600){2}", True),
        ("matches", "abc", "^b", False), ("matches", "abc", "(?i)ABC", True),
        ("matches", "x", "(", Fault("invalid regular expression")),
        ("matches", "aa", r"(a)\1", Fault("backreferences")),
    ],
)
def test_string_functions(name, s, arg, expected):
    check(expected, name, s, arg, receiver=True)
    if name == "matches":
        check(expected, name, s, arg)


@pytest.mark.parametrize(
    "pattern, text, expected",
    [
        # RE2's $ is end of text; Python's would also match before a final newline.
        ("abc$", "abc\n", False), ("abc$", "abc", True), ("(?m)^b$", "a\nb\nc", True), ("(?m:b$)", "b\nc", True),
        (r"abc\z", "abc\n", False), (r"\Aabc", "abc", True),
        # RE2's \d \w \s \b are ASCII.
        (r"\d", "\u0661", False), (r"\d", "7", True), (r"\w", "\u00e9", False), (r"\w", "_", True),
        (r"\s", "\u00a0", False), (r"\s", "\v", False), (r"\s", "\t", True), (r"\D", "\u0661", True),
        (r"\bbar\b", "foo bar", True), (r"\bbar", "foobar", False), (r"\Bbar", "foobar", True),
        (r"caf\b", "caf\u00e9", True), (r"[\d]", "5", True), (r"[^\D]", "5", True), (r"[\W]", "a", False),
        # Escapes and classes RE2 has and Python spells differently.
        (r"\x41", "A", True), (r"\x{1F600}", "\U0001f600", True), (r"\101", "A", True), (r"\0", "\0", True),
        (r"\Qa.b*\E", "a.b*", True), (r"\Qa.b*\E", "axbb", False), ("[[:alpha:]]+$", "abc", True),
        ("[[:digit:]]", "x", False), ("[[:^alpha:]]", "1", True), ("a{,2}", "a{,2}", True), ("a{,2}", "aa", False),
        ("(?P<x>a)(?<y>b)", "ab", True), ("(?i:a)B", "AB", True), ("(?i:a)B", "ab", False),
        ("(?s)a.b", "a\nb", True), ("a.b", "a\nb", False), ("(?i)\u00c9", "\u00e9", True),
        ("[]a]", "]", True), ("[a-]", "-", True), ("[|&~-]", "&", True), ("a{2,3}", "aa", True),
        ("a*?b", "aab", True), (r"\.", "x", False), ("(?m)(?-m)b$", "b\nc", False), ("(?-m:b$)", "b\nc", False),
        ("(?i)(?-i:a)", "A", False),
    ],
)
def test_regex_translation(pattern, text, expected):
    assert bool(compile_regex(pattern).search(text)) is expected


@pytest.mark.parametrize(
    "pattern, message",
    [
        (r"\1", "backreferences"), (r"(a)\2", "backreferences"), (r"\8", "backreferences"),
        ("(?P=n)", "backreferences"), ("(?=a)", "lookahead"), ("(?!a)", "lookahead"),
        ("(?<=a)b", "lookbehind"), ("(?<!a)b", "lookbehind"), ("(?>a)", "atomic"),
        ("a*+", "possessive"), ("a++", "possessive"), ("a?+", "possessive"), ("a{2}+", "possessive"),
        ("a**", "repetition"), ("a{1001}", "at most 1000"), ("a{3,2}", "repetition count"),
        (r"\pL", "Unicode character classes"), (r"\p{Greek}", "Unicode character classes"),
        (r"[\pL]", "Unicode character classes"), (r"\PN", "Unicode character classes"),
        ("(?U)a", "ungreedy"), ("a(?i)b", "only supported at the start"), ("(?x)a", "unknown flag"),
        ("(?#c)", "comments"), ("(?(1)a|b)", "conditionals"), (r"\Z", r"use \z"), (r"\C", r"\C"),
        (r"\u0041", "invalid escape"), (r"\e", "invalid escape"), ("a\\", "trailing backslash"),
        ("[a", "missing closing ]"), ("[z-a]", "invalid character class range"), ("(", "invalid regular expression"),
        ("a)", "invalid regular expression"), ("*", "invalid regular expression"), ("[[:foo:]]", "POSIX"),
        (r"\x{110000}", r"\x{"), (r"\xZ", r"\x"),
    ],
)
def test_regex_rejections(pattern, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        compile_regex(pattern)


def test_compile_regex_is_cached():
    assert compile_regex("ab+c") is compile_regex("ab+c")


# --------------------------------------------------------------------------- conversions


@pytest.mark.parametrize(
    "name, arg, expected",
    [
        ("int", 1, 1), ("int", U(42), 42), ("int", U(INT64_MAX), INT64_MAX),
        ("int", U(UINT64_MAX), Fault("integer overflow")),
        ("int", -123.456, -123), ("int", 1.9, 1), ("int", -7.9, -7), ("int", 11.5, 11), ("int", -3.5, -3),
        ("int", float(36028797018963968), 36028797018963968),
        ("int", 9223372036854775807.0, Fault("integer overflow")),
        ("int", -9223372036854775808.0, Fault("integer overflow")),  # both bounds exclusive, as cel-go
        ("int", 9223372036854774784.0, 9223372036854774784), ("int", 1e99, Fault("integer overflow")),
        ("int", NAN, Fault("integer overflow")), ("int", INF, Fault("integer overflow")),
        ("int", "987", 987), ("int", "-9223372036854775808", INT64_MIN), ("int", "+5", 5),
        ("int", "9223372036854775808", Fault("integer overflow")), ("int", " 1", Fault("cannot convert")),
        ("int", "1_000", Fault("cannot convert")), ("int", "0x10", Fault("cannot convert")),
        ("int", "1.0", Fault("cannot convert")), ("int", "", Fault("cannot convert")),
        ("int", ts("2009-02-13T23:31:30Z"), 1234567890), ("int", ts("1969-12-31T23:59:59.5Z"), -1),
        ("uint", 1729, U(1729)), ("uint", INT64_MAX, U(INT64_MAX)), ("uint", -1, Fault("unsigned integer overflow")),
        ("uint", U(1), U(1)), ("uint", 3.14159265, U(3)), ("uint", 25.5, U(25)), ("uint", -0.5, Fault("overflow")),
        ("uint", 6.022e23, Fault("unsigned integer overflow")), ("uint", 18446744073709551615.0, Fault("overflow")),
        ("uint", "300", U(300)), ("uint", "18446744073709551615", U(UINT64_MAX)),
        ("uint", "18446744073709551616", Fault("overflow")), ("uint", "-1", Fault("cannot convert")),
        ("uint", "+1", Fault("cannot convert")),
        ("double", 0, 0.0), ("double", INT64_MAX, 9.223372036854776e18), ("double", -9007199254740992, -9007199254740992.0),
        ("double", U(UINT64_MAX), 1.8446744073709552e19), ("double", 5.5, 5.5),
        ("double", "0", 0.0), ("double", "-0.0", -0.0), ("double", "123.456", 123.456), ("double", "6.02214e23", 6.02214e23),
        ("double", "-5.43e-21", -5.43e-21), ("double", "1e3", 1000.0), ("double", ".5", 0.5), ("double", "5.", 5.0),
        ("double", "inf", INF), ("double", "-Inf", -INF), ("double", "+Infinity", INF), ("double", "NaN", NAN),
        ("double", "0x1p-2", 0.25), ("double", "1e400", Fault("out of range")), ("double", "1e-400", 0.0),
        ("double", "1_000", Fault("cannot convert")), ("double", " 1", Fault("cannot convert")),
        ("double", "e5", Fault("cannot convert")), ("double", "", Fault("cannot convert")),
        ("string", 123, "123"), ("string", -456, "-456"), ("string", U(9876), "9876"),
        ("string", 123.456, "123.456"), ("string", -4.5e-3, "-0.0045"), ("string", "hello", "hello"),
        ("string", b"abc", "abc"), ("string", b"\xc3\xbf", "\u00ff"), ("string", b"\x00\xff", Fault("invalid UTF-8")),
        ("string", b"\xed\xa0\x80", Fault("invalid UTF-8")),  # an encoded surrogate is not UTF-8
        ("string", True, "true"), ("string", False, "false"),
        ("string", ts("2009-02-13T23:31:30Z"), "2009-02-13T23:31:30Z"),
        ("string", dur("1000000s"), "1000000s"),
        ("bytes", "", b""), ("bytes", "\u00ff", b"\xc3\xbf"), ("bytes", b"\xff", b"\xff"),
        ("bool", True, True), ("bool", "1", True), ("bool", "t", True), ("bool", "T", True), ("bool", "true", True),
        ("bool", "TRUE", True), ("bool", "True", True), ("bool", "0", False), ("bool", "f", False),
        ("bool", "F", False), ("bool", "false", False), ("bool", "FALSE", False), ("bool", "False", False),
        ("bool", "TrUe", Fault("cannot convert")), ("bool", "FaLsE", Fault("cannot convert")),
        ("bool", "yes", Fault("cannot convert")), ("bool", "", Fault("cannot convert")),
        ("timestamp", 1000000000, Timestamp(10**18)), ("timestamp", -62135596800, ts("0001-01-01T00:00:00Z")),
        ("timestamp", -62135596801, Fault("timestamp out of range")), ("timestamp", 253402300800, Fault("out of range")),
        ("timestamp", Timestamp(5), Timestamp(5)), ("duration", Duration(5), Duration(5)),
        ("dyn", 1, 1), ("dyn", U(1), U(1)),
        ("type", 0, Type("int")), ("type", U(64), Type("uint")), ("type", 3.14, Type("double")),
        ("type", True, Type("bool")), ("type", None, Type("null_type")), ("type", "foo", Type("string")),
        ("type", b"\xff", Type("bytes")), ("type", [1, "one"], Type("list")), ("type", cmap((4, 16)), Type("map")),
        ("type", Type("int"), Type("type")), ("type", Timestamp(0), Type("google.protobuf.Timestamp")),
        ("type", Duration(0), Type("google.protobuf.Duration")),
    ],
)
def test_conversions(name, arg, expected):
    check(expected, name, arg)


@pytest.mark.parametrize(
    "value, text",
    [
        (1.0, "1"), (-1.0, "-1"), (0.0, "0"), (-0.0, "-0"), (123.456, "123.456"), (-4.5e-3, "-0.0045"),
        (0.0001, "0.0001"), (0.00001, "1e-05"), (123456.0, "123456"), (1e6, "1e+06"), (1234567.0, "1.234567e+06"),
        (1e100, "1e+100"), (1.5e-300, "1.5e-300"), (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
        (9.223372036854776e18, "9.223372036854776e+18"), (0.1, "0.1"), (100.0, "100"), (INF, "+Inf"),
        (-INF, "-Inf"), (NAN, "NaN"),
    ],
)
def test_format_double(value, text):
    assert format_double(value) == text


# --------------------------------------------------------------------------- timestamps and durations


@pytest.mark.parametrize(
    "text, ns, canonical",
    [
        ("1970-01-01T00:00:00Z", 0, "1970-01-01T00:00:00Z"),
        ("2009-02-13T23:31:30Z", 1234567890 * 10**9, "2009-02-13T23:31:30Z"),
        ("2009-02-13T23:31:30.5Z", 1234567890_500000000, "2009-02-13T23:31:30.5Z"),
        ("2009-02-13T23:31:30.000000001Z", 1234567890_000000001, "2009-02-13T23:31:30.000000001Z"),
        ("2009-02-13T23:31:30.120Z", 1234567890_120000000, "2009-02-13T23:31:30.12Z"),
        ("2009-02-14T10:31:30+11:00", 1234567890 * 10**9, "2009-02-13T23:31:30Z"),
        ("2009-02-13T21:01:30-02:30", 1234567890 * 10**9, "2009-02-13T23:31:30Z"),
        ("2009-02-13t23:31:30z", 1234567890 * 10**9, "2009-02-13T23:31:30Z"),
        ("1969-12-31T23:59:59.999999999Z", -1, "1969-12-31T23:59:59.999999999Z"),
        ("0001-01-01T00:00:00Z", -62135596800 * 10**9, "0001-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59.999999999Z", 253402300799_999999999, "9999-12-31T23:59:59.999999999Z"),
        ("2000-02-29T12:00:00Z", 951825600 * 10**9, "2000-02-29T12:00:00Z"),
        ("0001-01-01T05:00:00+05:00", -62135596800 * 10**9, "0001-01-01T00:00:00Z"),
    ],
)
def test_timestamp_parse_and_format(text, ns, canonical):
    parsed = parse_timestamp(text)
    assert parsed == Timestamp(ns)
    assert format_timestamp(parsed) == canonical
    assert parse_timestamp(canonical) == parsed


@pytest.mark.parametrize(
    "text, message",
    [
        ("0000-01-01T00:00:00Z", "out of range"), ("10000-01-01T00:00:00Z", "cannot parse"),
        ("0001-01-01T00:00:00+00:01", "out of range"), ("9999-12-31T23:59:59-00:01", "out of range"),
        ("2009-02-30T00:00:00Z", "field out of range"), ("2001-02-29T00:00:00Z", "field out of range"),
        ("2009-13-01T00:00:00Z", "field out of range"), ("2009-02-13T24:00:00Z", "field out of range"),
        ("2009-02-13T23:60:00Z", "field out of range"), ("2009-02-13T23:59:60Z", "field out of range"),
        ("2009-02-13T23:31:30", "cannot parse"), ("2009-02-13 23:31:30Z", "cannot parse"),
        ("2009-02-13T23:31:30.1234567890Z", "cannot parse"), ("2009-02-13T23:31:30.Z", "cannot parse"),
        ("2009-02-13T23:31:30+24:00", "bad offset"), ("2009-02-13T23:31:30+0100", "cannot parse"),
        ("2009-02-13T23:31:30Z\n", "cannot parse"), ("", "cannot parse"),
        ("\u0662009-02-13T23:31:30Z", "cannot parse"),
    ],
)
def test_timestamp_parse_errors(text, message):
    with pytest.raises(CelFault, match=re.escape(message)):
        parse_timestamp(text)


@pytest.mark.parametrize(
    "text, ns",
    [
        ("0", 0), ("-0", 0), ("+0", 0), ("0s", 0), ("1ns", 1), ("1us", 1000), ("1\u00b5s", 1000), ("1\u03bcs", 1000),
        ("100ms", 100_000_000), ("1.5s", 1_500_000_000), ("-1.5h", -5400 * 10**9), ("1h2m3.5s", 3723_500_000_000),
        ("2h45m", 9900 * 10**9), (".5s", 500_000_000), ("1.s", 10**9), ("1.0000000009s", 10**9),
        ("0.1ns", 0), ("1000000s", 10**15), ("9223372036.854775807s", INT64_MAX),
        ("-9223372036854775808ns", INT64_MIN), ("1m1m", 120 * 10**9),
    ],
)
def test_duration_parse(text, ns):
    assert parse_duration(text) == Duration(ns)


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "cannot parse"), ("-", "cannot parse"), ("1", "missing unit"), ("1x", "unknown unit"), ("1S", "unknown unit"),
        (".s", "cannot parse"), ("1 s", "unknown unit"), ("1h-1m", "unknown unit"), ("s", "cannot parse"),
        ("9223372036854775808ns", "out of range"), ("320000000000s", "out of range"), ("-320000000000s", "out of range"),
        ("200000000000s", "out of range"),
    ],
)
def test_duration_parse_errors(text, message):
    with pytest.raises(CelFault, match=re.escape(message)):
        parse_duration(text)


@pytest.mark.parametrize(
    "ns, text",
    [(0, "0s"), (10**15, "1000000s"), (1_500_000_000, "1.5s"), (-1, "-0.000000001s"), (-1_500_000_000, "-1.5s"),
     (INT64_MAX, "9223372036.854775807s"), (INT64_MIN, "-9223372036.854775808s")],
)
def test_duration_format_round_trips(ns, text):
    assert format_duration(Duration(ns)) == text
    assert parse_duration(text) == Duration(ns)


T0 = ts("2009-02-13T23:31:30Z")


@pytest.mark.parametrize(
    "name, value, tz, expected",
    [
        ("getFullYear", T0, None, 2009), ("getMonth", T0, None, 1), ("getDayOfYear", T0, None, 43),
        ("getDayOfMonth", T0, None, 12), ("getDate", T0, None, 13), ("getDayOfWeek", T0, None, 5),
        ("getHours", T0, None, 23), ("getMinutes", T0, None, 31), ("getSeconds", T0, None, 30),
        ("getMilliseconds", ts("2009-02-13T23:31:20.123456789Z"), None, 123),
        ("getDate", T0, "Australia/Sydney", 14), ("getDayOfMonth", T0, "US/Central", 12),
        ("getDayOfMonth", T0, "+11:00", 13), ("getDayOfMonth", ts("2009-02-13T02:00:00Z"), "-02:30", 11),
        ("getDayOfMonth", ts("2009-02-13T02:00:00Z"), "America/St_Johns", 11), ("getDayOfWeek", T0, "UTC", 5),
        ("getDayOfYear", T0, "US/Central", 43), ("getFullYear", T0, "-09:30", 2009), ("getHours", T0, "02:00", 1),
        ("getMinutes", T0, "Asia/Kathmandu", 16), ("getMonth", T0, "UTC", 1), ("getSeconds", T0, "-00:00", 30),
        ("getFullYear", ts("2008-12-31T23:00:00Z"), "+01:00", 2009), ("getMonth", ts("2008-12-31T23:00:00Z"), "+01:00", 0),
        ("getDayOfYear", ts("2008-12-31T12:00:00Z"), None, 365),  # leap year, 0-based
        ("getDayOfWeek", ts("1970-01-01T00:00:00Z"), None, 4), ("getDayOfWeek", ts("1969-12-28T00:00:00Z"), None, 0),
        ("getHours", ts("2009-07-01T12:00:00Z"), "Europe/London", 13),  # summer time
        ("getHours", ts("2009-01-01T12:00:00Z"), "Europe/London", 12),
        ("getMilliseconds", ts("1969-12-31T23:59:59.999Z"), None, 999),
        ("getFullYear", ts("0001-01-01T00:00:00Z"), "-05:00", 0), ("getFullYear", ts("0001-01-01T00:00:00Z"), "America/New_York", 0),
        ("getFullYear", ts("9999-12-31T23:59:59Z"), "Asia/Tokyo", 10000),
        ("getHours", T0, "Mars/Olympus", Fault("unknown timezone")), ("getHours", T0, "", Fault("unknown timezone")),
        ("getHours", T0, "../../etc/passwd", Fault("unknown timezone")),
        ("getHours", T0, "+25:00", Fault("invalid timezone offset")), ("getHours", T0, "1:2", Fault("invalid timezone offset")),
    ],
)
def test_timestamp_accessors(name, value, tz, expected):
    args = (value,) if tz is None else (value, tz)
    check(expected, name, *args, receiver=True)


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("getHours", dur("10000s"), 2), ("getMinutes", dur("3730s"), 62), ("getSeconds", dur("3730s"), 3730),
        ("getHours", dur("-5400s"), -1), ("getSeconds", dur("-1.5s"), -1), ("getSeconds", dur("999ms"), 0),
        # The millisecond component, as the conformance case get_milliseconds documents.
        ("getMilliseconds", Duration(123_321_456_789), 321), ("getMilliseconds", dur("-1.5s"), -500),
        ("getMilliseconds", dur("999999ns"), 0),
    ],
)
def test_duration_accessors(name, value, expected):
    check(expected, name, value, receiver=True)


def test_logical_not():
    check(False, "!_", True)
    check(True, "!_", False)
