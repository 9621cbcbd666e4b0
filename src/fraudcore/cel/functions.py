"""The CEL standard library: every function overload, its signature and its
reference implementation, in one table.

The checker resolves calls against the signatures; the compiler turns a
resolved overload into a native opcode where the VM has one
(:mod:`fraudcore.cel.opcodes`); the reference interpreter calls ``impl``.

An implementation takes CEL runtime values (see :mod:`fraudcore.cel.values`)
and returns one, or raises :class:`~fraudcore.cel.values.CelFault` with the
message of CEL's error value (overflow, division by zero, bad conversion...).
For receiver-style overloads (``s.startsWith(p)``) the receiver is the first
argument.

The logical operators (``_&&_``, ``_||_``, ``_?_:_``, ``@not_strictly_false``)
are declared so the checker can type them, but have ``impl=None``: they are not
strict in their arguments, so the interpreter evaluates them itself.

Semantics follow the CEL language definition and its conformance suite
(/work/shared/cel-conformance), with cel-go's overload ids. Two places where
that suite is stricter than protobuf's own limits:

* durations hold one signed int64 of nanoseconds (about ±292 years), so
  ``timestamp('9999-12-31T23:59:59Z') - timestamp('0001-01-01T00:00:00Z')`` is
  a range error, as the suite requires (protobuf's ±315,576,000,000 s limit in
  :meth:`Duration.in_range <fraudcore.cel.values.Duration.in_range>` is wider);
* ``duration.getMilliseconds()`` is the millisecond *component* (0..999, with
  the duration's sign), as the suite documents; the other duration accessors
  are totals.

Regular expressions are RE2 syntax translated to Python's :mod:`re`; see
:func:`compile_regex` for what is translated and what is refused.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import operator
import re
import warnings
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

from .types import (
    BOOL,
    BYTES,
    DOUBLE,
    DURATION,
    DYN,
    INT,
    STRING,
    TIMESTAMP,
    UINT,
    CelType,
    list_of,
    map_of,
    param,
    type_of_type,
)
from .values import (
    INT64_MAX,
    INT64_MIN,
    MAX_TIMESTAMP_SECONDS,
    MIN_TIMESTAMP_SECONDS,
    UINT64_MAX,
    CelFault,
    CelMap,
    Duration,
    Timestamp,
    Type,
    UInt,
    type_name,
)

__all__ = [
    "FUNCTIONS",
    "Overload",
    "cel_equals",
    "compile_regex",
    "format_double",
    "format_duration",
    "format_timestamp",
    "matches_type",
    "overloads",
    "parse_duration",
    "parse_timestamp",
    "resolve",
]


@dataclass(frozen=True, slots=True)
class Overload:
    id: str  # unique, cel-go style: "add_int64", "starts_with_string"
    function: str  # "_+_", "startsWith", "size"
    params: tuple[CelType, ...]  # receiver first when receiver=True
    result: CelType
    impl: Callable[..., object] | None  # None: the interpreter evaluates it
    receiver: bool = False


# function name -> its overloads, filled below.
FUNCTIONS: dict[str, list[Overload]] = {}


def overloads(function: str) -> list[Overload]:
    return FUNCTIONS.get(function, [])


NS_PER_SECOND = 1_000_000_000
_NUMERIC_TYPES = (int, UInt, float)  # exact types: bool is not a number in CEL


# ---------------------------------------------------------------------------
# Runtime type matching and dynamic dispatch
# ---------------------------------------------------------------------------

_KIND_CHECKS: dict[str, Callable[[object], bool]] = {
    "int": lambda v: type(v) is int,
    "uint": lambda v: type(v) is UInt,
    "double": lambda v: type(v) is float,
    "bool": lambda v: type(v) is bool,
    "string": lambda v: type(v) is str,
    "bytes": lambda v: type(v) is bytes,
    "null_type": lambda v: v is None,
    "google.protobuf.Timestamp": lambda v: type(v) is Timestamp,
    "google.protobuf.Duration": lambda v: type(v) is Duration,
    "type": lambda v: type(v) is Type,
    "list": lambda v: type(v) is list,
    "map": lambda v: type(v) is CelMap,
}


def matches_type(value: object, celtype: CelType) -> bool:
    """Whether a runtime value can be passed where ``celtype`` is declared.

    Type parameters and ``dyn`` match anything; ``list(X)`` and ``map(K, V)``
    match any list or map (elements are not inspected). Python's ``bool`` is an
    ``int`` subclass, so checks are on exact types: ``True`` is not an ``int``.
    """
    check = _KIND_CHECKS.get(celtype.kind)
    return True if check is None else check(value)


def resolve(function: str, args: tuple | list, receiver: bool = False) -> Overload | None:
    """The first overload of ``function`` whose parameters accept ``args``
    (receiver first for receiver-style calls), or None (no such overload)."""
    for ov in FUNCTIONS.get(function, ()):
        if ov.receiver == receiver and len(ov.params) == len(args):
            if all(matches_type(a, p) for a, p in zip(args, ov.params)):
                return ov
    return None


# ---------------------------------------------------------------------------
# Equality and ordering
# ---------------------------------------------------------------------------


def cel_equals(a: object, b: object) -> bool:
    """CEL's heterogeneous equality.

    int, uint and double compare by mathematical value (Python compares ints
    and floats exactly, and NaN equals nothing); lists compare elementwise,
    maps by key set and values; values of different types are unequal.
    """
    ta, tb = type(a), type(b)
    if ta in _NUMERIC_TYPES and tb in _NUMERIC_TYPES:
        return numeric_order(a, b) == 0
    if ta is not tb:
        return False
    if ta is list:
        return len(a) == len(b) and all(cel_equals(x, y) for x, y in zip(a, b))
    if ta is CelMap:
        if len(a) != len(b):
            return False
        for key, value in a.items():
            if key not in b or not cel_equals(value, b.get(key)):
                return False
        return True
    return a == b


# Ordering needs no helper for most types: Python orders strings by code point
# (not UTF-16 units), bytes lexicographically and false < true. Numbers of
# different types follow cel-go (types/compare.go): an int or uint meets a
# double as a double, unless the double lies beyond the integer type's range.
# So dyn(9223372036854775807) == 9223372036854775808.0, as the conformance
# cases require.


def numeric_order(a: object, b: object) -> int | None:
    """-1, 0 or 1 as a < b, a == b, a > b; None when a NaN is involved."""
    ta, tb = type(a), type(b)
    if ta is not float and tb is not float:
        return (a > b) - (a < b)  # int and uint: Python ints compare exactly
    if ta is float and tb is float:
        if math.isnan(a) or math.isnan(b):
            return None
        return (a > b) - (a < b)
    if ta is float:
        o = numeric_order(b, a)
        return None if o is None else -o
    # a is an int or uint, b a double
    if math.isnan(b):
        return None
    lo, hi = (0.0, 18446744073709551616.0) if ta is UInt else (-9223372036854775808.0, 9223372036854775808.0)
    if b < lo:
        return 1
    if b > hi:
        return -1
    fa = float(a)
    return (fa > b) - (fa < b)


def _numeric_op(op: Callable[[int, int], bool]) -> Callable[[object, object], bool]:
    """A cross-type numeric comparison; false when a NaN is involved."""

    def compare(a: object, b: object) -> bool:
        o = numeric_order(a, b)
        return o is not None and op(o, 0)

    return compare


def _ordered_ns(op: Callable[[int, int], bool]) -> Callable[[object, object], bool]:
    """Ordering of timestamps or durations, by their nanoseconds."""
    return lambda a, b: op(a.ns, b.ns)


# ---------------------------------------------------------------------------
# Arithmetic
# ---------------------------------------------------------------------------


def _int_result(value: int) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise CelFault("integer overflow")
    return value


def _uint_result(value: int) -> UInt:
    if not 0 <= value <= UINT64_MAX:
        raise CelFault("unsigned integer overflow")
    return UInt(value)


def _trunc_div(a: int, b: int) -> int:
    """Integer division truncating toward zero (Go, C), not flooring."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _int_div(a: int, b: int) -> int:
    if b == 0:
        raise CelFault("division by zero")
    return _int_result(_trunc_div(a, b))  # INT64_MIN / -1 overflows


def _int_mod(a: int, b: int) -> int:
    if b == 0:
        raise CelFault("modulus by zero")
    if a == INT64_MIN and b == -1:
        raise CelFault("integer overflow")  # as cel-go: the quotient overflows
    return a - b * _trunc_div(a, b)  # sign follows the dividend


def _uint_div(a: UInt, b: UInt) -> UInt:
    if b == 0:
        raise CelFault("division by zero")
    return UInt(a // b)


def _uint_mod(a: UInt, b: UInt) -> UInt:
    if b == 0:
        raise CelFault("modulus by zero")
    return UInt(a % b)


def _double_div(a: float, b: float) -> float:
    """IEEE 754 division: x/0 is ±inf, 0/0 is NaN (Python would raise)."""
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


# Durations are one int64 of nanoseconds (CEL language definition).
_MIN_DURATION_NS = INT64_MIN
_MAX_DURATION_NS = INT64_MAX
_MIN_TIMESTAMP_NS = MIN_TIMESTAMP_SECONDS * NS_PER_SECOND
_MAX_TIMESTAMP_NS = MAX_TIMESTAMP_SECONDS * NS_PER_SECOND + NS_PER_SECOND - 1


def _duration(ns: int) -> Duration:
    if not _MIN_DURATION_NS <= ns <= _MAX_DURATION_NS:
        raise CelFault("duration out of range")
    return Duration(ns)


def _timestamp(ns: int) -> Timestamp:
    if not _MIN_TIMESTAMP_NS <= ns <= _MAX_TIMESTAMP_NS:
        raise CelFault("timestamp out of range (0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z)")
    return Timestamp(ns)


# ---------------------------------------------------------------------------
# Indexing, membership, size
# ---------------------------------------------------------------------------


def _literal(value: object) -> str:
    """A value as CEL source, for error messages."""
    t = type(value)
    if t is bool:
        return "true" if value else "false"
    if t is str:
        return repr(value)
    if t is UInt:
        return f"{int(value)}u"
    if value is None:
        return "null"
    if t is float:
        return format_double(value)
    return repr(value)


def _index_list(lst: list, index: object) -> object:
    t = type(index)
    if t is float:
        if not (math.isfinite(index) and index == int(index)):
            raise CelFault(f"invalid list index: {_literal(index)} is not an integer")
        index = int(index)
    elif t is not int and t is not UInt:
        raise CelFault(f"invalid list index type: {type_name(index)}")
    if not 0 <= index < len(lst):
        raise CelFault(f"index out of range: {int(index)}")
    return lst[index]


def _index_map(m: CelMap, key: object) -> object:
    if key not in m:
        raise CelFault(f"no such key: {_literal(key)}")
    return m.get(key)


def _in_list(value: object, lst: list) -> bool:
    return any(cel_equals(value, item) for item in lst)


def _in_map(key: object, m: CelMap) -> bool:
    return key in m  # CelMap keys follow CEL equality (1 == 1u == 1.0)


# ---------------------------------------------------------------------------
# Regular expressions: RE2 syntax on Python's re
# ---------------------------------------------------------------------------

_MAX_REPEAT = 1000  # RE2's limit on {n,m} counts
_MAX_CODE_POINT = 0x10FFFF

_DIGIT = ((0x30, 0x39),)
_WORD = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
_SPACE = ((0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20))  # RE2's \s: [\t\n\f\r ]
_POSIX_CLASSES: dict[str, tuple[tuple[int, int], ...]] = {
    "alnum": ((0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)),
    "alpha": ((0x41, 0x5A), (0x61, 0x7A)),
    "ascii": ((0x00, 0x7F),),
    "blank": ((0x09, 0x09), (0x20, 0x20)),
    "cntrl": ((0x00, 0x1F), (0x7F, 0x7F)),
    "digit": _DIGIT,
    "graph": ((0x21, 0x7E),),
    "lower": ((0x61, 0x7A),),
    "print": ((0x20, 0x7E),),
    "punct": ((0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)),
    "space": ((0x09, 0x0D), (0x20, 0x20)),
    "upper": ((0x41, 0x5A),),
    "word": _WORD,
    "xdigit": ((0x30, 0x39), (0x41, 0x46), (0x61, 0x66)),
}
_WORD_CLASS = "[0-9A-Za-z_]"
_PERL_CLASSES = {"d": _DIGIT, "w": _WORD, "s": _SPACE}
_SIMPLE_ESCAPES = {"a": 0x07, "f": 0x0C, "t": 0x09, "n": 0x0A, "r": 0x0D, "v": 0x0B}
_REPEAT = re.compile(r"\{([0-9]+)(,([0-9]*))?\}")
_FLAG_GROUP = re.compile(r"\(\?([A-Za-z-]*)([:)])")
_GROUP_NAME = re.compile(r"\(\?P?<([A-Za-z0-9_]+)>")


def _complement(ranges) -> tuple[tuple[int, int], ...]:
    out, lo = [], 0
    for a, b in sorted(ranges):
        if a > lo:
            out.append((lo, a - 1))
        lo = max(lo, b + 1)
    if lo <= _MAX_CODE_POINT:
        out.append((lo, _MAX_CODE_POINT))
    return tuple(out)


def _class_text(ranges, negate: bool = False) -> str:
    def esc(cp: int) -> str:
        return f"\\U{cp:08x}"

    body = "".join(esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges)
    return f"[{'^' if negate else ''}{body}]"


def _literal_char(cp: int) -> str:
    char = chr(cp)
    return re.escape(char) if char.isprintable() else f"\\U{cp:08x}"


class _RE2Translator:
    """Translates one RE2 pattern to an equivalent Python ``re`` pattern, or
    raises ValueError for what RE2 rejects or Python cannot express."""

    def __init__(self, pattern: str):
        self.p = pattern
        self.i = 0
        self.out: list[str] = []
        self.flags = 0
        # Whether multi-line mode is on, per open group: decides how '$' is
        # translated (RE2's '$' is end of text; Python's also matches before a
        # final newline, so it becomes \Z outside (?m)).
        self.multiline = [False]
        self.after_repeat = False

    def fail(self, what: str) -> ValueError:
        return ValueError(f"invalid regular expression {self.p!r}: {what} (at offset {self.i})")

    def translate(self) -> tuple[str, int]:
        self._leading_flags()
        p = self.p
        while self.i < len(p):
            c = p[self.i]
            repeat = False
            if c == "\\":
                self._escape()
            elif c == "[":
                self._char_class()
            elif c == "(":
                self._open_group()
            elif c == ")":
                if len(self.multiline) > 1:
                    self.multiline.pop()
                self.out.append(")")
                self.i += 1
            elif c in "*+?":
                self._check_repeat(c)
                self.out.append(c)
                self.i += 1
                repeat = True
            elif c == "{":
                m = _REPEAT.match(p, self.i)
                if m is None:  # not a repetition: a literal brace in RE2
                    self.out.append("\\{")
                    self.i += 1
                else:
                    self._check_repeat(m.group(0))
                    lo = int(m.group(1))
                    hi = lo if m.group(2) is None else (int(m.group(3)) if m.group(3) else None)
                    if lo > _MAX_REPEAT or (hi is not None and (hi > _MAX_REPEAT or hi < lo)):
                        raise self.fail(f"bad repetition count {m.group(0)} (RE2 allows at most {_MAX_REPEAT})")
                    self.out.append(m.group(0))
                    self.i = m.end()
                    repeat = True
            elif c == "$":
                self.out.append("$" if self.multiline[-1] else r"\Z")
                self.i += 1
            else:
                self.out.append(c)  # literal, '.', '^', '|' mean the same in both
                self.i += 1
            if repeat:
                if self.i < len(p) and p[self.i] == "?":  # non-greedy
                    self.out.append("?")
                    self.i += 1
                self.after_repeat = True
            else:
                self.after_repeat = False
        return "".join(self.out), self.flags

    def _check_repeat(self, op: str) -> None:
        if self.after_repeat:
            if op == "+":
                raise self.fail("possessive quantifiers are not supported by RE2")
            raise self.fail(f"bad repetition operator {op!r} after another repetition")

    def _leading_flags(self) -> None:
        # RE2 allows (?flags) anywhere; Python only at the start (as global
        # flags). Leading flag groups become compile flags here.
        while True:
            m = _FLAG_GROUP.match(self.p, self.i)
            if m is None or m.group(2) != ")":
                return
            on, off = self._parse_flags(m.group(1))
            self.flags = (self.flags | on) & ~off
            self.multiline[0] = bool(self.flags & re.M)
            self.i = m.end()

    def _parse_flags(self, text: str) -> tuple[int, int]:
        """The flags '(?ims-ims' turns on and off, as re flags; raises on
        unsupported ones."""
        on = off = 0
        negated = False
        for ch in text:
            if ch == "-":
                if negated:
                    raise self.fail("bad flag syntax")
                negated = True
            elif ch == "U":
                raise self.fail("the ungreedy flag (?U) is not supported; use non-greedy repetitions (*?, +?)")
            elif ch in "ims":
                flag = {"i": re.I, "m": re.M, "s": re.S}[ch]
                if negated:
                    off |= flag
                else:
                    on |= flag
            else:
                raise self.fail(f"unknown flag {ch!r} (RE2 flags are i, m, s, U)")
        if not text or text == "-" or text.endswith("-"):
            raise self.fail("bad flag syntax")
        return on, off

    def _open_group(self) -> None:
        p, i = self.p, self.i
        if not p.startswith("(?", i):
            self.out.append("(")
            self.multiline.append(self.multiline[-1])
            self.i += 1
            return
        rest = p[i + 2 : i + 4]
        m = _GROUP_NAME.match(p, i)
        if m is not None:
            self.out.append(f"(?P<{m.group(1)}>")
            self.multiline.append(self.multiline[-1])
            self.i = m.end()
            return
        if rest.startswith(":"):
            self.out.append("(?:")
            self.multiline.append(self.multiline[-1])
            self.i += 3
            return
        unsupported = {
            "=": "lookahead (?=...) is not supported by RE2",
            "!": "negative lookahead (?!...) is not supported by RE2",
            "<=": "lookbehind (?<=...) is not supported by RE2",
            "<!": "negative lookbehind (?<!...) is not supported by RE2",
            ">": "atomic groups (?>...) are not supported by RE2",
            "#": "comments (?#...) are not supported by RE2",
            "(": "conditionals (?(...)...) are not supported by RE2",
            "P=": "backreferences (?P=name) are not supported by RE2",
            "P>": "recursion (?P>name) is not supported by RE2",
        }
        for prefix, message in unsupported.items():
            if rest.startswith(prefix):
                raise self.fail(message)
        m = _FLAG_GROUP.match(p, i)
        if m is None:
            raise self.fail("unknown group syntax after '(?'")
        on, _ = self._parse_flags(m.group(1))
        if m.group(2) == ")":
            raise self.fail(
                "inline flags are only supported at the start of the pattern; use a scoped group such as (?i:...)"
            )
        text = m.group(1)
        multiline = self.multiline[-1]
        if "m" in text:
            multiline = bool(on & re.M)
        self.out.append(f"(?{text}:")
        self.multiline.append(multiline)
        self.i = m.end()

    def _escape(self) -> None:
        p = self.p
        if self.i + 1 >= len(p):
            raise self.fail("trailing backslash")
        c = p[self.i + 1]
        if c in _PERL_CLASSES:
            self.out.append(_class_text(_PERL_CLASSES[c]))
        elif c.lower() in _PERL_CLASSES:
            self.out.append(_class_text(_PERL_CLASSES[c.lower()], negate=True))
        elif c == "b":  # RE2's \b is an ASCII word boundary
            self.out.append(f"(?:(?<={_WORD_CLASS})(?!{_WORD_CLASS})|(?<!{_WORD_CLASS})(?={_WORD_CLASS}))")
        elif c == "B":
            self.out.append(f"(?:(?<={_WORD_CLASS})(?={_WORD_CLASS})|(?<!{_WORD_CLASS})(?!{_WORD_CLASS}))")
        elif c == "A":
            self.out.append(r"\A")
        elif c == "z":
            self.out.append(r"\Z")
        elif c == "Q":  # literal text up to \E
            end = p.find("\\E", self.i + 2)
            literal = p[self.i + 2 :] if end < 0 else p[self.i + 2 : end]
            self.out.append(re.escape(literal))
            self.i = len(p) if end < 0 else end + 2
            return
        else:
            self.out.append(_literal_char(self._escape_code_point()))  # advances self.i
            return
        self.i += 2

    def _escape_code_point(self) -> int:
        """A single-character escape at self.i (\\n, \\x41, \\x{263a}, \\101,
        \\.); advances past it."""
        p, i = self.p, self.i
        c = p[i + 1]
        if c in _SIMPLE_ESCAPES:
            self.i = i + 2
            return _SIMPLE_ESCAPES[c]
        if c == "x":
            if p.startswith("{", i + 2):
                m = re.compile(r"\{([0-9A-Fa-f]{1,8})\}").match(p, i + 2)
                if m is None or int(m.group(1), 16) > _MAX_CODE_POINT:
                    raise self.fail("invalid escape \\x{...}")
                self.i = m.end()
                return int(m.group(1), 16)
            m = re.compile(r"[0-9A-Fa-f]{2}").match(p, i + 2)
            if m is None:
                raise self.fail("invalid escape \\x (expected two hex digits or \\x{...})")
            self.i = m.end()
            return int(m.group(0), 16)
        if "0" <= c <= "7":
            m = re.compile(r"[0-7]{1,3}").match(p, i + 1)
            digits = m.group(0)
            if c != "0" and len(digits) == 1:
                raise self.fail(f"backreferences (\\{c}) are not supported by RE2")
            self.i = m.end()
            return int(digits, 8)
        if c in "89":
            raise self.fail(f"backreferences (\\{c}) are not supported by RE2")
        if c in "pP":
            raise self.fail(f"Unicode character classes (\\{c}...) are not supported")
        if c == "C":
            raise self.fail("\\C (any byte) is not supported")
        if c == "Z":
            raise self.fail("\\Z is not RE2 syntax; use \\z for end of text")
        if c.isascii() and not c.isalnum():
            self.i = i + 2
            return ord(c)  # escaped punctuation
        raise self.fail(f"invalid escape \\{c}")

    def _char_class(self) -> None:
        p = self.p
        self.i += 1
        negate = p.startswith("^", self.i)
        if negate:
            self.i += 1
        ranges: list[tuple[int, int]] = []
        first = True
        while True:
            if self.i >= len(p):
                raise self.fail("missing closing ]")
            c = p[self.i]
            if c == "]" and not first:
                self.i += 1
                break
            first = False
            if p.startswith("[:", self.i):
                m = re.compile(r"\[:(\^?)([a-z]+):\]").match(p, self.i)
                if m is None or m.group(2) not in _POSIX_CLASSES:
                    raise self.fail("invalid POSIX character class")
                named = _POSIX_CLASSES[m.group(2)]
                ranges.extend(_complement(named) if m.group(1) else named)
                self.i = m.end()
                continue
            if c == "\\" and self.i + 1 < len(p) and p[self.i + 1].lower() in _PERL_CLASSES:
                named = _PERL_CLASSES[p[self.i + 1].lower()]
                ranges.extend(named if p[self.i + 1].islower() else _complement(named))
                self.i += 2
                continue
            lo = self._class_atom()
            if p.startswith("-", self.i) and self.i + 1 < len(p) and p[self.i + 1] != "]":
                self.i += 1
                hi = self._class_atom()
                if hi < lo:
                    raise self.fail(f"invalid character class range {chr(lo)}-{chr(hi)}")
                ranges.append((lo, hi))
            else:
                ranges.append((lo, lo))
        self.out.append(_class_text(ranges, negate))

    def _class_atom(self) -> int:
        c = self.p[self.i]
        if c != "\\":
            self.i += 1
            return ord(c)
        if self.i + 1 >= len(self.p):
            raise self.fail("trailing backslash")
        return self._escape_code_point()


@functools.lru_cache(maxsize=1024)
def compile_regex(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 pattern (the syntax CEL's ``matches`` uses) with Python's
    :mod:`re`. Raises ValueError, naming the problem, for invalid patterns.

    Translated so Python means what RE2 means:

    * ``\\d \\w \\s \\b \\B`` are ASCII-only in RE2 (Python's are Unicode) and
      become explicit ASCII classes; ``$`` outside ``(?m)`` is end of text
      (Python's also matches before a final newline) and becomes ``\\Z``;
      ``\\z`` becomes ``\\Z``; ``\\x{263a}`` and octal ``\\101`` become code
      points; ``\\Q...\\E`` is quoted; ``[[:alpha:]]`` POSIX classes are
      expanded; ``(?<name>...)`` becomes ``(?P<name>...)``; ``{`` that does
      not start a repetition is a literal; leading ``(?ims)`` become flags.

    Refused (RE2 rejects them, or Python cannot match RE2's meaning):
    backreferences ``\\1`` and ``(?P=name)``, lookaround ``(?=`` ``(?!``
    ``(?<=`` ``(?<!``, atomic groups ``(?>``, possessive quantifiers ``a*+``,
    conditionals, comments ``(?#``, repetition counts above 1000, Unicode
    classes ``\\pL`` ``\\p{Greek}``, ``\\C``, ``\\Z``, the ungreedy flag ``U``,
    flag groups ``(?i)`` anywhere but the start (scoped ``(?i:...)`` works).

    Not emulated: RE2 runs in linear time, Python's backtracking engine does
    not, so a pattern like ``(a+)+$`` can be slow on hostile input.
    """
    translated, flags = _RE2Translator(pattern).translate()
    try:
        with warnings.catch_warnings():
            # "possible nested set" and similar FutureWarnings mean the pattern
            # would change meaning in a later Python: refuse instead.
            warnings.simplefilter("error")
            return re.compile(translated, flags)
    except (re.error, FutureWarning) as exc:
        detail = exc.msg if isinstance(exc, re.error) else str(exc)
        raise ValueError(f"invalid regular expression {pattern!r}: {detail}") from None


def _matches(text: str, pattern: str) -> bool:
    try:
        regex = compile_regex(pattern)
    except ValueError as exc:
        raise CelFault(str(exc)) from None
    return regex.search(text) is not None  # CEL's matches is a partial match


# ---------------------------------------------------------------------------
# Numbers to and from text
# ---------------------------------------------------------------------------

_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_UINT_TEXT = re.compile(r"[0-9]+")
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEX_FLOAT_TEXT = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+")
_FLOAT_SPECIAL = {"inf": math.inf, "+inf": math.inf, "-inf": -math.inf, "infinity": math.inf,
                  "+infinity": math.inf, "-infinity": -math.inf, "nan": math.nan, "+nan": math.nan,
                  "-nan": math.nan}


def format_double(value: float) -> str:
    """``string(double)`` as cel-go prints it (Go's ``%g``, shortest form):
    ``1.0`` → ``"1"``, ``123.456``, ``-0.0045``, ``123456``, ``1e+06``,
    ``1.234567e+06``, ``1e+100``,
    ``+Inf``, ``-Inf``, ``NaN``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0.0:
        return sign + "0"
    # repr() gives the shortest digits that round-trip, as Go's shortest mode.
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0")
    exponent += len(digit_tuple) - len(digits)
    nd = len(digits)
    dp = nd + exponent  # position of the decimal point in the digit string
    exp10 = dp - 1
    # Go's %g picks exponent form when the exponent is < -4 or >= 6 (the
    # precision it assumes in shortest mode).
    if exp10 < -4 or exp10 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if nd > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= nd:
        return sign + digits + "0" * (dp - nd)
    return f"{sign}{digits[:dp]}.{digits[dp:]}"



def _parse_int(text: str) -> int:
    if not _INT_TEXT.fullmatch(text):
        raise CelFault(f"cannot convert {text!r} to int")
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise CelFault(f"integer overflow: {text!r} is out of int range")
    return value


def _parse_uint(text: str) -> UInt:
    if not _UINT_TEXT.fullmatch(text):
        raise CelFault(f"cannot convert {text!r} to uint")
    value = int(text)
    if value > UINT64_MAX:
        raise CelFault(f"unsigned integer overflow: {text!r} is out of uint range")
    return UInt(value)


def _parse_double(text: str) -> float:
    special = _FLOAT_SPECIAL.get(text.lower())
    if special is not None:
        return special
    if _FLOAT_TEXT.fullmatch(text):
        value = float(text)
    elif _HEX_FLOAT_TEXT.fullmatch(text):
        value = float.fromhex(text)
    else:
        raise CelFault(f"cannot convert {text!r} to double")
    if math.isinf(value):
        raise CelFault(f"double out of range: {text!r}")
    return value


def _double_to_int(value: float) -> int:
    # Both bounds exclusive, as cel-go: -2**63 as a double is refused too.
    if math.isnan(value) or not -9.223372036854775808e18 < value < 9.223372036854775808e18:
        raise CelFault(f"integer overflow: {format_double(value)} is out of int range")
    return int(value)  # truncates toward zero


def _double_to_uint(value: float) -> UInt:
    if math.isnan(value) or not 0.0 <= value < 1.8446744073709551616e19:
        raise CelFault(f"unsigned integer overflow: {format_double(value)} is out of uint range")
    return UInt(int(value))


def _int_to_uint(value: int) -> UInt:
    if value < 0:
        raise CelFault(f"unsigned integer overflow: {value} is out of uint range")
    return UInt(value)


def _uint_to_int(value: UInt) -> int:
    if value > INT64_MAX:
        raise CelFault(f"integer overflow: {int(value)}u is out of int range")
    return int(value)


def _bytes_to_string(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise CelFault("invalid UTF-8 in bytes converted to string") from None


def _string_to_bytes(value: str) -> bytes:
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate cannot come from CEL source
        raise CelFault("string is not valid Unicode") from None


_BOOL_TEXT = {"1": True, "t": True, "T": True, "true": True, "TRUE": True, "True": True,
              "0": False, "f": False, "F": False, "false": False, "FALSE": False, "False": False}


def _parse_bool(text: str) -> bool:
    try:
        return _BOOL_TEXT[text]
    except KeyError:
        raise CelFault(f"cannot convert {text!r} to bool") from None


# ---------------------------------------------------------------------------
# Timestamps and durations
# ---------------------------------------------------------------------------


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year,
    including 0, which datetime cannot represent). H. Hinnant's algorithm."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(days: int) -> tuple[int, int, int]:
    z = days + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


def _days_in_month(y: int, m: int) -> int:
    if m == 2:
        return 29 if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0) else 28
    return 30 if m in (4, 6, 9, 11) else 31


_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


def parse_timestamp(text: str) -> Timestamp:
    """An RFC 3339 timestamp (``2009-02-13T23:31:30.123456789+01:00``): any
    offset, up to 9 fractional digits, years 0001..9999 once in UTC.
    Raises CelFault."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise CelFault(f"cannot parse {text!r} as an RFC 3339 timestamp")
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if not (1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)
            and hour <= 23 and minute <= 59 and second <= 59):
        raise CelFault(f"cannot parse {text!r} as an RFC 3339 timestamp: field out of range")
    offset = 0
    if m.group(9):
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            raise CelFault(f"cannot parse {text!r} as an RFC 3339 timestamp: bad offset")
        offset = (oh * 3600 + om * 60) * (-1 if m.group(9) == "-" else 1)
    seconds = _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset
    nanos = int((m.group(7) or "").ljust(9, "0"))
    return _timestamp(seconds * NS_PER_SECOND + nanos)


def _fraction(nanos: int) -> str:
    return f".{nanos:09d}".rstrip("0") if nanos else ""


def format_timestamp(ts: Timestamp) -> str:
    """RFC 3339 in UTC with as few fractional digits as exact:
    ``2009-02-13T23:31:30Z``, ``9999-12-31T23:59:59.999999999Z``."""
    seconds, nanos = divmod(ts.ns, NS_PER_SECOND)
    days, sod = divmod(seconds, 86400)
    y, mo, d = _civil_from_days(days)
    return f"{y:04d}-{mo:02d}-{d:02d}T{sod // 3600:02d}:{sod // 60 % 60:02d}:{sod % 60:02d}{_fraction(nanos)}Z"


_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek mu
    "ms": 1_000_000,
    "s": NS_PER_SECOND,
    "m": 60 * NS_PER_SECOND,
    "h": 3600 * NS_PER_SECOND,
}
_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")


def parse_duration(text: str) -> Duration:
    """A Go duration string: ``1h2m3.5s``, ``-1.5h``, ``100ms``, ``1us``,
    ``1µs``, ``1ns``, ``0``. Exact to the nanosecond (fractions of a nanosecond
    are truncated, as Go does); must fit in int64 nanoseconds. Raises CelFault."""
    s = text
    negative = s.startswith("-")
    if s[:1] in "+-" and s:
        s = s[1:]
    if s == "0":
        return Duration(0)
    if not s:
        raise CelFault(f"cannot parse {text!r} as a duration")
    total = 0
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac:
            raise CelFault(f"cannot parse {text!r} as a duration")
        scale = _DURATION_UNITS.get(unit)
        if scale is None:
            what = "missing unit" if not unit else f"unknown unit {unit!r}"
            raise CelFault(f"cannot parse {text!r} as a duration: {what} (use h, m, s, ms, us, ns)")
        total += int(whole or "0") * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        pos = m.end()
    ns = -total if negative else total
    if not _MIN_DURATION_NS <= ns <= _MAX_DURATION_NS:
        raise CelFault(f"duration out of range: {text!r}")
    return Duration(ns)


def format_duration(d: Duration) -> str:
    """Seconds with as few fractional digits as exact: ``1000000s``,
    ``1.5s``, ``-0.000000001s``, ``0s``."""
    sign = "-" if d.ns < 0 else ""
    seconds, nanos = divmod(abs(d.ns), NS_PER_SECOND)
    return f"{sign}{seconds}{_fraction(nanos)}s"


_FIXED_OFFSET = re.compile(r"([+-]?)([0-9]{1,2}):([0-9]{2})")


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> int | zoneinfo.ZoneInfo:
    """A timezone argument: a fixed offset in seconds ("+11:00", "-02:30",
    "02:00", "-00:00") or an IANA zone ("Australia/Sydney", "UTC")."""
    if ":" in name:
        m = _FIXED_OFFSET.fullmatch(name)
        if m is None or int(m.group(2)) > 23 or int(m.group(3)) > 59:
            raise CelFault(f"invalid timezone offset {name!r} (expected [+-]HH:MM)")
        offset = int(m.group(2)) * 3600 + int(m.group(3)) * 60
        return -offset if m.group(1) == "-" else offset
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise CelFault(f"unknown timezone {name!r}") from None


_EPOCH = _dt.datetime(1970, 1, 1)


def _utc_offset(zone: zoneinfo.ZoneInfo, seconds: int) -> int:
    # datetime covers years 1..9999 only; at the very edges of CEL's range
    # the local time can fall outside it, so ask about a nearby instant (zone
    # rules there are fixed local mean time anyway).
    seconds = min(max(seconds, MIN_TIMESTAMP_SECONDS + 2 * 86400), MAX_TIMESTAMP_SECONDS - 2 * 86400)
    utc = _EPOCH + _dt.timedelta(seconds=seconds)
    local = zone.fromutc(utc.replace(tzinfo=zone))
    return int(local.utcoffset().total_seconds())


def _local_fields(ts: Timestamp, tz: str | None) -> tuple[int, int]:
    """(local days since epoch, local second of day)."""
    seconds = ts.seconds
    if tz is not None:
        zone = _zone(tz)
        seconds += zone if type(zone) is int else _utc_offset(zone, seconds)
    return divmod(seconds, 86400)


def _ts_accessor(field: Callable[[int, int, Timestamp], int]) -> Callable[..., int]:
    def accessor(ts: Timestamp, tz: str | None = None) -> int:
        days, sod = _local_fields(ts, tz)
        return field(days, sod, ts)

    return accessor


def _day_of_year(days: int) -> int:
    y, _, _ = _civil_from_days(days)
    return days - _days_from_civil(y, 1, 1)


_TS_ACCESSORS: list[tuple[str, str, Callable[[int, int, Timestamp], int]]] = [
    ("getFullYear", "timestamp_to_year", lambda days, sod, ts: _civil_from_days(days)[0]),
    ("getMonth", "timestamp_to_month", lambda days, sod, ts: _civil_from_days(days)[1] - 1),
    ("getDayOfYear", "timestamp_to_day_of_year", lambda days, sod, ts: _day_of_year(days)),
    ("getDayOfMonth", "timestamp_to_day_of_month", lambda days, sod, ts: _civil_from_days(days)[2] - 1),
    ("getDate", "timestamp_to_day_of_month_1_based", lambda days, sod, ts: _civil_from_days(days)[2]),
    ("getDayOfWeek", "timestamp_to_day_of_week", lambda days, sod, ts: (days + 4) % 7),  # 1970-01-01: Thu
    ("getHours", "timestamp_to_hours", lambda days, sod, ts: sod // 3600),
    ("getMinutes", "timestamp_to_minutes", lambda days, sod, ts: sod // 60 % 60),
    ("getSeconds", "timestamp_to_seconds", lambda days, sod, ts: sod % 60),
    ("getMilliseconds", "timestamp_to_milliseconds", lambda days, sod, ts: ts.nanos // 1_000_000),
]

_DURATION_ACCESSORS: list[tuple[str, str, Callable[[Duration], int]]] = [
    ("getHours", "duration_to_hours", lambda d: _trunc_div(d.ns, 3600 * NS_PER_SECOND)),
    ("getMinutes", "duration_to_minutes", lambda d: _trunc_div(d.ns, 60 * NS_PER_SECOND)),
    ("getSeconds", "duration_to_seconds", lambda d: _trunc_div(d.ns, NS_PER_SECOND)),
    # The millisecond component (conformance "get_milliseconds"), not a total.
    ("getMilliseconds", "duration_to_milliseconds",
     lambda d: _trunc_div(d.ns, 1_000_000) - 1000 * _trunc_div(d.ns, NS_PER_SECOND)),
]


# ---------------------------------------------------------------------------
# The table
# ---------------------------------------------------------------------------

A = param("A")
B = param("B")
LIST_A = list_of(A)
MAP_AB = map_of(A, B)
_NUMERIC = [("int64", INT), ("uint64", UINT), ("double", DOUBLE)]


def _def(function: str, id: str, params: tuple[CelType, ...], result: CelType,
         impl: Callable[..., object] | None, receiver: bool = False) -> None:
    for existing in FUNCTIONS.get(function, ()):
        if existing.id == id:
            raise AssertionError(f"duplicate overload id {id!r}")
    FUNCTIONS.setdefault(function, []).append(Overload(id, function, params, result, impl, receiver))


# Logic: non-strict, evaluated by the interpreter (impl=None).
_def("_&&_", "logical_and", (BOOL, BOOL), BOOL, None)
_def("_||_", "logical_or", (BOOL, BOOL), BOOL, None)
_def("_?_:_", "conditional", (BOOL, A, A), A, None)
_def("@not_strictly_false", "not_strictly_false", (BOOL,), BOOL, None)
_def("!_", "logical_not", (BOOL,), BOOL, operator.not_)

# Arithmetic.
_def("_+_", "add_int64", (INT, INT), INT, lambda a, b: _int_result(a + b))
_def("_+_", "add_uint64", (UINT, UINT), UINT, lambda a, b: _uint_result(a + b))
_def("_+_", "add_double", (DOUBLE, DOUBLE), DOUBLE, operator.add)
_def("_+_", "add_string", (STRING, STRING), STRING, operator.add)
_def("_+_", "add_bytes", (BYTES, BYTES), BYTES, operator.add)
_def("_+_", "add_list", (LIST_A, LIST_A), LIST_A, operator.add)
_def("_+_", "add_timestamp_duration", (TIMESTAMP, DURATION), TIMESTAMP, lambda t, d: _timestamp(t.ns + d.ns))
_def("_+_", "add_duration_timestamp", (DURATION, TIMESTAMP), TIMESTAMP, lambda d, t: _timestamp(d.ns + t.ns))
_def("_+_", "add_duration_duration", (DURATION, DURATION), DURATION, lambda a, b: _duration(a.ns + b.ns))

_def("_-_", "subtract_int64", (INT, INT), INT, lambda a, b: _int_result(a - b))
_def("_-_", "subtract_uint64", (UINT, UINT), UINT, lambda a, b: _uint_result(a - b))
_def("_-_", "subtract_double", (DOUBLE, DOUBLE), DOUBLE, operator.sub)
_def("_-_", "subtract_timestamp_timestamp", (TIMESTAMP, TIMESTAMP), DURATION, lambda a, b: _duration(a.ns - b.ns))
_def("_-_", "subtract_timestamp_duration", (TIMESTAMP, DURATION), TIMESTAMP, lambda t, d: _timestamp(t.ns - d.ns))
_def("_-_", "subtract_duration_duration", (DURATION, DURATION), DURATION, lambda a, b: _duration(a.ns - b.ns))

_def("_*_", "multiply_int64", (INT, INT), INT, lambda a, b: _int_result(a * b))
_def("_*_", "multiply_uint64", (UINT, UINT), UINT, lambda a, b: _uint_result(a * b))
_def("_*_", "multiply_double", (DOUBLE, DOUBLE), DOUBLE, operator.mul)

_def("_/_", "divide_int64", (INT, INT), INT, _int_div)
_def("_/_", "divide_uint64", (UINT, UINT), UINT, _uint_div)
_def("_/_", "divide_double", (DOUBLE, DOUBLE), DOUBLE, _double_div)

_def("_%_", "modulo_int64", (INT, INT), INT, _int_mod)
_def("_%_", "modulo_uint64", (UINT, UINT), UINT, _uint_mod)

_def("-_", "negate_int64", (INT,), INT, lambda a: _int_result(-a))
_def("-_", "negate_double", (DOUBLE,), DOUBLE, operator.neg)

# Equality: heterogeneous, never an error.
_def("_==_", "equals", (A, A), BOOL, cel_equals)
_def("_!=_", "not_equals", (A, A), BOOL, lambda a, b: not cel_equals(a, b))

# Ordering: same-type pairs, then every cross-type numeric pair.
for _fn, _name, _op in [("_<_", "less", operator.lt), ("_<=_", "less_equals", operator.le),
                        ("_>_", "greater", operator.gt), ("_>=_", "greater_equals", operator.ge)]:
    for _suffix, _t in [*_NUMERIC, ("string", STRING), ("bytes", BYTES), ("bool", BOOL)]:
        _def(_fn, f"{_name}_{_suffix}", (_t, _t), BOOL, _op)
    _def(_fn, f"{_name}_timestamp", (TIMESTAMP, TIMESTAMP), BOOL, _ordered_ns(_op))
    _def(_fn, f"{_name}_duration", (DURATION, DURATION), BOOL, _ordered_ns(_op))
    for _la, _lt in _NUMERIC:
        for _ra, _rt in _NUMERIC:
            if _la != _ra:
                _def(_fn, f"{_name}_{_la}_{_ra}", (_lt, _rt), BOOL, _numeric_op(_op))

# Membership and indexing.
_def("@in", "in_list", (A, LIST_A), BOOL, _in_list)
_def("@in", "in_map", (A, MAP_AB), BOOL, _in_map)
_def("_[_]", "index_list", (LIST_A, INT), A, _index_list)
_def("_[_]", "index_list_uint64", (LIST_A, UINT), A, _index_list)
_def("_[_]", "index_list_double", (LIST_A, DOUBLE), A, _index_list)  # integral doubles only
_def("_[_]", "index_map", (MAP_AB, A), B, _index_map)

# Size: global and receiver style.
_def("size", "size_string", (STRING,), INT, len)  # code points: Python str is a code point sequence
_def("size", "size_bytes", (BYTES,), INT, len)
_def("size", "size_list", (LIST_A,), INT, len)
_def("size", "size_map", (MAP_AB,), INT, len)
_def("size", "string_size", (STRING,), INT, len, receiver=True)
_def("size", "bytes_size", (BYTES,), INT, len, receiver=True)
_def("size", "list_size", (LIST_A,), INT, len, receiver=True)
_def("size", "map_size", (MAP_AB,), INT, len, receiver=True)

# Strings.
_def("contains", "contains_string", (STRING, STRING), BOOL, operator.contains, receiver=True)
_def("startsWith", "starts_with_string", (STRING, STRING), BOOL, str.startswith, receiver=True)
_def("endsWith", "ends_with_string", (STRING, STRING), BOOL, str.endswith, receiver=True)
_def("matches", "matches", (STRING, STRING), BOOL, _matches)
_def("matches", "matches_string", (STRING, STRING), BOOL, _matches, receiver=True)

# Conversions.
_def("int", "int64_to_int64", (INT,), INT, lambda v: v)
_def("int", "uint64_to_int64", (UINT,), INT, _uint_to_int)
_def("int", "double_to_int64", (DOUBLE,), INT, _double_to_int)
_def("int", "string_to_int64", (STRING,), INT, _parse_int)
_def("int", "timestamp_to_int64", (TIMESTAMP,), INT, lambda t: t.seconds)

_def("uint", "int64_to_uint64", (INT,), UINT, _int_to_uint)
_def("uint", "uint64_to_uint64", (UINT,), UINT, lambda v: v)
_def("uint", "double_to_uint64", (DOUBLE,), UINT, _double_to_uint)
_def("uint", "string_to_uint64", (STRING,), UINT, _parse_uint)

_def("double", "int64_to_double", (INT,), DOUBLE, float)  # rounds to nearest, never overflows
_def("double", "uint64_to_double", (UINT,), DOUBLE, float)
_def("double", "double_to_double", (DOUBLE,), DOUBLE, lambda v: v)
_def("double", "string_to_double", (STRING,), DOUBLE, _parse_double)

_def("string", "int64_to_string", (INT,), STRING, str)
_def("string", "uint64_to_string", (UINT,), STRING, lambda v: str(int(v)))
_def("string", "double_to_string", (DOUBLE,), STRING, format_double)
_def("string", "string_to_string", (STRING,), STRING, lambda v: v)
_def("string", "bytes_to_string", (BYTES,), STRING, _bytes_to_string)
_def("string", "bool_to_string", (BOOL,), STRING, lambda v: "true" if v else "false")
_def("string", "timestamp_to_string", (TIMESTAMP,), STRING, format_timestamp)
_def("string", "duration_to_string", (DURATION,), STRING, format_duration)

_def("bytes", "bytes_to_bytes", (BYTES,), BYTES, lambda v: v)
_def("bytes", "string_to_bytes", (STRING,), BYTES, _string_to_bytes)

_def("bool", "bool_to_bool", (BOOL,), BOOL, lambda v: v)
_def("bool", "string_to_bool", (STRING,), BOOL, _parse_bool)

_def("timestamp", "string_to_timestamp", (STRING,), TIMESTAMP, parse_timestamp)
_def("timestamp", "timestamp_to_timestamp", (TIMESTAMP,), TIMESTAMP, lambda v: v)
_def("timestamp", "int64_to_timestamp", (INT,), TIMESTAMP, lambda s: _timestamp(s * NS_PER_SECOND))

_def("duration", "string_to_duration", (STRING,), DURATION, parse_duration)
_def("duration", "duration_to_duration", (DURATION,), DURATION, lambda v: v)

_def("dyn", "to_dyn", (A,), DYN, lambda v: v)
_def("type", "type", (A,), type_of_type(A), lambda v: Type(type_name(v)))

# Timestamp accessors (UTC, or in the timezone given), duration accessors.
for _fn, _id, _field in _TS_ACCESSORS:
    _def(_fn, _id, (TIMESTAMP,), INT, _ts_accessor(_field), receiver=True)
    _def(_fn, f"{_id}_with_tz", (TIMESTAMP, STRING), INT, _ts_accessor(_field), receiver=True)
for _fn, _id, _get in _DURATION_ACCESSORS:
    _def(_fn, _id, (DURATION,), INT, _get, receiver=True)

del _fn, _id, _field, _get, _name, _op, _suffix, _t, _la, _lt, _ra, _rt
