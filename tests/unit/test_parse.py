"""The CEL parser: structure, literals, macros, positions, errors, limits.

ASTs are compared through :func:`render`, a canonical text where every
operator is spelled as its reserved function name (``_+_(a, b)``), so a
table row shows exactly the tree expected.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudcore.cel.ast import (
    ACCU_VAR,
    Call,
    Comprehension,
    CreateList,
    CreateMap,
    CreateStruct,
    Ident,
    Literal,
    Select,
    walk,
)
from fraudcore.cel.parse import parse
from fraudcore.cel.values import UInt
from fraudcore.errors import RuleError


def render(e) -> str:
    """Canonical text of an AST; comprehensions as ``__comp__(...)``."""
    match e:
        case Literal(value=v, kind=kind):
            return _render_literal(v, kind)
        case Ident(name=name):
            return name
        case Select(operand=o, field=f, test_only=True):
            return f"has({render(o)}.{f})"
        case Select(operand=o, field=f):
            return f"{render(o)}.{f}"
        case Call(function=fn, args=args, target=None):
            return f"{fn}({', '.join(map(render, args))})"
        case Call(function=fn, args=args, target=t):
            return f"{render(t)}.{fn}({', '.join(map(render, args))})"
        case CreateList(elements=els):
            return f"[{', '.join(map(render, els))}]"
        case CreateMap(entries=entries):
            return "{" + ", ".join(f"{render(k)}: {render(v)}" for k, v in entries) + "}"
        case CreateStruct(type_name=name, fields=fields):
            return name + "{" + ", ".join(f"{f}: {render(v)}" for f, v in fields) + "}"
        case Comprehension():
            parts = [e.iter_var, render(e.iter_range), e.accu_var, render(e.accu_init)]
            parts += [render(e.loop_condition), render(e.loop_step), render(e.result)]
            return f"__comp__({', '.join(parts)})"
    raise AssertionError(f"not an AST node: {e!r}")


def _render_literal(v, kind: str) -> str:
    expected_type = {"int": int, "uint": UInt, "double": float, "string": str, "bytes": bytes, "bool": bool}
    if kind == "null_type":
        assert v is None
        return "null"
    assert type(v) is expected_type[kind], (v, kind)
    if kind == "bool":
        return "true" if v else "false"
    if kind == "uint":
        return f"{int(v)}u"
    if kind in ("string", "double"):
        return json.dumps(v, ensure_ascii=False) if kind == "string" else repr(v)
    return repr(v)  # int, bytes


def depth(e) -> int:
    """AST depth, iteratively (the trees under test may be deep)."""
    best, stack = 0, [(e, 1)]
    while stack:
        node, d = stack.pop()
        best = max(best, d)
        children = []
        match node:
            case Select():
                children = [node.operand]
            case Call():
                children = node.args + ([node.target] if node.target is not None else [])
            case CreateList():
                children = node.elements
            case CreateMap():
                children = [x for kv in node.entries for x in kv]
            case CreateStruct():
                children = [v for _, v in node.fields]
            case Comprehension():
                children = [node.iter_range, node.accu_init, node.loop_condition, node.loop_step, node.result]
        stack.extend((c, d + 1) for c in children)
    return best


def errors(source: str, **kw) -> list[tuple[int, int, str]]:
    with pytest.raises(RuleError) as info:
        parse(source, **kw)
    return [(d.line, d.column, d.message) for d in info.value.diagnostics]


def first_error(source: str, **kw) -> str:
    return errors(source, **kw)[0][2]


# --- structure ---------------------------------------------------------------


@pytest.mark.parametrize(
    "source, tree",
    [
        # precedence and associativity
        ("a || b && c", "_||_(a, _&&_(b, c))"),
        ("a && b || c", "_||_(_&&_(a, b), c)"),
        ("!a == b", "_==_(!_(a), b)"),
        ("-a * b", "_*_(-_(a), b)"),
        ("a ? b : c ? d : e", "_?_:_(a, b, _?_:_(c, d, e))"),
        ("a || b ? c : d", "_?_:_(_||_(a, b), c, d)"),
        ("1 + 2 * 3 < 4 == true", "_==_(_<_(_+_(1, _*_(2, 3)), 4), true)"),
        ("1 - 2 - 3", "_-_(_-_(1, 2), 3)"),
        ("8 / 4 % 3 * 2", "_*_(_%_(_/_(8, 4), 3), 2)"),
        ("a < b < c", "_<_(_<_(a, b), c)"),
        ("(1 + 2) * 3", "_*_(_+_(1, 2), 3)"),
        ("a in b == c in d", "@in(_==_(@in(a, b), c), d)"),
        ("a in [1, 2] && x", "_&&_(@in(a, [1, 2]), x)"),
        ("a >= b != a <= b", "_<=_(_!=_(_>=_(a, b), a), b)"),  # one level, left-assoc
        # balanced && / || chains (cel-go's balancer)
        ("a && b && c", "_&&_(_&&_(a, b), c)"),
        ("a && b && c && d", "_&&_(_&&_(a, b), _&&_(c, d))"),
        ("a || b || c || d || e", "_||_(_||_(_||_(a, b), c), _||_(d, e))"),
        ("(a && b) && c", "_&&_(_&&_(a, b), c)"),
        ("a && (b && c)", "_&&_(a, _&&_(b, c))"),
        ("a && b || c && d || e", "_||_(_||_(_&&_(a, b), _&&_(c, d)), e)"),
        # unary runs: even counts cancel, literals take a lone '-' as sign
        ("!a", "!_(a)"),
        ("!!a", "a"),
        ("!!!a", "!_(a)"),
        ("-a", "-_(a)"),
        ("--a", "a"),
        ("-1", "-1"),
        ("--1", "1"),
        ("---1", "-_(1)"),
        ("- 1", "-1"),
        ("-(1)", "-_(1)"),
        ("-1u", "-_(1u)"),
        ("-1.5", "-1.5"),
        ("!-1", "!_(-1)"),
        ("1 - -1", "_-_(1, -1)"),
        ("1--1", "_-_(1, -1)"),
        ("-1.abs()", "-1.abs()"),
        ("!a.b", "!_(a.b)"),
        ("-a[0]", "-_(_[_](a, 0))"),
        # members, indexes, calls
        ("a.b.c", "a.b.c"),
        (".a.b", ".a.b"),
        ("a[0][1]", "_[_](_[_](a, 0), 1)"),
        ("a.b[c.d]", "_[_](a.b, c.d)"),
        ("f()", "f()"),
        ("f(x, y)", "f(x, y)"),
        (".f(x)", ".f(x)"),
        ("a.f()", "a.f()"),
        ("a.b.f(1, 2).g", "a.b.f(1, 2).g"),
        ("'abc'.size()", '"abc".size()'),
        ("size([1])", "size([1])"),
        ("a.package", "a.package"),
        ("m.`content-type`", "m.content-type"),
        ("m.`foo.txt`.`/a b`", "m.foo.txt./a b"),
        # aggregates, trailing commas
        ("[]", "[]"),
        ("[,]", "[]"),
        ("[1, 2, 3,]", "[1, 2, 3]"),
        ("[[1], []]", "[[1], []]"),
        ("{}", "{}"),
        ("{'a': 1, 2: [b],}", '{"a": 1, 2: [b]}'),
        ("{a: {b: c}}", "{a: {b: c}}"),
        ("{1:2}[1]", "_[_]({1: 2}, 1)"),
        ("Foo{a: 1, `b-c`: 2,}", "Foo{a: 1, b-c: 2}"),
        ("a.b.Foo{}.x", "a.b.Foo{}.x"),
        (".a.Foo{}", ".a.Foo{}"),
        # comments and whitespace
        ("1 // one\n+ 2 // two", "_+_(1, 2)"),
        ("\t1\r\n*\f2", "_*_(1, 2)"),
    ],
)
def test_structure(source: str, tree: str) -> None:
    assert render(parse(source)) == tree


# --- literals ----------------------------------------------------------------


@pytest.mark.parametrize(
    "source, value, kind",
    [
        ("0", 0, "int"),
        ("42", 42, "int"),
        ("007", 7, "int"),
        ("0x55555555", 0x55555555, "int"),
        ("0xFFff", 0xFFFF, "int"),
        ("-0x10", -16, "int"),
        ("9223372036854775807", 2**63 - 1, "int"),
        ("-9223372036854775808", -(2**63), "int"),
        ("0x7fffffffffffffff", 2**63 - 1, "int"),
        ("-0x8000000000000000", -(2**63), "int"),
        ("0u", UInt(0), "uint"),
        ("123456789U", UInt(123456789), "uint"),
        ("18446744073709551615u", UInt(2**64 - 1), "uint"),
        ("0xFFFFFFFFFFFFFFFFu", UInt(2**64 - 1), "uint"),
        ("0.0", 0.0, "double"),
        ("1.5", 1.5, "double"),
        (".5", 0.5, "double"),
        ("1e3", 1000.0, "double"),
        ("0e+0", 0.0, "double"),
        ("2.5E-2", 0.025, "double"),
        ("-2.3e+1", -23.0, "double"),
        ("1e-400", 0.0, "double"),
        ("true", True, "bool"),
        ("false", False, "bool"),
        ("null", None, "null_type"),
        # strings: quoting forms
        ("''", "", "string"),
        ('""', "", "string"),
        ("'\"'", '"', "string"),
        ('"\'"', "'", "string"),
        ("'''a\nb'''", "a\nb", "string"),
        ('"""x " "" y"""', 'x " "" y', "string"),
        ("'''it's'''", "it's", "string"),
        ("r''", "", "string"),
        ('r""""""', "", "string"),
        ("r'\\n\\q'", "\\n\\q", "string"),
        ("R'\\'", "\\", "string"),
        ("r'''a\\'b\n'''", "a\\'b\n", "string"),
        # escapes
        ("'\\a\\b\\f\\n\\r\\t\\v\\\\\\?\\\"\\'\\`'", "\a\b\f\n\r\t\v\\?\"'`", "string"),
        ("'\\x41\\X42'", "AB", "string"),
        ("'\\xff'", "\xff", "string"),
        ("'\\101\\377'", "A\xff", "string"),
        ("'\\u270c'", "\u270c", "string"),
        ("'\\U0001f431'", "\U0001f431", "string"),
        ("'πέντε 🐱'", "πέντε 🐱", "string"),
        ("'''\\n'''", "\n", "string"),
        # bytes
        ("b''", b"", "bytes"),
        ("B\"abc\"", b"abc", "bytes"),
        ("b'\\000\\xff'", b"\x00\xff", "bytes"),
        ("b'\\377'", b"\xff", "bytes"),
        ("b'ÿ'", "ÿ".encode(), "bytes"),
        ("b'\\u00ff'", b"\xc3\xbf", "bytes"),
        ("b'\\U0001f431'", "\U0001f431".encode(), "bytes"),
        ("br'\\x00'", b"\\x00", "bytes"),
        ("Rb'\\n'", b"\\n", "bytes"),
        ("bR'''a\n'''", b"a\n", "bytes"),
        ("b'''\\t'''", b"\t", "bytes"),
    ],
)
def test_literal(source: str, value: object, kind: str) -> None:
    e = parse(source)
    assert isinstance(e, Literal)
    assert (e.kind, e.value) == (kind, value)
    assert type(e.value) is type(value)


# --- macros ------------------------------------------------------------------

A = ACCU_VAR


@pytest.mark.parametrize(
    "source, tree",
    [
        ("has(a.b)", "has(a.b)"),
        ("has(a.b.c)", "has(a.b.c)"),
        ("has({'a': 1}.a)", 'has({"a": 1}.a)'),
        ("has(m.`content-type`)", "has(m.content-type)"),
        (
            "l.all(x, x > 0)",
            f"__comp__(x, l, {A}, true, @not_strictly_false({A}), _&&_({A}, _>_(x, 0)), {A})",
        ),
        (
            "l.exists(x, p)",
            f"__comp__(x, l, {A}, false, @not_strictly_false(!_({A})), _||_({A}, p), {A})",
        ),
        (
            "l.exists_one(x, p)",
            f"__comp__(x, l, {A}, 0, true, _?_:_(p, _+_({A}, 1), {A}), _==_({A}, 1))",
        ),
        ("l.map(x, x * 2)", f"__comp__(x, l, {A}, [], true, _+_({A}, [_*_(x, 2)]), {A})"),
        ("l.map(x, p, t)", f"__comp__(x, l, {A}, [], true, _?_:_(p, _+_({A}, [t]), {A}), {A})"),
        ("l.filter(x, p)", f"__comp__(x, l, {A}, [], true, _?_:_(p, _+_({A}, [x]), {A}), {A})"),
        (
            "[1].all(x, [2].exists(y, y == x))",
            f"__comp__(x, [1], {A}, true, @not_strictly_false({A}), _&&_({A}, "
            f"__comp__(y, [2], {A}, false, @not_strictly_false(!_({A})), _||_({A}, _==_(y, x)), {A})), {A})",
        ),
        # not macro-shaped: plain calls
        ("has(a, b)", "has(a, b)"),
        ("l.all(x)", "l.all(x)"),
        ("l.map(x, y, z, w)", "l.map(x, y, z, w)"),
        ("all(l, x, p)", "all(l, x, p)"),
        (".has(a.b)", ".has(a.b)"),
    ],
)
def test_macros(source: str, tree: str) -> None:
    assert render(parse(source)) == tree


@pytest.mark.parametrize(
    "source, tree",
    [
        ("has(a.b)", "has(a.b)"),
        ("has(a)", "has(a)"),
        ("l.all(x, p)", "l.all(x, p)"),
        ("l.map(1, 2)", "l.map(1, 2)"),
        ("l.filter(x, p)", "l.filter(x, p)"),
    ],
)
def test_macros_disabled(source: str, tree: str) -> None:
    e = parse(source, macros=False)
    assert render(e) == tree
    assert not any(isinstance(n, Comprehension) or getattr(n, "test_only", False) for n in walk(e))


@pytest.mark.parametrize(
    "source, column, message",
    [
        ("has(a)", 5, "has() takes a field selection such as has(event.device_id)"),
        ("has(a[0])", 5, "has() takes a field selection such as has(event.device_id)"),
        ("has(a.f())", 5, "has() takes a field selection such as has(event.device_id)"),
        ("l.all(a.b, true)", 7, "all() takes a simple variable name as its first argument"),
        ("l.exists(1, true)", 10, "exists() takes a simple variable name as its first argument"),
        ("l.map(.x, x)", 7, "map() takes a simple variable name as its first argument"),
        ("l.filter(x + 1, x)", 10, "filter() takes a simple variable name as its first argument"),
    ],
)
def test_macro_errors(source: str, column: int, message: str) -> None:
    assert errors(source) == [(1, column, message)]


# --- positions ---------------------------------------------------------------


def _positions(source: str) -> dict[str, int]:
    return {render(n): n.pos for n in walk(parse(source))}


@pytest.mark.parametrize(
    "source, node, pos",
    [
        ("a + b", "_+_(a, b)", 2),
        ("a + b", "b", 4),
        ("x  &&  y", "_&&_(x, y)", 3),
        ("a ? b : c", "_?_:_(a, b, c)", 2),
        ("a[1]", "_[_](a, 1)", 1),
        ("a.b", "a.b", 1),
        ("a.f(x)", "a.f(x)", 1),
        ("  f(x)", "f(x)", 2),
        (" .f(x)", ".f(x)", 1),
        ("!!!x", "!_(x)", 0),
        ("1 + -2", "-2", 4),
        ("[1]", "[1]", 0),
        (" {1: 2}", "{1: 2}", 1),
        ("  has(a.b)", "has(a.b)", 2),
        ("a.b.C{}", "a.b.C{}", 0),
        ("l.all(x, x)", "__comp__(x, l, @result, true, @not_strictly_false(@result), _&&_(@result, x), @result)", 1),
        ("x in y", "@in(x, y)", 2),
        ("'é' + 'π'", '"π"', 6),
    ],
)
def test_positions(source: str, node: str, pos: int) -> None:
    assert _positions(source)[node] == pos


# --- errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, expected",
    [
        ("", [(1, 1, "unexpected end of input, expected an expression")]),
        ("f(1, )", [(1, 6, "unexpected token ')', expected an expression")]),
        ("1 +", [(1, 4, "unexpected end of input, expected an expression")]),
        ("(1", [(1, 3, "unexpected end of input, expected ')'")]),
        ("a b", [(1, 3, "unexpected token 'b', expected an operator or the end of the expression")]),
        ("[1 2]", [(1, 4, "unexpected token '2', expected ',' or ']'")]),
        ("{1 2}", [(1, 4, "unexpected token '2', expected ':'")]),
        ("f(1,)", [(1, 5, "unexpected token ')', expected an expression")]),
        ("a ? b", [(1, 6, "unexpected end of input, expected ':'")]),
        ("a ? b ? c : d : e", [(1, 7, "unexpected token '?', expected ':'")]),
        ("a.", [(1, 3, "unexpected end of input, expected a field name")]),
        ("a.in", [(1, 3, "unexpected token 'in', expected a field name")]),
        ("a.1", [(1, 2, "unexpected token '.1', expected an operator or the end of the expression")]),
        ("!-a", [(1, 2, "unexpected token '-', expected an expression")]),
        ("-!a", [(1, 2, "unexpected token '!', expected an expression")]),
        ("a.`b`(1)", [(1, 6, "unexpected token '(', expected an operator or the end of the expression")]),
        ("`b`", [(1, 1, "quoted name `b` is only allowed as a field name, after '.'")]),
        ("a = b", [(1, 3, "unexpected character '=', did you mean '=='?")]),
        ("a & b", [(1, 3, "unexpected character '&', did you mean '&&'?")]),
        ("a # b", [(1, 3, "unexpected character '#'")]),
        ("a.`b", [(1, 3, "invalid quoted field name: use letters, digits, '_', '.', '-', '/' or spaces between backquotes")]),
        ("a[0](1)", [(1, 5, "unexpected token '(', expected an operator or the end of the expression")]),
        ("f(x){}", [(1, 5, "unexpected token '{', expected an operator or the end of the expression")]),
        ("1.", [(1, 3, "unexpected end of input, expected a field name")]),
        ("1e", [(1, 2, "unexpected token 'e', expected an operator or the end of the expression")]),
        ("a ?. b", [(1, 7, "unexpected end of input, expected ':'")]),
        # literal ranges
        ("9223372036854775808", [(1, 1, "integer literal out of range: 9223372036854775808")]),
        ("-9223372036854775809", [(1, 1, "integer literal out of range: -9223372036854775809")]),
        ("--9223372036854775808", [(1, 3, "integer literal out of range: 9223372036854775808")]),
        ("0x8000000000000000", [(1, 1, "integer literal out of range: 0x8000000000000000")]),
        ("18446744073709551616u", [(1, 1, "unsigned integer literal out of range: 18446744073709551616u")]),
        ("1e309", [(1, 1, "double literal out of range: 1e309")]),
        ("1" * 5000, [(1, 1, "integer literal out of range: 111111111111111111111111111...")]),
        # strings
        ("'\\q'", [(1, 2, "invalid escape sequence '\\q' in string literal")]),
        ("b'\\q'", [(1, 3, "invalid escape sequence '\\q' in bytes literal")]),
        ("'\\x4'", [(1, 2, "invalid escape sequence '\\x4' in string literal")]),
        ("'\\u12g4'", [(1, 2, "invalid escape sequence '\\u12' in string literal")]),
        ("'\\400'", [(1, 2, "invalid escape sequence '\\4' in string literal")]),
        ("'\\ud800'", [(1, 2, "invalid Unicode code point in escape sequence '\\ud800' in string literal")]),
        ("'\\U00110000'", [(1, 2, "invalid Unicode code point in escape sequence '\\U00110000' in string literal")]),
        ("'abc", [(1, 1, "unterminated string literal")]),
        ("'a\nc'", [(1, 1, "unterminated string literal"), (2, 2, "unterminated string literal")]),
        ("'a\nb'", [(1, 1, "unterminated string literal"), (2, 1, "unterminated bytes literal")]),
        ("[1, 'a, 2]", [(1, 5, "unterminated string literal")]),
        ("'''abc''", [(1, 1, "unterminated string literal")]),
        ("b\"abc", [(1, 1, "unterminated bytes literal")]),
        # reserved words
        ("package", [(1, 1, "reserved identifier 'package'")]),
        ("x + while", [(1, 5, "reserved identifier 'while'")]),
        ("if(x)", [(1, 1, "reserved identifier 'if'")]),
        ("in", [(1, 1, "unexpected token 'in', expected an expression")]),
        ("null(1)", [(1, 5, "unexpected token '(', expected an operator or the end of the expression")]),
        ("x {1: 2}", [(1, 4, "unexpected token '1', expected a field name")]),
    ],
)
def test_errors(source: str, expected: list[tuple[int, int, str]]) -> None:
    assert errors(source) == expected


def test_errors_are_located_in_multiline_input() -> None:
    source = "a &&\n  b ||\n    f(1,\n      )"
    assert errors(source) == [(4, 7, "unexpected token ')', expected an expression")]
    with pytest.raises(RuleError) as info:
        parse(source)
    d = info.value.diagnostics[0]
    assert (d.offset, d.source_line) == (len(source) - 1, "      )")
    assert "^" in str(info.value)


def test_several_errors_are_reported() -> None:
    source = "package + '\\q' + 99999999999999999999 +\n  b'\\xZ' + (1"
    assert errors(source) == [
        (1, 1, "reserved identifier 'package'"),
        (1, 12, "invalid escape sequence '\\q' in string literal"),
        (1, 18, "integer literal out of range: 99999999999999999999"),
        (2, 5, "invalid escape sequence '\\x' in bytes literal"),
        (2, 14, "unexpected end of input, expected ')'"),
    ]


# --- limits ------------------------------------------------------------------

NESTED = "expression nesting exceeds the limit of 100"


@pytest.mark.parametrize(
    "source",
    [
        "(" * 100000,
        "[" * 50000,
        "{1:" * 30000,
        "f(" * 30000,
        "-" * 99000 + "1",
        "!" * 99000 + "true",
        "-" * 99000 + "x",
        "a." * 49000 + "b",
        "1 + " * 24000 + "1",
        "a" + "[0]" * 30000,
        "a" + ".f()" * 20000,
        "a ? b : " * 12000 + "c",
        "x.all(y, " * 5000,
        "(" * 100 + "1" + ")" * 100,
        "[" * 100 + "]" * 100,
    ],
    ids=lambda s: s[:12],
)
def test_nesting_limit(source: str) -> None:
    assert first_error(source) == NESTED


@pytest.mark.parametrize(
    "source",
    [
        "(" * 99 + "1" + ")" * 99,
        "[" * 99 + "]" * 99,
        "!" * 99 + "true",
        "a." * 98 + "b",
        "1 + " * 98 + "1",
        "a.f(" * 98 + "1" + ")" * 98,
        "a[" * 98 + "1" + "]" * 98,
        "x.all(y, " * 49 + "y" + ")" * 49,
        " && ".join(["a"] * 10000),
        " || ".join(["a > 1 && b"] * 3000),
    ],
    ids=lambda s: s[:12],
)
def test_within_limit(source: str) -> None:
    assert depth(parse(source)) <= 100


@pytest.mark.parametrize("max_depth", [1, 2, 5, 20])
@pytest.mark.parametrize(
    "source",
    ["(((((((1)))))))", "[[[[[[[[]]]]]]]]", "a.b.c.d.e.f.g.h", "1+2+3+4+5+6+7+8", "l.all(x, l.all(y, x))", "!(!(!(!x)))"],
)
def test_max_depth_bounds_the_ast(source: str, max_depth: int) -> None:
    try:
        e = parse(source, max_depth=max_depth)
    except RuleError as err:
        assert err.diagnostics[0].message == f"expression nesting exceeds the limit of {max_depth}"
    else:
        assert depth(e) <= max_depth


def test_max_length() -> None:
    assert errors("1" * 200000) == [(1, 100001, "expression is 200000 characters long, the limit is 100000")]
    assert errors("x + y", max_length=3) == [(1, 4, "expression is 5 characters long, the limit is 3")]
    assert render(parse("x + y", max_length=5)) == "_+_(x, y)"


def test_huge_max_depth_never_raises_recursion_error() -> None:
    # The Python stack, not max_depth, is then the limit: still a RuleError.
    source = "(" * 5000 + "1" + ")" * 5000
    assert "too deep" in first_error(source, max_depth=10**6)


# --- property: the canonical rendering parses back to the same tree ---------

_leaf = st.one_of(
    st.integers(min_value=0, max_value=2**63 - 1).map(str),
    st.sampled_from(["a", "b", "x1", "_y", "true", "false"]),
)


def _compound(children):
    binary = st.tuples(st.sampled_from(["+", "*", "&&", "||"]), children, children)
    return st.one_of(binary, st.tuples(st.just("!"), children))


_trees = st.recursive(_leaf, _compound, max_leaves=25)


def _source(t) -> str:
    """Fully parenthesized CEL source of a generated tree."""
    if isinstance(t, str):
        return t
    if t[0] == "!":
        return f"!({_source(t[1])})"
    return f"({_source(t[1])} {t[0]} {_source(t[2])})"


def _expected(t) -> str:
    if isinstance(t, str):
        return t
    if t[0] == "!":
        return f"!_({_expected(t[1])})"
    return f"_{t[0]}_({_expected(t[1])}, {_expected(t[2])})"


@settings(max_examples=200, deadline=None)
@given(_trees)
def test_roundtrip(tree) -> None:
    assert render(parse(_source(tree))) == _expected(tree)


@pytest.mark.parametrize(
    "source",
    [
        "a.f(" * 98 + "1" + ")" * 98,
        "f(" * 98 + "1" + ")" * 98,
        "{1:" * 98 + "1" + "}" * 98,
        "A{a:" * 98 + "1" + "}" * 98,
        "a[" * 98 + "1" + "]" * 98,
        "-(" * 49 + "1" + ")" * 49,
    ],
    ids=lambda s: s[:8],
)
def test_stack_headroom(source: str) -> None:
    # max_depth 100 must fit well inside the default limit of 1000 frames,
    # whatever the caller's own stack: parse it with only 700 allowed.
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(700)
    try:
        assert depth(parse(source)) <= 100
    finally:
        sys.setrecursionlimit(limit)
