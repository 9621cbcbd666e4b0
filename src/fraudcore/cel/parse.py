"""CEL parser: expression source text → :mod:`fraudcore.cel.ast`.

A regex lexer and a hand-written recursive-descent parser for the grammar of
the CEL specification (langdef.md), producing cel-go's AST shape: operators
are calls of reserved names and macros are expanded into comprehensions.

Positions (``pos``, 0-based code-point offsets), chosen so that later errors
point where cel-go points:

* literals, identifiers, lists, maps: their first character (a negative
  literal ``-1``: its ``-``; ``.a``: the dot); a struct ``a.B{...}``: the
  first character of its type name;
* binary operators and ``in``: the operator; ``a ? b : c``: the ``?``;
  ``a[i]``: the ``[``; ``!``/``-``: the first operator of the run;
* global calls ``f(x)`` and ``has(a.b)``: the function name;
* selections ``a.b``, receiver calls ``a.f(x)`` and the comprehensions
  expanded from receiver macros: the ``.``; every node a macro generates
  (accumulator, init, step...) also gets the macro's position.

Choices that follow cel-go:

* ``-`` directly before an int or double literal is its sign, so
  ``-9223372036854775808`` is int64 min; ``-(1)`` and ``-1u`` stay ``-_``.
* A run of ``!`` or of ``-`` is read whole (ANTLR's greedy loop): an even
  count cancels, an odd one gives one call. So ``--1`` is ``1``, ``---1`` is
  ``-_(1)`` and ``--9223372036854775808`` is out of range. Mixing needs
  parentheses, except the sign of a literal: ``!-1`` is ``!_(-1)``.
* Chains of ``&&`` / ``||`` become balanced trees; other binary operators
  are left-associative.
* A leading dot is kept in the name: ``.a`` is ``Ident(".a")``, ``.f(x)``
  calls ``".f"``. Field names may be reserved words or backquoted
  (``m.`content-type```); variables may not.
* ``Name{f: v}`` parses to :class:`~fraudcore.cel.ast.CreateStruct`; the
  checker rejects it.

Limits, so no input can exhaust the Python stack or build an AST that later
recursive passes cannot walk: inputs longer than ``max_length`` are refused
before lexing, and ``max_depth`` bounds both the source nesting (each
parenthesis, bracket, brace, call and unary operator is a level, a lone
operand is level 1) and the depth of the AST produced (left-associative
chains such as ``1 + 1 + ...`` and member chains ``a.b.c...`` count).
"""

from __future__ import annotations

import re
from typing import NamedTuple, NoReturn

from ..errors import RuleError
from .ast import (
    ACCU_VAR,
    Call,
    Comprehension,
    CreateList,
    CreateMap,
    CreateStruct,
    Expr,
    Ident,
    Literal,
    Select,
)
from .source import Source
from .values import INT64_MAX, INT64_MIN, UINT64_MAX, UInt

__all__ = ["parse"]

RESERVED = frozenset(
    "as break const continue else for function if import let loop package"
    " namespace return var void while".split()
)

# Binary operators: precedence (higher binds tighter) and function name.
_BINARY = {
    "||": (1, "_||_"),
    "&&": (2, "_&&_"),
    "==": (3, "_==_"),
    "!=": (3, "_!=_"),
    "<": (3, "_<_"),
    "<=": (3, "_<=_"),
    ">": (3, "_>_"),
    ">=": (3, "_>=_"),
    "in": (3, "@in"),
    "+": (4, "_+_"),
    "-": (4, "_-_"),
    "*": (5, "_*_"),
    "/": (5, "_/_"),
    "%": (5, "_%_"),
}

# Receiver macros and the argument counts that expand them.
_MACROS = {"all": (2,), "exists": (2,), "exists_one": (2,), "map": (2, 3), "filter": (2,)}

_KEYWORDS = {"true", "false", "null", "in"}

# Tokens that start a primary other than a name or a number.
_PRIMARY_STARTS = {"uint", "string", "bytes", "true", "false", "null", "(", "[", "{"}

_SCAN = re.compile(
    r"""
    (?P<ws>[ \t\n\f\r]+|//[^\n]*)
  | (?P<str>(?:[rR][bB]?|[bB][rR]?)?(?:'''|\"\"\"|'|"))
  | (?P<num>0x[0-9a-fA-F]+[uU]?
      |(?:[0-9]+\.[0-9]+|\.[0-9]+)(?:[eE][+-]?[0-9]+)?
      |[0-9]+[eE][+-]?[0-9]+
      |[0-9]+[uU]?)
  | (?P<ident>[_a-zA-Z][_a-zA-Z0-9]*)
  | (?P<qident>`[a-zA-Z0-9_./\- ]+`)
  | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%!<>?:.,\[\](){}])
    """,
    re.VERBOSE,
)

_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", "?": "?", '"': '"', "'": "'", "`": "`",
}  # fmt: skip
_HEX_WIDTH = {"x": 2, "X": 2, "u": 4, "U": 8}
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]*")
_OCTAL = re.compile(r"[0-3][0-7]{2}")

# Hints for characters that start no token.
_BAD_CHAR_HINTS = {"=": ", did you mean '=='?", "&": ", did you mean '&&'?", "|": ", did you mean '||'?"}

_Errors = list[tuple[int, str]]


class _Token(NamedTuple):
    # 'ident', 'qident' (backquoted), 'int', 'uint', 'double', 'string',
    # 'bytes', 'error', 'eof', or the operator / keyword text itself.
    kind: str
    text: str
    pos: int
    value: object = None


def parse(source: str, *, macros: bool = True, max_depth: int = 100, max_length: int = 100_000) -> Expr:
    """Parse one CEL expression.

    Raises :class:`~fraudcore.errors.RuleError` with a diagnostic for every
    syntax error found (all lexical errors, the first grammatical one).
    With ``macros=False``, ``has``/``all``/``exists``/... are plain calls.
    """
    src = Source(source)
    if len(source) > max_length:
        message = f"expression is {len(source)} characters long, the limit is {max_length}"
        raise RuleError([src.diagnostic(max_length, message)])
    errors: _Errors = []
    tokens = _lex(source, errors)
    expr = _Parser(tokens, errors, macros=macros, max_depth=max_depth).run()
    if errors:
        unique = sorted(set(errors), key=lambda e: e[0])
        raise RuleError([src.diagnostic(pos, msg) for pos, msg in unique])
    assert expr is not None
    return expr


# --- lexer -------------------------------------------------------------------


def _lex(text: str, errors: _Errors) -> list[_Token]:
    """Tokenize all of ``text``, recording lexical errors and continuing, so
    that every bad literal is reported at once."""
    tokens: list[_Token] = []
    pos, n = 0, len(text)
    while pos < n:
        m = _SCAN.match(text, pos)
        if m is None:
            tokens.append(_Token("error", text[pos], pos))
            errors.append((pos, _bad_char(text[pos])))
            pos += 1
            continue
        group, end = m.lastgroup, m.end()
        word = m.group()
        if group == "str":
            token, end = _lex_string(text, pos, end, errors)
            tokens.append(token)
        elif group == "num":
            tokens.append(_lex_number(word, pos, errors))
        elif group == "ident":
            tokens.append(_Token(word if word in _KEYWORDS else "ident", word, pos))
        elif group == "qident":
            tokens.append(_Token("qident", word, pos, word[1:-1]))
        elif group == "op":
            tokens.append(_Token(word, word, pos))
        pos = end
    tokens.append(_Token("eof", "", n))
    return tokens


def _bad_char(c: str) -> str:
    if c == "`":
        return "invalid quoted field name: use letters, digits, '_', '.', '-', '/' or spaces between backquotes"
    shown = c if c.isprintable() else ascii(c)[1:-1]
    return f"unexpected character '{shown}'{_BAD_CHAR_HINTS.get(c, '')}"


def _lex_number(word: str, pos: int, errors: _Errors) -> _Token:
    # int magnitudes are range-checked by the parser, which knows the sign.
    if word.startswith("0x"):
        if word[-1] in "uU":
            return _uint(_integer(word[2:-1], 16), word, pos, errors)
        return _Token("int", word, pos, _integer(word[2:], 16))
    if word[-1] in "uU":
        return _uint(_integer(word[:-1], 10), word, pos, errors)
    if any(c in word for c in ".eE"):
        value = float(word)
        if value == float("inf"):
            errors.append((pos, f"double literal out of range: {_clip(word)}"))
            value = 0.0
        return _Token("double", word, pos, value)
    return _Token("int", word, pos, _integer(word, 10))


def _integer(digits: str, base: int) -> int:
    # Anything this long is out of range anyway; int() would refuse huge
    # strings (sys.get_int_max_str_digits) or take quadratic time.
    if len(digits.lstrip("0")) > 24:
        return 1 << 64
    return int(digits, base)


def _clip(text: str) -> str:
    return text if len(text) <= 30 else text[:27] + "..."


def _uint(value: int, word: str, pos: int, errors: _Errors) -> _Token:
    if value > UINT64_MAX:
        errors.append((pos, f"unsigned integer literal out of range: {_clip(word)}"))
        value = 0
    return _Token("uint", word, pos, UInt(value))


def _lex_string(text: str, start: int, body: int, errors: _Errors) -> tuple[_Token, int]:
    """Scan the string or bytes literal whose prefix and opening quote span
    ``text[start:body]``; return its token and the offset after it."""
    head = text[start:body]
    quote = head.lstrip("rRbB")
    prefix = head[: len(head) - len(quote)].lower()
    raw, is_bytes = "r" in prefix, "b" in prefix
    what = "bytes literal" if is_bytes else "string literal"
    # str pieces, and ints for the raw bytes of \x and octal escapes in bytes.
    parts: list[str | int] = []
    i, n = body, len(text)
    while True:
        if i >= n or (len(quote) == 1 and text[i] in "\n\r"):
            errors.append((start, f"unterminated {what}"))
            end = i
            break
        if text.startswith(quote, i):
            end = i + len(quote)
            break
        if text[i] == "\\" and not raw:
            i = _escape(text, i, parts, is_bytes, what, errors)
        else:
            parts.append(text[i])
            i += 1
    if is_bytes:
        data = bytearray()
        for p in parts:
            if isinstance(p, int):
                data.append(p)
            else:
                data += p.encode("utf-8", "surrogatepass")
        return _Token("bytes", text[start:end], start, bytes(data)), end
    return _Token("string", text[start:end], start, "".join(p for p in parts if isinstance(p, str))), end


def _escape(text: str, i: int, parts: list[str | int], is_bytes: bool, what: str, errors: _Errors) -> int:
    """Decode the escape sequence at ``text[i]`` (a backslash) into ``parts``;
    return the offset after it."""
    c = text[i + 1 : i + 2]
    if c in ("", "\n", "\r"):
        return i + 1  # the caller reports the unterminated literal
    if c in _SIMPLE_ESCAPES:
        parts.append(_SIMPLE_ESCAPES[c])
        return i + 2
    if c in _HEX_WIDTH:
        width = _HEX_WIDTH[c]
        digits = _HEX_DIGITS.match(text, i + 2, i + 2 + width).group()  # type: ignore[union-attr]
        end = i + 2 + len(digits)
        if len(digits) < width:
            errors.append((i, f"invalid escape sequence '{text[i:end]}' in {what}"))
            return end
        value = int(digits, 16)
        if c in "xX":
            parts.append(value if is_bytes else chr(value))
        elif 0xD800 <= value <= 0xDFFF or value > 0x10FFFF:
            errors.append((i, f"invalid Unicode code point in escape sequence '{text[i:end]}' in {what}"))
        else:
            parts.append(chr(value))
        return end
    if _OCTAL.match(text, i + 1):
        value = int(text[i + 1 : i + 4], 8)
        parts.append(value if is_bytes else chr(value))
        return i + 4
    shown = c if c.isprintable() else ascii(c)[1:-1]
    errors.append((i, f"invalid escape sequence '\\{shown}' in {what}"))
    return i + 2


# --- parser ------------------------------------------------------------------


class _Fail(Exception):
    """Abandons the parse after a recorded error that cannot be recovered."""


class _Chain:
    """A run of one of ``&&`` / ``||`` at one level, balanced when finished."""

    __slots__ = ("function", "terms", "positions")

    def __init__(self, function: str, terms: list[Expr], positions: list[int]):
        self.function = function
        self.terms = terms
        self.positions = positions


class _Parser:
    """Recursive descent with a shunting-yard loop for binary operators, so a
    nesting level costs at most six Python frames (expr → binary → unary →
    suffixes → select_or_call → args); ``max_depth`` is checked before each
    descent, and the default of 100 stays well inside the default stack."""

    def __init__(self, tokens: list[_Token], errors: _Errors, *, macros: bool, max_depth: int):
        self.toks = tokens
        self.i = 0
        self.errors = errors
        self.macros = macros
        self.max_depth = max_depth
        self.nesting = 1
        # After an unterminated literal the rest of the tokens are garbage:
        # report no grammar error there.
        self.quiet_after = min((pos for pos, msg in errors if msg.startswith("unterminated")), default=-1)
        # id(node) → (AST depth, node); the node is kept so its id stays unique.
        self.depths: dict[int, tuple[int, Expr]] = {}

    def run(self) -> Expr | None:
        try:
            expr = self._expr()
            if self.tok.kind != "eof":
                self._unexpected("an operator or the end of the expression")
            return expr
        except _Fail:
            return None
        except RecursionError:  # only if max_depth is set beyond the stack
            message = f"expression nesting is too deep for the parser (max_depth {self.max_depth} is too large)"
            self.errors.append((self.tok.pos, message))
            return None

    # -- tokens and errors

    @property
    def tok(self) -> _Token:
        return self.toks[self.i]

    def _peek(self) -> _Token:
        return self.toks[min(self.i + 1, len(self.toks) - 1)]

    def _advance(self) -> _Token:
        t = self.toks[self.i]
        if t.kind != "eof":
            self.i += 1
        return t

    def _expect(self, kind: str, expected: str) -> _Token:
        if self.tok.kind != kind:
            self._unexpected(expected)
        return self._advance()

    def _fail(self, pos: int, message: str) -> NoReturn:
        self.errors.append((pos, message))
        raise _Fail

    def _unexpected(self, expected: str) -> NoReturn:
        t = self.tok
        if t.kind == "error" or 0 <= self.quiet_after < t.pos:
            raise _Fail  # the lexer has reported it, or its cause
        if t.kind == "eof":
            self._fail(t.pos, f"unexpected end of input, expected {expected}")
        self._fail(t.pos, f"unexpected token '{_clip(t.text)}', expected {expected}")

    def _too_deep_message(self) -> str:
        return f"expression nesting exceeds the limit of {self.max_depth}"

    def _enter(self, pos: int) -> None:
        self.nesting += 1
        if self.nesting > self.max_depth:
            self._fail(pos, self._too_deep_message())

    def _node(self, node: Expr, *children: Expr) -> Expr:
        """Register ``node`` built over ``children``, enforcing the AST depth."""
        depth = 1 + max((self.depths[id(c)][0] for c in children), default=0)
        if depth > self.max_depth:
            self._fail(node.pos, self._too_deep_message())
        self.depths[id(node)] = (depth, node)
        return node

    # -- grammar

    def _expr(self) -> Expr:
        """Expr = ConditionalOr ["?" ConditionalOr ":" Expr], with the
        right recursion of chained conditionals done as a loop."""
        pending: list[tuple[Expr, Expr, int]] = []
        expr = self._binary()
        while self.tok.kind == "?":
            question = self._advance()
            self._enter(question.pos)  # each chained conditional nests one level
            then = self._binary()
            self._expect(":", "':'")
            pending.append((expr, then, question.pos))
            expr = self._binary()
        self.nesting -= len(pending)
        for cond, then, pos in reversed(pending):
            expr = self._node(Call("_?_:_", [cond, then, expr], pos=pos), cond, then, expr)
        return expr

    def _binary(self) -> Expr:
        """All binary precedence levels, by shunting-yard."""
        operands: list[Expr | _Chain] = [self._unary()]
        ops: list[_Token] = []
        while self.tok.kind in _BINARY:
            prec = _BINARY[self.tok.kind][0]
            while ops and _BINARY[ops[-1].kind][0] >= prec:
                self._reduce(operands, ops)
            ops.append(self._advance())
            operands.append(self._unary())
        while ops:
            self._reduce(operands, ops)
        return self._finish(operands[0])

    def _reduce(self, operands: list[Expr | _Chain], ops: list[_Token]) -> None:
        op = ops.pop()
        rhs = self._finish(operands.pop())
        lhs = operands.pop()
        function = _BINARY[op.kind][1]
        if op.kind in ("&&", "||"):
            if isinstance(lhs, _Chain) and lhs.function == function:
                lhs.terms.append(rhs)
                lhs.positions.append(op.pos)
                operands.append(lhs)
            else:
                operands.append(_Chain(function, [self._finish(lhs), rhs], [op.pos]))
            return
        lhs = self._finish(lhs)
        operands.append(self._node(Call(function, [lhs, rhs], pos=op.pos), lhs, rhs))

    def _finish(self, operand: Expr | _Chain) -> Expr:
        if isinstance(operand, _Chain):
            return self._balance(operand, 0, len(operand.positions) - 1)
        return operand

    def _balance(self, chain: _Chain, lo: int, hi: int) -> Expr:
        # cel-go's balancer: operator ``mid`` joins the trees of both halves.
        mid = (lo + hi + 1) // 2
        left = chain.terms[mid] if mid == lo else self._balance(chain, lo, mid - 1)
        right = chain.terms[mid + 1] if mid == hi else self._balance(chain, mid + 1, hi)
        return self._node(Call(chain.function, [left, right], pos=chain.positions[mid]), left, right)

    def _unary(self) -> Expr:
        first = self.tok
        if first.kind not in ("!", "-") or (first.kind == "-" and self._peek().kind in ("int", "double")):
            return self._suffixes(self._primary())
        run = 0
        while self.tok.kind == first.kind:
            self._enter(self.tok.pos)
            self._advance()
            run += 1
        operand = self._suffixes(self._primary())
        self.nesting -= run
        if run % 2 == 0:
            return operand
        function = "!_" if first.kind == "!" else "-_"
        return self._node(Call(function, [operand], pos=first.pos), operand)

    def _suffixes(self, expr: Expr) -> Expr:
        """Member = Primary followed by selections, calls and indexes."""
        # A bare (possibly qualified) name may still open a struct literal.
        is_name = isinstance(expr, Ident) and self.toks[self.i - 1].kind == "ident"
        while True:
            kind = self.tok.kind
            if kind == ".":
                expr = self._select_or_call(expr)
                is_name = is_name and self.toks[self.i - 1].kind == "ident"  # not a call
            elif kind == "[":
                bracket = self._advance()
                self._enter(bracket.pos)
                index = self._expr()
                self._expect("]", "']'")
                self.nesting -= 1
                expr = self._node(Call("_[_]", [expr, index], pos=bracket.pos), expr, index)
                is_name = False
            elif kind == "{" and is_name:
                expr, is_name = self._struct(expr), False
            else:
                return expr

    def _select_or_call(self, operand: Expr) -> Expr:
        dot = self._advance()
        name = self.tok
        if name.kind not in ("ident", "qident"):
            self._unexpected("a field name")
        self._advance()
        if name.kind == "ident" and self.tok.kind == "(":
            args, starts = self._args()
            return self._receiver_call(name.text, operand, args, starts, dot.pos)
        field = name.text if name.kind == "ident" else str(name.value)
        return self._node(Select(operand, field, pos=dot.pos), operand)

    def _primary(self) -> Expr:
        t = self.tok
        kind = t.kind
        if kind == "ident" or (kind == "." and self._peek().kind == "ident"):
            return self._ident_or_call()
        if kind == "-" and self._peek().kind in ("int", "double"):
            self._advance()
            return self._number(self._advance(), negative=True, pos=t.pos)
        if kind in ("int", "double"):
            return self._number(self._advance(), negative=False, pos=t.pos)
        if kind == "qident":
            self._fail(t.pos, f"quoted name {t.text} is only allowed as a field name, after '.'")
        if kind not in _PRIMARY_STARTS:
            self._unexpected("an expression")
        self._advance()
        if kind in ("uint", "string", "bytes"):
            return self._node(Literal(t.value, "uint" if kind == "uint" else kind, pos=t.pos))
        if kind in ("true", "false"):
            return self._node(Literal(kind == "true", "bool", pos=t.pos))
        if kind == "null":
            return self._node(Literal(None, "null_type", pos=t.pos))
        if kind == "(":
            self._enter(t.pos)
            expr = self._expr()
            self._expect(")", "')'")
            self.nesting -= 1
            return expr
        self._enter(t.pos)
        if kind == "[":
            elements = self._items("]", None)
            self.nesting -= 1
            return self._node(CreateList(elements, pos=t.pos), *elements)
        entries = self._items("}", "key")
        self.nesting -= 1
        return self._node(CreateMap(entries, pos=t.pos), *(e for entry in entries for e in entry))

    def _ident_or_call(self) -> Expr:
        start = self.tok.pos
        dot = "." if self.tok.kind == "." else ""
        if dot:
            self._advance()
        name = self._advance()
        if name.text in RESERVED:
            self.errors.append((name.pos, f"reserved identifier '{name.text}'"))
        if self.tok.kind == "(":
            args, starts = self._args()
            return self._global_call(dot + name.text, args, starts, start)
        return self._node(Ident(dot + name.text, pos=start))

    def _number(self, t: _Token, *, negative: bool, pos: int) -> Expr:
        value = t.value
        assert isinstance(value, (int, float))
        if negative:
            value = -value
        if t.kind == "double":
            return self._node(Literal(float(value), "double", pos=pos))
        if not INT64_MIN <= value <= INT64_MAX:
            self.errors.append((pos, f"integer literal out of range: {'-' if negative else ''}{_clip(t.text)}"))
            value = 0
        return self._node(Literal(int(value), "int", pos=pos))

    def _items(self, close: str, keys: str | None) -> list:
        """``item {"," item} [","]`` (or nothing) up to ``close``, consumed.
        Items are expressions, or ``(key, value)`` pairs with ``keys`` "key"
        (map entries) or "field" (struct fields). The grammar also allows a
        lone comma: ``[,]`` is an empty list. Expressions are parsed here,
        not in a per-item helper, to keep one frame less per nesting level."""
        items: list = []
        if self.tok.kind == "," and self._peek().kind == close:
            self._advance()
        while self.tok.kind != close:
            if keys is None:
                items.append(self._expr())
            else:
                key = self._expr() if keys == "key" else self._field_name()
                self._expect(":", "':'")
                items.append((key, self._expr()))
            if self.tok.kind != ",":
                break
            self._advance()
        self._expect(close, f"',' or '{close}'")
        return items

    def _struct(self, name: Expr) -> Expr:
        parts: list[str] = []
        while isinstance(name, Select):
            parts.append(name.field)
            name = name.operand
        assert isinstance(name, Ident)
        parts.append(name.name)
        self._enter(self._advance().pos)
        fields = self._items("}", "field")
        self.nesting -= 1
        type_name = ".".join(reversed(parts))
        return self._node(CreateStruct(type_name, fields, pos=name.pos), *(v for _, v in fields))

    def _field_name(self) -> str:
        t = self.tok
        if t.kind not in ("ident", "qident"):
            self._unexpected("a field name")
        self._advance()
        return t.text if t.kind == "ident" else str(t.value)

    def _args(self) -> tuple[list[Expr], list[int]]:
        """``(`` [ExprList] ``)``: the arguments and their start offsets."""
        self._enter(self._advance().pos)
        args: list[Expr] = []
        starts: list[int] = []
        if self.tok.kind != ")":
            while True:
                starts.append(self.tok.pos)
                args.append(self._expr())
                if self.tok.kind != ",":
                    break
                self._advance()
        self._expect(")", "',' or ')'")
        self.nesting -= 1
        return args, starts

    # -- calls and macros

    def _global_call(self, name: str, args: list[Expr], starts: list[int], pos: int) -> Expr:
        if self.macros and name == "has" and len(args) == 1:
            arg = args[0]
            if isinstance(arg, Select) and not arg.test_only:
                return self._node(Select(arg.operand, arg.field, test_only=True, pos=pos), arg.operand)
            self.errors.append((starts[0], "has() takes a field selection such as has(event.device_id)"))
        return self._node(Call(name, args, pos=pos), *args)

    def _receiver_call(self, name: str, target: Expr, args: list[Expr], starts: list[int], pos: int) -> Expr:
        if self.macros and len(args) in _MACROS.get(name, ()):
            var = args[0]
            if isinstance(var, Ident) and not var.name.startswith("."):
                return self._expand(name, target, var, args[1:], pos)
            self.errors.append((starts[0], f"{name}() takes a simple variable name as its first argument"))
        return self._node(Call(name, args, target=target, pos=pos), target, *args)

    def _expand(self, name: str, target: Expr, var: Ident, args: list[Expr], pos: int) -> Expr:
        """Expand a receiver macro into cel-go's comprehension."""
        node = self._node

        def accu() -> Expr:
            return node(Ident(ACCU_VAR, pos=pos))

        def lit(value: object, kind: str) -> Expr:
            return node(Literal(value, kind, pos=pos))

        def call(function: str, *call_args: Expr) -> Expr:
            return node(Call(function, list(call_args), pos=pos), *call_args)

        def append(element: Expr) -> Expr:  # accu + [element]
            return call("_+_", accu(), node(CreateList([element], pos=pos), element))

        init: Expr
        cond: Expr = lit(True, "bool")
        result = accu()
        if name == "all":
            init = lit(True, "bool")
            cond = call("@not_strictly_false", accu())
            step = call("_&&_", accu(), args[0])
        elif name == "exists":
            init = lit(False, "bool")
            cond = call("@not_strictly_false", call("!_", accu()))
            step = call("_||_", accu(), args[0])
        elif name == "exists_one":
            init = lit(0, "int")
            step = call("_?_:_", args[0], call("_+_", accu(), lit(1, "int")), accu())
            result = call("_==_", accu(), lit(1, "int"))
        elif name == "map":
            init = node(CreateList([], pos=pos))
            step = append(args[-1])
            if len(args) == 2:
                step = call("_?_:_", args[0], step, accu())
        else:  # filter
            init = node(CreateList([], pos=pos))
            step = call("_?_:_", args[0], append(node(Ident(var.name, pos=var.pos))), accu())
        comp = Comprehension(var.name, target, ACCU_VAR, init, cond, step, result, pos=pos)
        return node(comp, target, init, cond, step, result)
