"""The ``fraudcore.cel`` API of SPEC §2, run over both evaluators.

The ``evaluator`` fixture (ids ``ref`` and ``native``) runs every test once on
the reference interpreter and once through ``Program.evaluate``, which uses
the native VM where it can: any deviation from the reference is a bug.
"""

import datetime as dt
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import fraudcore
from fraudcore import RuleError, cel
from fraudcore.cel import EvaluationError, Type, UInt

FIELDS = {"amount": "double", "country": "string", "age": "int", "n": "uint", "flag": "bool", "tags": "list(string)"}


@pytest.fixture(params=["ref", "native"])
def evaluator(request):
    def run(expr, activation=None, declarations=FIELDS, **kw):
        prog = cel.compile(expr, declarations, **kw)
        if request.param == "ref":
            return prog.evaluate_reference(activation)
        return prog.evaluate(activation)

    run.mode = request.param
    return run


def test_spec_examples(evaluator):
    assert evaluator('amount > 1000.0 && country in ["KP", "IR"]', {"amount": 1500.0, "country": "KP"}) is True
    assert cel.evaluate("size([1, 2, 3]) * 2") == 6
    prog = cel.compile('amount > 1000.0 && country in ["KP", "IR"]', {"amount": "double", "country": "string"})
    assert prog.native == (fraudcore._native.vm is not None)


@pytest.mark.parametrize(
    "expr, expected",
    [
        ("1 + 2 * 3", 7),
        ("7 / 2", 3),
        ("-7 / 2", -3),
        ("-7 % 2", -1),
        ("3u + 4u", UInt(7)),
        ("1.5 * 2.0", 3.0),
        ("'abc' + 'def'", "abcdef"),
        ("b'ab' + b'c'", b"abc"),
        ("[1, 2] + [3]", [1, 2, 3]),
        ("{'a': 1}['a']", 1),
        ("1 < 1.5 && 2u > 1 && 1.0 <= 1", True),
        ("null == null", True),
        ("'a' < 'b'", True),
        ("type(1u) == uint", True),
        ("[1, 2, 3].exists(x, x > 2)", True),
        ("[1, 2, 3].all(x, x > 0)", True),
        ("[1, 2, 3].exists_one(x, x > 1)", False),
        ("[1, 2, 3].map(x, x * 2)", [2, 4, 6]),
        ("[1, 2, 3].filter(x, x % 2 == 1)", [1, 3]),
        ("'hello'.startsWith('he') && 'hello'.endsWith('lo') && 'hello'.contains('ell')", True),
        ("'a1b2'.matches('[0-9]b')", True),
        ("size('héllo')", 5),
        ("int(3.9) + int(-3.9)", 0),
        ("double(3) / 2.0", 1.5),
        ("string(1.5)", "1.5"),
        ("true ? 'yes' : 'no'", "yes"),
    ],
)
def test_values(evaluator, expr, expected):
    result = evaluator(expr)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    "expr",
    [
        "9223372036854775807 + 1",
        "-9223372036854775808 - 1",
        "1 / 0",
        "1 % 0",
        "0u - 1u",
        "18446744073709551615u + 1u",
        "[1][5]",
        "{'a': 1}['b']",
        "int(1e100)",
        "'x'.matches(age)",
    ],
)
def test_errors_raise(evaluator, expr):
    with pytest.raises(EvaluationError):
        evaluator(expr, {"age": 1}, declarations={"age": "dyn"})


@pytest.mark.parametrize(
    "expr, expected",
    [
        # Errors are values: && and || absorb them when the other side decides.
        ("1 / 0 == 1 && false", False),
        ("false && 1 / 0 == 1", False),
        ("1 / 0 == 1 || true", True),
        ("true || 1 / 0 == 1", True),
        ("missing > 1 || true", True),
        ("amount > 1.0 && false", False),
    ],
)
def test_error_absorption(evaluator, expr, expected):
    assert evaluator(expr, {}, declarations={"missing": "int", "amount": "double"}) is expected


@pytest.mark.parametrize("expr", ["1 / 0 == 1 && true", "true ? 1 / 0 : 2", "missing > 1", "(1 / 0 == 1) ? 1 : 2"])
def test_errors_not_absorbed(evaluator, expr):
    with pytest.raises(EvaluationError):
        evaluator(expr, {}, declarations={"missing": "int"})


def test_missing_variable_message_names_it(evaluator):
    with pytest.raises(EvaluationError, match="amount"):
        evaluator("amount > 1.0", {})


def test_value_mapping(evaluator):
    decls = {"t": "timestamp", "d": "duration", "m": "map(string, int)"}
    t = dt.datetime(2026, 12, 4, 12, 0, tzinfo=dt.timezone.utc)
    act = {"t": t, "d": dt.timedelta(seconds=90), "m": {"a": 1}}
    assert evaluator("t + d", act, decls) == t + dt.timedelta(seconds=90)
    assert evaluator("d", act, decls) == dt.timedelta(seconds=90)
    assert evaluator("m", act, decls) == {"a": 1}
    result = evaluator("type(m)", act, decls)
    assert isinstance(result, Type) and str(result) == "map"
    assert isinstance(evaluator("n + 1u", {"n": UInt(3)}), UInt)


def test_cross_type_numeric_comparison_is_exact(evaluator):
    assert evaluator("age < 9007199254740993.0", {"age": 9007199254740993}) is False
    assert evaluator("age > 1.5", {"age": 2}) is True
    assert evaluator("amount > 1.0", {"amount": math.nan}) is False


def test_strings_compare_by_code_point(evaluator):
    # UTF-16 order would put U+FF61 after U+1F600's surrogates; code points do not.
    assert evaluator("country < '\U0001F600'", {"country": "\uff61"}) is True


@pytest.mark.parametrize(
    "expr, message",
    [
        ("amount == 1", "found no matching overload for '==' applied to '(double, int)'"),
        ("country > 1", "found no matching overload for '>' applied to '(string, int)'"),
        ("amout > 1.0", "undeclared reference to 'amout'"),
        ("frobnicate(1)", "undeclared reference to 'frobnicate'"),
        ("country.matches('[')", "invalid regular expression"),
        ("1 +", "expected"),
        ("9223372036854775808", "out of range"),
    ],
)
def test_compile_errors(expr, message):
    with pytest.raises(RuleError) as info:
        cel.compile(expr, FIELDS)
    assert message in str(info.value)
    d = info.value.diagnostics[0]
    assert d.line == 1 and d.column >= 1 and "^" in d.render()


def test_compile_error_points_at_the_operator():
    with pytest.raises(RuleError) as info:
        cel.compile("amount > 1.0 &&\n  country + 1 == 'x'", FIELDS)
    d = info.value.diagnostics[0]
    assert (d.line, d.column) == (2, 11)
    assert d.source_line == "  country + 1 == 'x'"


def test_bad_declaration_is_a_rule_error():
    with pytest.raises(RuleError, match="declaration of 'x'.*unknown CEL type 'integer'"):
        cel.compile("x", {"x": "integer"})


def test_pathological_nesting_is_an_error_not_a_crash():
    with pytest.raises(RuleError, match="nesting"):
        cel.compile("(" * 5000 + "1" + ")" * 5000)
    with pytest.raises(RuleError, match="nesting"):
        cel.compile("1" + " + 1" * 5000)


def test_wrong_runtime_type_is_an_error_not_a_wrong_answer(evaluator):
    # Declarations are not enforced on the standalone API (as in cel-go):
    # a mistyped value reaches the operators, which report it.
    with pytest.raises(EvaluationError, match="no such overload"):
        evaluator("amount > 1.0", {"amount": "12"})


@pytest.mark.skipif(fraudcore._native.vm is None, reason="native VM not built or disabled")
@pytest.mark.parametrize(
    "expr, native",
    [
        ("amount > 1000.0 && country in ['KP', 'IR']", True),
        ("country.startsWith('K') || country.matches('^I')", True),
        ("age + 1 > 3 ? flag : !flag", True),
        ("size(country) == 2", True),
        ("country in tags", False),
        ("[1, 2].exists(x, x == age)", False),
        ("country + 'x' == 'KPx'", False),
    ],
)
def test_native_flag(expr, native):
    prog = cel.compile(expr, FIELDS)
    assert prog.native is native
    assert (prog.native_blockers == []) is native


@pytest.mark.parametrize(
    "pattern, literals",
    [
        ("(?i)headless|phantomjs|selenium", ("headless", "phantomjs", "selenium")),
        ("curl/", ("curl/",)),
        ("(bot|spider)", ("bot", "spider")),
        ("^curl", None),
        ("a.c", None),
        ("(?i)straße", None),  # case folding beyond ASCII: the regex engine decides
    ],
)
def test_literal_alternation_regexes_are_recognised(pattern, literals):
    from fraudcore.cel.compile import RegexConst
    from fraudcore.cel.functions import compile_regex

    assert RegexConst(compile_regex(pattern)).literals == literals


# Texts past 16 bytes reach the vectorised scan (strsearch.h), shorter ones
# and tails its byte loop; ten literals take two passes of at most eight.
# A literal is often planted, in a random case, at an end or anywhere.
LETTERS = "aHeEdDlLsSxé\u212a\u0130KkbotBOT/@` "


@st.composite
def planted(draw, literals):
    n = draw(st.integers(0, 70))      # lengths spread evenly: as many long texts as short
    text = draw(st.text(alphabet=LETTERS, min_size=n, max_size=n))
    if literals and draw(st.booleans()):
        lit = "".join(c.upper() if draw(st.booleans()) else c for c in draw(st.sampled_from(literals)))
        at = draw(st.one_of(st.just(len(text)), st.just(0), st.integers(0, len(text))))
        text = text[:at] + lit + text[at:]
    return text


@pytest.mark.parametrize("pattern", ["(?i)headless|bot", "Head|less", "(?i)k", "(?i)x/", "(?i)@x|`b|/s",
                                     "(?i)ab|be|ed|dl|ls|sx|xk|kb|bo|ot|to", "a|b|d|e|l|s|x|k|o|t"])
@given(data=st.data())
def test_literal_regex_search_agrees_with_the_regex_engine(pattern, data):
    prog = cel.compile(f"s.matches('{pattern}')", {"s": "string"})
    text = data.draw(planted(pattern.removeprefix("(?i)").split("|")))
    assert prog.evaluate({"s": text}) == prog.evaluate_reference({"s": text})


@given(st.text(alphabet="abAB/é\u0130 ", min_size=1, max_size=6), st.data())
def test_contains_agrees_with_the_reference(sub, data):
    prog = cel.compile("s.contains(t)", {"s": "string", "t": "string"})
    text = data.draw(planted([sub]))
    assert prog.native == (fraudcore._native.vm is not None)
    assert prog.evaluate({"s": text, "t": sub}) == prog.evaluate_reference({"s": text, "t": sub}) == (sub in text)
