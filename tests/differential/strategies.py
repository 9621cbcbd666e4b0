"""Hypothesis strategies for the differential tests: well-typed CEL expression
text over a fraud-like schema, and activations (events) for it.

``expressions(t)`` builds the *text* of an expression whose static type is
``t`` (or ``dyn``, when an ``event.<field>`` leaf is involved), so every drawn
expression type-checks. ``native=True`` keeps to the constructs the native VM
runs (fraudcore/cel/compile.py's ``native_blockers`` stay empty); the default
also mixes in a few the reference interpreter alone runs (``dyn(...)``,
``double("NaN")``, string concatenation, ...), which exercise the fallback.

``activations()`` draws values for the declared variables: usually of the
declared type, with edge values (int64 limits, NaN, ±inf, -0.0, non-ASCII
strings), sometimes missing, sometimes of the wrong Python type: the
standalone API types variables by their runtime value, and both evaluators
must still agree.
"""

from __future__ import annotations

import functools
import math

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from fraudcore.cel.values import INT64_MAX, INT64_MIN, UINT64_MAX, UInt

__all__ = [
    "DECLARATIONS",
    "SCHEMA",
    "TYPES",
    "activations",
    "events",
    "expressions",
    "field_value",
    "numeric_comparisons",
    "typed_expressions",
]

# The event schema (the rules file's ``fields:``).
SCHEMA: dict[str, str] = {
    "amount": "double",
    "fee": "double",
    "count": "int",
    "age": "int",
    "big": "uint",
    "type": "string",
    "country": "string",
    "device": "string",
    "flag": "bool",
    "vip": "bool",
}
# For the standalone API: the fields as variables, plus the event as a map.
DECLARATIONS: dict[str, str] = {**SCHEMA, "event": "map(string, dyn)"}

TYPES = ("bool", "int", "uint", "double", "string")
NUMERIC = ("int", "uint", "double")
VARIABLES: dict[str, list[str]] = {t: [n for n, k in SCHEMA.items() if k == t] for t in TYPES}
# Keys of ``event.<key>``: the schema's fields and two it does not declare.
EVENT_KEYS = (*SCHEMA, "extra", "nested")

# A small string alphabet, so that equality, prefixes and set membership hit
# often; with non-ASCII code points from the 2-, 3- and 4-byte UTF-8 ranges.
ALPHABET = "abAé日😀"
STRINGS = ("", "a", "b", "ab", "ba", "A", "é", "日本", "😀", "a😀", "\uffff")
REGEXES = ("^a", "b$", "a.?b", "[aé]", "^$", "(ab)+", "日", "^.$", "😀")

# Magnitudes where int64, uint64 and double part ways: 2**53 + 1 is the first
# int a double cannot hold; 2**63 - 1 rounds up to 2**63 as a double.
BOUNDARIES = (2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1)
INT_EDGES = (0, 1, -1, 2, 7, -7, 2**31, INT64_MIN) + tuple(
    v for b in BOUNDARIES for v in (b, -b) if INT64_MIN <= v <= INT64_MAX
)
UINT_EDGES = (0, 1, 2, 7) + BOUNDARIES
DOUBLE_EDGES = (0.0, -0.0, 1.0, -1.5, 0.5, 1e308, -1e308, 5e-324, 1e19) + tuple(
    v for b in BOUNDARIES for v in (float(b), -float(b))
)
# Values only activations hold: CEL has no literal for them.
DOUBLE_SPECIALS = (math.nan, math.inf, -math.inf)


# --- literals -------------------------------------------------------------


def _int_literal(i: int) -> str:
    return str(i)


def _double_literal(d: float) -> str:
    text = repr(d)  # '1e+308', '-0.0', '5e-324', '9007199254740992.0'
    return text if any(c in text for c in ".en") else text + ".0"


def _string_literal(s: str) -> str:
    # The alphabet needs no escapes; written raw, non-ASCII included.
    return '"' + s + '"'


def _strings() -> SearchStrategy[str]:
    return st.one_of(st.sampled_from(STRINGS), st.text(ALPHABET, max_size=4))


LITERALS: dict[str, SearchStrategy[str]] = {
    "bool": st.sampled_from(("true", "false")),
    "int": st.one_of(st.sampled_from(INT_EDGES), st.integers(-20, 20), st.integers(INT64_MIN, INT64_MAX)).map(
        _int_literal
    ),
    "uint": st.one_of(st.sampled_from(UINT_EDGES), st.integers(0, 20), st.integers(0, UINT64_MAX)).map(
        lambda u: f"{u}u"
    ),
    "double": st.one_of(
        st.sampled_from(DOUBLE_EDGES),
        st.floats(-100, 100, allow_nan=False).map(lambda d: round(d, 2)),
        st.floats(allow_nan=False, allow_infinity=False),
    ).map(_double_literal),
    "string": _strings().map(_string_literal),
}


# --- expressions ----------------------------------------------------------


def _leaves(t: str) -> SearchStrategy[str]:
    options = [LITERALS[t], st.sampled_from(VARIABLES[t]), st.sampled_from(EVENT_KEYS).map(lambda k: f"event.{k}")]
    return st.one_of(*options)


def _binary(op: str, left: SearchStrategy[str], right: SearchStrategy[str]) -> SearchStrategy[str]:
    return st.tuples(left, right).map(lambda lr: f"({lr[0]} {op} {lr[1]})")


def _ternary(cond: SearchStrategy[str], a: SearchStrategy[str], b: SearchStrategy[str]) -> SearchStrategy[str]:
    return st.tuples(cond, a, b).map(lambda x: f"({x[0]} ? {x[1]} : {x[2]})")


def _call(template: str, *args: SearchStrategy[str]) -> SearchStrategy[str]:
    return st.tuples(*args).map(lambda xs: template.format(*xs))


def _literal_list(t: str) -> SearchStrategy[str]:
    return st.lists(LITERALS[t], min_size=1, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]")


@functools.lru_cache(maxsize=None)
def expressions(t: str, depth: int = 4, native: bool = False) -> SearchStrategy[str]:
    """The text of a well-typed expression of static type ``t`` (or dyn),
    nested at most ``depth`` deep."""
    leaves = _leaves(t)
    if depth == 0:
        return leaves

    def sub(u: str) -> SearchStrategy[str]:
        return expressions(u, depth - 1, native)

    same = [_ternary(sub("bool"), sub(t), sub(t))]
    if t == "bool":
        composite = same + _bool_composites(sub, native)
    elif t == "string":
        composite = list(same)
        if not native:
            composite += [_binary("+", sub("string"), sub("string")), _call("string({})", sub("int"))]
    else:
        composite = same + _number_composites(t, sub, native)
    # Half the draws at each level are leaves, which bounds the size.
    return st.one_of(leaves, st.one_of(*composite))


def _bool_composites(sub, native: bool) -> list[SearchStrategy[str]]:
    out = [
        sub("bool").map(lambda b: f"!{b}"),
        _binary("&&", sub("bool"), sub("bool")),
        _binary("||", sub("bool"), sub("bool")),
        # Equality needs one static type on both sides (CEL's checker).
        st.sampled_from(TYPES).flatmap(lambda u: _equality(sub(u), sub(u))),
        # Ordering: numbers across their types, strings, bools.
        st.tuples(st.sampled_from(NUMERIC), st.sampled_from(NUMERIC)).flatmap(
            lambda uv: _ordering(sub(uv[0]), sub(uv[1]))
        ),
        _ordering(sub("string"), sub("string")),
        _ordering(sub("bool"), sub("bool")),
        st.tuples(st.sampled_from(("startsWith", "endsWith", "contains")), sub("string"), sub("string")).map(
            lambda x: f"{x[1]}.{x[0]}({x[2]})"
        ),
        st.tuples(sub("string"), st.sampled_from(REGEXES)).map(lambda x: f'{x[0]}.matches("{x[1]}")'),
        st.sampled_from(EVENT_KEYS).map(lambda k: f"has(event.{k})"),
        st.tuples(sub("string"), _literal_list("string")).map(lambda x: f"({x[0]} in {x[1]})"),
        st.tuples(sub("int"), _literal_list("int")).map(lambda x: f"({x[0]} in {x[1]})"),
    ]
    if not native:
        out += [
            # Heterogeneous equality through dyn; lists built at run time.
            st.tuples(st.sampled_from(TYPES), st.sampled_from(TYPES), st.sampled_from(("==", "!="))).flatmap(
                lambda x: _binary(x[2], sub(x[0]).map(lambda e: f"dyn({e})"), sub(x[1]).map(lambda e: f"dyn({e})"))
            ),
            st.tuples(sub("int"), sub("int"), sub("int")).map(lambda x: f"({x[0]} in [{x[1]}, {x[2]}])"),
            st.tuples(sub("double"), _literal_list("double")).map(lambda x: f"({x[0]} in {x[1]})"),
        ]
    return out


def _equality(left: SearchStrategy[str], right: SearchStrategy[str]) -> SearchStrategy[str]:
    return st.tuples(left, st.sampled_from(("==", "!=")), right).map(lambda x: f"({x[0]} {x[1]} {x[2]})")


def _ordering(left: SearchStrategy[str], right: SearchStrategy[str]) -> SearchStrategy[str]:
    return st.tuples(left, st.sampled_from(("<", "<=", ">", ">=")), right).map(lambda x: f"({x[0]} {x[1]} {x[2]})")


def _number_composites(t: str, sub, native: bool) -> list[SearchStrategy[str]]:
    ops = ("+", "-", "*", "/") + (("%",) if t != "double" else ())  # CEL has no double %
    out = [st.tuples(sub(t), st.sampled_from(ops), sub(t)).map(lambda x: f"({x[0]} {x[1]} {x[2]})")]
    if t != "uint":  # no unary minus on uint
        out.append(sub(t).map(_negate))
    if t == "int":
        out += [
            sub("string").map(lambda s: f"size({s})"),
            st.sampled_from(NUMERIC).flatmap(lambda u: sub(u).map(lambda e: f"int({e})")),
        ]
    if t == "double":
        out.append(st.sampled_from(NUMERIC).flatmap(lambda u: sub(u).map(lambda e: f"double({e})")))
    if not native:
        out += {
            "int": [sub("string").map(lambda s: f"int({s})"), sub("string").map(lambda s: f"{s}.size()")],
            "uint": [sub("int").map(lambda e: f"uint({e})"), sub("double").map(lambda e: f"uint({e})")],
            "double": [st.sampled_from(('"NaN"', '"inf"', '"-inf"', '"-0.0"')).map(lambda s: f"double({s})")],
        }[t]
    return out


def _negate(e: str) -> str:
    # "--9223372036854775808" would negate a literal out of int64's range.
    return f"-({e})" if e.startswith("-") else f"-{e}"


def typed_expressions(*, depth: int = 4, native: bool = False) -> SearchStrategy[tuple[str, str]]:
    """(static type, expression text); bool, the rules' type, twice as often.
    (Drawn through ``flatmap``: a ``one_of`` over the five strategies draws
    strings and doubles far less often than the others.)"""
    return st.sampled_from(("bool",) + TYPES).flatmap(lambda t: expressions(t, depth, native).map(lambda e: (t, e)))


DYN_NUMBERS = ("event.amount", "event.count", "event.big")


def numeric_comparisons() -> SearchStrategy[str]:
    """``x <op> y`` between numeric leaves of any two numeric types (equality
    only where the checker allows it: one type, or a dyn ``event`` field),
    and ``x in [ints]``: where the VM's exact C comparisons meet the
    reference's Python ones. Activations put edge values in the leaves."""

    def leaf(t: str) -> SearchStrategy[str]:
        return st.one_of(LITERALS[t], st.sampled_from(VARIABLES[t]), st.sampled_from(DYN_NUMBERS))

    def comparison(tu: tuple[str, str]) -> SearchStrategy[str]:
        ops = ("==", "!=", "<", "<=", ">", ">=") if tu[0] == tu[1] else ("<", "<=", ">", ">=")
        return st.tuples(leaf(tu[0]), st.sampled_from(ops), leaf(tu[1])).map(" ".join)

    pairs = st.tuples(st.sampled_from(NUMERIC), st.sampled_from(NUMERIC))
    dyn_equality = st.tuples(
        st.sampled_from(DYN_NUMBERS), st.sampled_from(("==", "!=")), st.sampled_from(NUMERIC).flatmap(leaf)
    ).map(" ".join)
    membership = st.tuples(st.sampled_from((*DYN_NUMBERS, "count")), _literal_list("int")).map(
        lambda x: f"{x[0]} in {x[1]}"
    )
    return st.one_of(pairs.flatmap(comparison), dyn_equality, membership)


# --- activations ----------------------------------------------------------

# Edge values half the time.
_ints = st.one_of(
    st.sampled_from(INT_EDGES), st.sampled_from(INT_EDGES), st.integers(-20, 20), st.integers(INT64_MIN, INT64_MAX)
)
_uints = st.one_of(
    st.sampled_from(UINT_EDGES), st.sampled_from(UINT_EDGES), st.integers(0, 20), st.integers(0, UINT64_MAX)
)
_doubles = st.one_of(
    st.sampled_from(DOUBLE_EDGES + DOUBLE_SPECIALS),
    st.sampled_from(DOUBLE_EDGES + DOUBLE_SPECIALS),
    st.floats(-100, 100).map(lambda d: round(d, 1)),
    st.floats(),
)

RIGHT_TYPED: dict[str, SearchStrategy[object]] = {
    "bool": st.booleans(),
    "int": _ints,
    "uint": _uints.map(UInt),
    "double": _doubles,
    "string": _strings(),
}

# Any value, of any type the API might be handed: CEL scalars, ints outside
# int64 (which the native VM leaves to the reference path), containers.
ANY_VALUE: SearchStrategy[object] = st.one_of(
    st.booleans(),
    _ints,
    _uints.map(UInt),
    _doubles,
    _strings(),
    st.none(),
    st.sampled_from((2**63, -(2**63) - 1, 2**64, 2**70)),
    st.just(b"ab"),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(("a", "b")), st.integers(0, 3), max_size=2),
)


def field_value(t: str, *, wrong_types: bool = False) -> SearchStrategy[object]:
    """A value for a field declared ``t``; with ``wrong_types``, sometimes of
    another type (a JSON int for a double, a plain int for a uint, anything)."""
    right = RIGHT_TYPED[t]
    if not wrong_types:
        return right
    if t == "double":
        right = st.one_of(right, _ints)  # JSON drops the ".0"
    if t == "uint":
        right = st.one_of(right, _uints)  # a plain Python int
    return st.one_of(right, right, right, ANY_VALUE)


@st.composite
def events(draw, keys: tuple[str, ...] = EVENT_KEYS, *, wrong_types: bool = True) -> dict[str, object]:
    """An event: a subset of the schema's fields (others missing), plus
    undeclared keys holding anything."""
    event: dict[str, object] = {}
    for k in keys:
        if draw(st.integers(0, 9)) == 0:
            continue  # missing
        event[k] = draw(field_value(SCHEMA[k], wrong_types=wrong_types) if k in SCHEMA else ANY_VALUE)
    return event


@st.composite
def activations(draw, *, wrong_types: bool = False) -> dict[str, object]:
    """Variables for DECLARATIONS: the fields (some missing; with
    ``wrong_types``, some of another runtime type) and ``event``, whose
    values are ``dyn`` and so may be anything."""
    act = draw(events(tuple(SCHEMA), wrong_types=wrong_types))
    if draw(st.integers(0, 9)) != 0:
        act["event"] = draw(events())
    return act
