"""Stage 1: read a rules file (SPEC §1) into typed, validated definitions.

``load_rules(path)`` parses the YAML, checks every section and returns a
:class:`RulesFile`, or raises one :class:`~fraudcore.errors.RuleError` holding
*every* problem found, in source order, each located at the offending YAML
node (1-based line and column, the source line, and the rule/counter/list/
field it belongs to). CEL is not parsed here: ``when:`` and ``where:`` become
:class:`SourceExpr` values that remember where they sit in the file, so the
policy compiler can move a CEL diagnostic to its place in the YAML
(:meth:`SourceExpr.relocate`).

Choices this loader makes where SPEC §1 is silent (documented for users):

- ``version`` is any scalar, kept as its source text; absent -> ``"unversioned"``.
- ``time`` names the event-time field (int, epoch ms). It is required only when
  there are counters; absent otherwise -> ``None``. If the field is not listed
  under ``fields`` it is added there as ``int``; if listed it must be ``int``.
- Field, list and counter names share one namespace (all are CEL variables),
  must be identifiers, not CEL reserved words and not ``event``.
- Lists: inline ``[a, b]``, or ``{file: path}`` / ``{values: [...]}`` with an
  optional ``type: string|int``. Inline items that YAML reads as integers are
  ints, every other scalar is taken as its text (so ``[NO, ON]`` are strings,
  not booleans); floats and empty items are errors; mixing strings and ints is
  an error (quote the numbers). A list file holds one value per line; blank
  lines and lines starting with ``#`` are skipped, whitespace stripped; it is
  ``list(int)`` when every value is a decimal integer, else ``list(string)``.
  Duplicates are dropped (first occurrence kept). An empty list is
  ``list(string)`` unless ``type`` says otherwise.
- Counters: ``by`` is required (one field or a list of fields). Windows are
  integers with a unit ``ms s m h d``, from 1s to 90d. The resolution (the
  bucket size) must divide the window, so that a value includes events at
  most one bucket older than the window: the default is the largest whole
  number of ms that divides the window and is at most window/60 (1 min for
  1h, 16 ms becomes 10 ms for 1s); a given ``resolution`` must divide the
  window, be at most the window and at least window/10000.
- Rules: ``id`` (identifier, unique) and ``when`` are required; ``action``
  defaults to the least severe action (``allow``) so that score-only rules are
  short; ``score`` defaults to 0 and lies in [-1e9, 1e9]; ``reason`` defaults
  to the rule id.
- Decision: ``actions`` default ``[allow, review, block]`` (least severe
  first); ``score_thresholds`` keys must be actions, values integers, and a
  more severe action may not have a lower threshold than a less severe one.
- Experiments (SPEC §5) are validated but the files they name are not read;
  ``variants`` may be omitted for a shadow-only experiment.
- Limits: 10 MiB per rules file, 256 MiB per list file, YAML nesting depth 64,
  aliases may add at most 100 000 nodes (no "billion laughs"), no recursive
  aliases. Duplicate mapping keys are errors. Merge keys (``<<: *base``) work.

Dataclass equality ignores source positions, so a counter that only moved in
the file compares equal to its previous definition (``Engine.reload`` keeps its
state).
"""

from __future__ import annotations

import difflib
import os
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Iterable

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..cel.types import DOUBLE, DYN, INT, STRING, UINT, CelType, list_of, map_of, parse_type
from ..errors import Diagnostic, RuleError

__all__ = [
    "AGGREGATES",
    "CounterDef",
    "DecisionPolicy",
    "ExperimentDef",
    "ListDef",
    "RuleDef",
    "RulesFile",
    "SourceExpr",
    "VariantDef",
    "load_rules",
    "parse_duration",
]

_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_LIST_FILE_BYTES = 256 * 1024 * 1024
MAX_NESTING = 64
MAX_ALIAS_NODES = 100_000
MIN_WINDOW_MS = 1_000
MAX_WINDOW_MS = 90 * 86_400_000
DEFAULT_BUCKETS = 60
MAX_BUCKETS = 10_000
MAX_SCORE = 10**9
DEFAULT_ACTIONS = ("allow", "review", "block")
DEFAULT_VERSION = "unversioned"

AGGREGATES = ("count", "sum", "min", "max", "avg", "distinct")
_NUMERIC_AGGS = ("sum", "min", "max", "avg")
_NUMERIC_KINDS = ("int", "uint", "double")
_KEY_KINDS = ("string", "int", "uint", "bool", "bytes", "dyn")  # usable in `by` / `unit`
_SCALAR_KINDS = _KEY_KINDS + ("double", "google.protobuf.Timestamp", "google.protobuf.Duration")

_TOP_KEYS = ("version", "time", "fields", "lists", "counters", "rules", "decision", "experiments")
_COUNTER_KEYS = ("agg", "of", "by", "window", "where", "resolution")
_RULE_KEYS = ("id", "when", "action", "score", "reason")
_LIST_KEYS = ("file", "values", "type")
_DECISION_KEYS = ("actions", "score_thresholds")
_EXPERIMENT_KEYS = ("id", "unit", "variants", "shadow")
_VARIANT_KEYS = ("weight", "rules")

_CEL_RESERVED = frozenset(
    "in true false null as break const continue else for function if import let loop "
    "package namespace return var void while".split()
)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION = re.compile(r"([0-9]+)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DEC_INT = re.compile(r"[-+]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Line breaks as YAML (and libyaml's marks) count them.
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
# Leading characters of a line that can open block collections (see _check_nesting).
_BLOCK_PREFIX = re.compile(r"^(?:[ \t?:-]|[&!][^ \t\r\n]*)*", re.M)

_TAG = "tag:yaml.org,2002:"
_INT_TAG, _FLOAT_TAG, _NULL_TAG, _STR_TAG, _MERGE_TAG = (_TAG + t for t in ("int", "float", "null", "str", "merge"))
_constructor = yaml.constructor.SafeConstructor()


# --------------------------------------------------------------------------
# Definitions


@dataclass(frozen=True, slots=True)
class SourceExpr:
    """A CEL expression taken from a YAML scalar (``when:`` / ``where:``).

    ``line``/``column`` (1-based) are where the expression text starts in
    ``file``. The private fields map an offset in ``text`` back to the file:
    ``anchors`` holds ``(offset, line, column)`` points (text continues
    linearly after each), ``lines`` the file lines the scalar spans, starting
    at line ``first_line``. Built by hand with only text, file, line and
    column, it maps offsets along that one line.
    """

    text: str
    file: str = field(default="", compare=False)
    line: int = field(default=1, compare=False)
    column: int = field(default=1, compare=False)
    anchors: tuple[tuple[int, int, int], ...] = field(default=(), compare=False, repr=False)
    lines: tuple[str, ...] = field(default=(), compare=False, repr=False)
    first_line: int = field(default=1, compare=False, repr=False)

    def locate(self, offset: int) -> tuple[int, int, str]:
        """File (line, column, source line) of character ``offset`` of ``text``."""
        offset = max(0, min(offset, len(self.text)))
        anchors = self.anchors or ((0, self.line, self.column),)
        i = bisect_right(anchors, (offset, _INT64_MAX, _INT64_MAX)) - 1
        start, line, column = anchors[max(i, 0)]
        k = line - self.first_line
        source_line = self.lines[k] if 0 <= k < len(self.lines) else ""
        return line, column + offset - start, source_line

    def relocate(self, diag: Diagnostic, where: str) -> Diagnostic:
        """``diag`` (located by ``diag.offset`` in ``text``; the start of the
        expression when ``offset < 0``) placed in the rules file."""
        line, column, source_line = self.locate(max(diag.offset, 0))
        return Diagnostic(diag.message, line, column, source_line, where, self.file)


@dataclass(frozen=True, slots=True)
class ListDef:
    """A named set, usable with CEL ``in``; its CEL type is ``list(elem_type)``.

    ``values`` keeps file order without duplicates; ``file`` is the list file
    as resolved (``None`` for inline lists).
    """

    name: str
    values: tuple
    elem_type: CelType
    file: str | None = None
    line: int = field(default=0, compare=False)
    column: int = field(default=0, compare=False)

    @property
    def cel_type(self) -> CelType:
        return list_of(self.elem_type)


@dataclass(frozen=True, slots=True)
class CounterDef:
    """A sliding-window aggregate over event time, keyed by the ``by`` fields.

    ``of`` is ``None`` for ``count``. Windows and bucket widths are in ms.
    """

    id: str
    agg: str
    of: str | None
    by: tuple[str, ...]
    window_ms: int
    resolution_ms: int
    where: SourceExpr | None = None
    line: int = field(default=0, compare=False)
    column: int = field(default=0, compare=False)

    @property
    def cel_type(self) -> CelType:
        """``int`` for count/distinct, ``double`` otherwise (SPEC §1)."""
        return INT if self.agg in ("count", "distinct") else DOUBLE


@dataclass(frozen=True, slots=True)
class RuleDef:
    """One rule: when ``when`` is true, it votes ``action`` and adds ``score``."""

    id: str
    when: SourceExpr
    action: str
    score: int = 0
    reason: str = ""
    line: int = field(default=0, compare=False)
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class DecisionPolicy:
    """``actions`` in severity order, least severe first; a score at or above
    ``score_thresholds[a]`` makes the decision at least ``a``."""

    actions: tuple[str, ...] = DEFAULT_ACTIONS
    score_thresholds: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VariantDef:
    """An experiment arm; ``rules`` is a path relative to the rules file, or
    ``None`` for the rules of this file (the control)."""

    name: str
    weight: int
    rules: str | None = None
    line: int = field(default=0, compare=False)
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class ExperimentDef:
    """An A/B test and/or shadow evaluation (SPEC §5); files are not loaded here."""

    id: str
    unit: str | None
    variants: tuple[VariantDef, ...]
    shadow: tuple[str, ...] = ()
    line: int = field(default=0, compare=False)
    column: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class RulesFile:
    """A validated rules file. ``fields`` includes the time field (``int``)."""

    path: str
    text: str
    version: str
    time_field: str | None
    fields: dict[str, CelType]
    lists: dict[str, ListDef]
    counters: dict[str, CounterDef]
    rules: tuple[RuleDef, ...]
    decision: DecisionPolicy
    experiments: tuple[ExperimentDef, ...] = ()

    def declarations(self) -> dict[str, CelType]:
        """Every CEL variable the expressions see: fields, lists, counters and
        ``event`` (the whole event as ``map(string, dyn)``)."""
        out = dict(self.fields)
        out.update((n, d.cel_type) for n, d in self.lists.items())
        out.update((n, d.cel_type) for n, d in self.counters.items())
        out["event"] = map_of(STRING, DYN)
        return out

    def resolve_path(self, path: str) -> str:
        """A path from the file (list, variant, shadow) relative to its directory."""
        return os.path.join(os.path.dirname(self.path), path)


def _default_resolution(window_ms: int) -> int:
    """The largest whole number of ms that divides the window and is at most
    window/60 (so at least 60 buckets)."""
    r = max(1, window_ms // DEFAULT_BUCKETS)
    while window_ms % r:
        r -= 1
    return r


def parse_duration(text: str) -> int | None:
    """Milliseconds of ``90s``, ``10m``, ``1h``, ``7d``, ``1500ms``; ``None`` if not a duration."""
    m = _DURATION.fullmatch(text.strip())
    return int(m.group(1)) * _UNIT_MS[m.group(2)] if m else None


def load_rules(source: str | os.PathLike, *, text: str | None = None) -> RulesFile:
    """Load and validate a rules file.

    With ``text``, that is the file's content and ``source`` only names it (in
    messages, and as the base for relative list paths). Raises
    :class:`RuleError` listing every problem found.
    """
    path = os.fspath(source)
    if text is None:
        text = _read_rules_file(path)
    elif len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise RuleError(Diagnostic(_too_big(path), file=path))
    return _Loader(path, text).load()


# --------------------------------------------------------------------------
# Reading


def _too_big(path: str) -> str:
    return f"rules file is larger than the limit of {MAX_FILE_BYTES // (1024 * 1024)} MiB"


def _read_rules_file(path: str) -> str:
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_FILE_BYTES:
                raise RuleError(Diagnostic(_too_big(path), file=path))
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise RuleError(Diagnostic(f"rules file not found: {path}", file=path)) from None
    except IsADirectoryError:
        raise RuleError(Diagnostic(f"rules file is a directory: {path}", file=path)) from None
    except OSError as e:
        raise RuleError(Diagnostic(f"cannot read rules file: {e.strerror or e}", file=path)) from None
    if len(data) > MAX_FILE_BYTES:
        raise RuleError(Diagnostic(_too_big(path), file=path))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise RuleError(
            Diagnostic(f"rules file is not UTF-8 text (bad byte 0x{data[e.start]:02x})", line, column, file=path)
        ) from None


def _describe(node: Node) -> str:
    """How a value reads in a message: ``a mapping``, ``'5 minutes'``..."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if node.tag == _NULL_TAG and not node.style and node.value in ("", "~"):
        return "an empty value"
    return f"'{node.value}'"


def _suggest(name: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return node.value
    return []


class _Loader:
    """The state of one load: the text, its lines, and the problems found."""

    def __init__(self, path: str, text: str):
        self.path = path
        self.text = text
        self.base_dir = os.path.dirname(path)
        self.lines = _LINE_BREAK.split(text)
        self.diags: list[Diagnostic] = []

    # -- reporting
    def error(self, at: Node | yaml.Mark | None, message: str, where: str = "") -> None:
        if at is None:
            self.diags.append(Diagnostic(message, where=where, file=self.path))
            return
        mark = at.start_mark if isinstance(at, Node) else at
        line = mark.line
        source_line = self.lines[line] if 0 <= line < len(self.lines) else ""
        self.diags.append(Diagnostic(message, line + 1, mark.column + 1, source_line, where, self.path))

    def fail(self) -> RuleError:
        return RuleError(sorted(self.diags, key=lambda d: (d.line, d.column)))

    # -- YAML
    def compose(self) -> Node | None:
        deep = self._check_nesting()
        if deep is not None:
            self.error(deep, f"YAML is nested deeper than {MAX_NESTING} levels")
            raise self.fail()
        try:
            root = yaml.compose(self.text, Loader=_YamlLoader)
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            message = f"invalid YAML: {e.problem or e.context}"
            if e.context and e.problem and e.context_mark is not None:
                message += f" ({e.context} at line {e.context_mark.line + 1})"
            self.error(mark, message)
            raise self.fail() from None
        except yaml.YAMLError as e:  # ReaderError: a character YAML forbids
            position = getattr(e, "position", None)
            if isinstance(position, int):
                line = len(_LINE_BREAK.findall(self.text, 0, position))
                start = max(self.text.rfind("\n", 0, position), self.text.rfind("\r", 0, position)) + 1
                self.error(yaml.Mark("", position, line, position - start, None, None), _reader_message(e))
            else:
                self.error(None, f"invalid YAML: {e}")
            raise self.fail() from None
        if root is not None:
            self._check_aliases(root)
        return root

    def _check_nesting(self) -> yaml.Mark | None:
        """Where the YAML nests deeper than MAX_NESTING, else None.

        libyaml's composer recurses in C and crashes the process on very deep
        nesting, so this runs first. Cheap bound: flow depth is at most the
        number of ``[``/``{``, block depth at most twice the widest run of
        indentation and ``- ? :``/anchor/tag indicators at a line start. Only
        when that bound is too high are the parser's events counted exactly
        (which stops at the first too-deep collection).
        """
        flow = self.text.count("[") + self.text.count("{")
        if flow <= MAX_NESTING:
            block = max(map(len, _BLOCK_PREFIX.findall(self.text)), default=0)
            if flow + 2 * (block + 1) <= MAX_NESTING:
                return None
        depth = 0
        try:
            for event in yaml.parse(self.text, Loader=_YamlLoader):
                if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                    depth += 1
                    if depth > MAX_NESTING:
                        return event.start_mark
                elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                    depth -= 1
        except yaml.MarkedYAMLError as e:
            # Newer libyaml stops at its own depth limit (1000) while scanning
            # ahead, before the event at MAX_NESTING reaches us.
            if "nesting depth" in str(e.problem):
                return e.problem_mark
        except yaml.YAMLError:
            pass  # reported by compose
        return None

    def _check_aliases(self, root: Node) -> None:
        """Reject recursive aliases and documents whose aliases expand to
        more than MAX_ALIAS_NODES extra nodes. Iterative: no recursion limit."""
        size: dict[int, int] = {}
        entered: set[int] = set()
        distinct = 0
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, done = stack.pop()
            key = id(node)
            if done:
                size[key] = 1 + sum(size[id(c)] for c in _children(node))
                continue
            if key in size:
                continue
            if key in entered:
                self.error(node, "recursive YAML alias (a node that contains itself)")
                raise self.fail()
            entered.add(key)
            distinct += 1
            stack.append((node, True))
            stack.extend((c, False) for c in _children(node) if id(c) not in size)
        extra = size[id(root)] - distinct
        if extra > MAX_ALIAS_NODES:
            self.error(
                None,
                f"YAML aliases expand the file by {extra} nodes, more than the limit of {MAX_ALIAS_NODES}",
            )
            raise self.fail()

    def pairs(self, node: MappingNode, where: str, what: str = "key") -> list[tuple[ScalarNode, Node]]:
        """The (key, value) pairs of a mapping: merge keys flattened,
        non-scalar and duplicate keys reported (``duplicate <what> 'x'``)."""
        explicit: list[tuple[ScalarNode, Node]] = []
        merged: list[tuple[ScalarNode, Node]] = []
        for k, v in node.value:
            if k.tag == _MERGE_TAG:
                sources = [v] if isinstance(v, MappingNode) else v.value if isinstance(v, SequenceNode) else None
                if sources is None or not all(isinstance(s, MappingNode) for s in sources):
                    self.error(v, "'<<' merges a mapping or a list of mappings", where)
                    continue
                for s in sources:
                    merged.extend(self.pairs(s, where, what))
            elif not isinstance(k, ScalarNode):
                self.error(k, f"{what} must be a plain name (got {_describe(k)})", where)
            else:
                explicit.append((k, v))
        seen: dict[str, ScalarNode] = {}
        out = []
        for k, v in explicit:
            first = seen.get(k.value)
            if first is not None:
                self.error(k, f"duplicate {what} '{k.value}' (first defined at line {first.start_mark.line + 1})", where)
                continue
            seen[k.value] = k
            out.append((k, v))
        for k, v in merged:
            if k.value not in seen:
                seen[k.value] = k
                out.append((k, v))
        return out

    def keyed(self, node: MappingNode, allowed: tuple[str, ...], what: str, where: str) -> dict[str, tuple[ScalarNode, Node]]:
        """A mapping with a fixed set of keys: ``{key: (key_node, value_node)}``."""
        out = {}
        for k, v in self.pairs(node, where):
            if k.value not in allowed:
                self.error(k, f"unknown key '{k.value}' in {what} (expected one of: {', '.join(allowed)})", where)
            else:
                out[k.value] = (k, v)
        return out

    # -- scalars
    def text_of(self, node: Node, what: str, where: str, expected: str = "text") -> str | None:
        """The source text of a non-empty scalar."""
        if not isinstance(node, ScalarNode) or _describe(node) == "an empty value":
            self.error(node, f"{what} must be {expected} (got {_describe(node)})", where)
            return None
        return node.value

    def int_of(self, node: Node, what: str, where: str, lo: int, hi: int) -> int | None:
        if not isinstance(node, ScalarNode) or node.tag != _INT_TAG:
            quoted = " (a quoted string)" if isinstance(node, ScalarNode) and node.style in ("'", '"') else ""
            self.error(node, f"{what} must be an integer (got {_describe(node)}{quoted})", where)
            return None
        value = _constructor.construct_yaml_int(node)
        if not lo <= value <= hi:
            self.error(node, f"{what} must be between {lo} and {hi} (got {value})", where)
            return None
        return value

    def name_of(self, node: ScalarNode, kind: str, where: str) -> bool:
        """Check a field/list/counter name; True when usable."""
        name = node.value
        if not _IDENT.fullmatch(name):
            self.error(node, f"{kind} name '{name}' is not an identifier (letters, digits and _, not starting with a digit)", where)
        elif name in _CEL_RESERVED:
            self.error(node, f"{kind} name '{name}' is a CEL reserved word", where)
        elif name == "event":
            self.error(node, f"{kind} name 'event' is reserved: the whole event is bound as 'event'", where)
        else:
            return True
        return False

    def duration_of(self, node: Node, what: str, where: str) -> tuple[int, str] | None:
        text = node.value.strip() if isinstance(node, ScalarNode) else None
        ms = parse_duration(text) if text else None
        if ms is None:
            got = f"'{text}'" if text else _describe(node)
            hint = f"; add a unit, e.g. {text}s" if text and text.isdigit() else ""
            self.error(node, f"{what} must be a duration such as 90s, 10m, 1h, 7d (got {got}{hint})", where)
            return None
        return ms, text

    def field_ref(self, node: Node, fields: dict[str, CelType], what: str, where: str) -> str | None:
        name = self.text_of(node, what, where, "a field name")
        if name is None:
            return None
        if name not in fields:
            self.error(node, f"unknown field '{name}' in {what}{_suggest(name, fields)}", where)
            return None
        return name

    def expr_of(self, node: Node, what: str, where: str) -> SourceExpr | None:
        if self.text_of(node, what, where, "a CEL expression") is None:
            return None
        if not node.value.strip():
            self.error(node, f"{what} must be a CEL expression (got an empty value)", where)
            return None
        if node.style in ("|", ">"):
            anchors = self._block_anchors(node)
        else:
            anchors = self._flow_anchors(node)
        first = node.start_mark.line
        last = min(max(node.end_mark.line, anchors[-1][1] - 1), len(self.lines) - 1)
        _, line, column = anchors[0]
        return SourceExpr(node.value, self.path, line, column, anchors, tuple(self.lines[first : last + 1]), first + 1)

    # -- offset maps for SourceExpr
    def _flow_anchors(self, node: ScalarNode) -> tuple[tuple[int, int, int], ...]:
        """Plain and quoted scalars: split the source into runs of characters
        that appear verbatim in the value (escapes and ``''`` are runs of
        their own), then find each run in the value in order; folding only
        puts spaces and line breaks between runs."""
        q = 1 if node.style in ("'", '"') else 0
        sl, sc = node.start_mark.line, node.start_mark.column
        el, ec = node.end_mark.line, node.end_mark.column
        pieces: list[tuple[str, int, int]] = []
        for ln in range(sl, min(el, len(self.lines) - 1) + 1):
            s = self.lines[ln]
            a = sc + q if ln == sl else len(s) - len(s.lstrip(" \t"))
            b = ec - q if ln == el else len(s.rstrip(" \t"))
            seg = s[a:b]
            if node.style == "'":
                pos = 0
                while True:
                    i = seg.find("''", pos)
                    if i < 0:
                        pieces.append((seg[pos:], ln, a + pos))
                        break
                    pieces.append((seg[pos:i] + "'", ln, a + pos))
                    pos = i + 2
            elif node.style == '"':
                pieces.extend((t, ln, a + i) for t, i in _unescape_runs(seg))
            else:
                pieces.append((seg, ln, a))
        return self._align(node.value, pieces, (0, sl + 1, sc + q + 1))

    def _block_anchors(self, node: ScalarNode) -> tuple[tuple[int, int, int], ...]:
        """``|`` keeps lines: value line k is file line header+1+k, after
        the indentation. ``>`` folds lines, so its lines are aligned like
        flow runs."""
        sl = node.start_mark.line
        last = min(node.end_mark.line, len(self.lines) - 1)
        content = range(sl + 1, last + 1)
        indent = next((len(s) - len(s.lstrip(" ")) for s in (self.lines[i] for i in content) if s.strip()), None)
        if indent is None:
            return ((0, sl + 1, node.start_mark.column + 1),)
        if node.style == "|":
            anchors, offset = [], 0
            for k, vline in enumerate(node.value.split("\n")):
                anchors.append((offset, sl + 2 + k, indent + 1))
                offset += len(vline) + 1
            return tuple(anchors)
        pieces = [(self.lines[i][indent:], i, indent) for i in content if self.lines[i].strip()]
        return self._align(node.value, pieces, (0, sl + 2, indent + 1))

    @staticmethod
    def _align(value: str, pieces: list[tuple[str, int, int]], default: tuple[int, int, int]) -> tuple[tuple[int, int, int], ...]:
        anchors: list[tuple[int, int, int]] = []
        pos = 0
        for piece, ln, col in pieces:
            if not piece:
                continue
            j = value.find(piece, pos)
            if j < 0 or value[pos:j].strip(" \n"):
                break  # not what we expected: keep the anchors so far
            anchors.append((j, ln + 1, col + 1))
            pos = j + len(piece)
        if not anchors or anchors[0][0] != 0:
            anchors.insert(0, default)
        return tuple(anchors)

    # -- sections
    def load(self) -> RulesFile:
        root = self.compose()
        if root is None:
            self.error(None, "the rules file is empty (expected a mapping with version, fields, rules...)")
            raise self.fail()
        if not isinstance(root, MappingNode):
            self.error(root, f"the rules file must be a mapping with keys {', '.join(_TOP_KEYS)} (got {_describe(root)})")
            raise self.fail()
        top = self.keyed(root, _TOP_KEYS, "the rules file", "")

        version = DEFAULT_VERSION
        if "version" in top:
            version = self.text_of(top["version"][1], "version", "", "a string such as 2026-12-04.1") or version

        fields, field_nodes = self.load_fields(top.get("fields"))
        time_field = self.load_time(top.get("time"), fields, field_nodes, top.get("counters"))
        lists = self.load_lists(top.get("lists"), field_nodes)
        counters = self.load_counters(top.get("counters"), fields, field_nodes, lists)
        decision = self.load_decision(top.get("decision"))
        rules = self.load_rules(top.get("rules"), decision.actions)
        experiments = self.load_experiments(top.get("experiments"), fields)
        result = RulesFile(self.path, self.text, version, time_field, fields, lists, counters, rules, decision, experiments)
        if self.diags:
            # What could be read is attached, so the policy compiler can add
            # its CEL errors and the analyst sees every problem at once.
            error = self.fail()
            error.partial = result
            raise error
        return result

    def section(self, entry: tuple[ScalarNode, Node] | None, name: str, kind: type, expected: str) -> Node | None:
        """The value of a top-level section, when it has the right shape;
        an empty section (``lists:``) counts as absent."""
        if entry is None:
            return None
        node = entry[1]
        if isinstance(node, ScalarNode) and _describe(node) == "an empty value":
            return None
        if not isinstance(node, kind):
            self.error(node, f"{name} must be {expected} (got {_describe(node)})")
            return None
        return node

    def load_fields(self, entry) -> tuple[dict[str, CelType], dict[str, ScalarNode]]:
        fields: dict[str, CelType] = {}
        nodes: dict[str, ScalarNode] = {}
        node = self.section(entry, "fields", MappingNode, "a mapping of field name to CEL type")
        if node is None:
            return fields, nodes
        for k, v in self.pairs(node, "", "field name"):
            where = f"field {k.value}"
            nodes[k.value] = k
            if not self.name_of(k, "field", where):
                continue
            text = self.text_of(v, f"the type of field '{k.value}'", where, "a CEL type such as string, int, double, bool, list(string)")
            if text is None:
                continue
            try:
                fields[k.value] = parse_type(text)
            except ValueError as e:
                self.error(v, str(e), where)
        return fields, nodes

    def load_time(self, entry, fields, field_nodes, counters_entry) -> str | None:
        if entry is None:
            if counters_entry is not None and isinstance(counters_entry[1], MappingNode) and counters_entry[1].value:
                self.error(counters_entry[0], "counters need an event-time field: add 'time: <field>' (an int field, epoch milliseconds)")
            return None
        node = entry[1]
        name = self.text_of(node, "time", "", "the name of the event-time field (int, epoch milliseconds)")
        if name is None or not self.name_of(node, "time field", ""):
            return None
        declared = fields.get(name)
        if declared is None and name not in field_nodes:
            fields[name] = INT
        elif declared is not None and declared != INT:
            self.error(field_nodes[name], f"time field '{name}' must be declared int (epoch milliseconds), not {declared}", f"field {name}")
        return name

    def load_lists(self, entry, field_nodes) -> dict[str, ListDef]:
        lists: dict[str, ListDef] = {}
        node = self.section(entry, "lists", MappingNode, "a mapping of list name to values")
        if node is None:
            return lists
        for k, v in self.pairs(node, "", "list name"):
            name = k.value
            where = f"list {name}"
            if not self.name_of(k, "list", where):
                continue
            if name in field_nodes:
                self.error(k, f"list name '{name}' is already a field (line {field_nodes[name].start_mark.line + 1}); fields, lists and counters share one namespace", where)
                continue
            made = self.load_list(name, v, where)
            if made is not None:
                values, elem, path = made
                lists[name] = ListDef(name, values, elem, path, k.start_mark.line + 1, k.start_mark.column + 1)
        return lists

    def load_list(self, name: str, node: Node, where: str):
        declared = None
        if isinstance(node, MappingNode):
            keys = self.keyed(node, _LIST_KEYS, "list", where)
            if "type" in keys:
                tnode = keys["type"][1]
                declared = self.text_of(tnode, "list type", where, "string or int")
                if declared is not None and declared not in ("string", "int"):
                    self.error(tnode, f"list type must be string or int (got '{declared}')", where)
                    return None
                if declared is None:
                    return None
            if ("file" in keys) == ("values" in keys):
                self.error(node, "list needs exactly one of 'file' (a path) or 'values' (a list)", where)
                return None
            if "file" in keys:
                return self.load_list_file(keys["file"][1], declared, where)
            node = keys["values"][1]
        if not isinstance(node, SequenceNode):
            self.error(node, f"list '{name}' must be a list of values or {{file: path}} (got {_describe(node)})", where)
            return None
        return self.load_inline_list(node, declared, where)

    def load_inline_list(self, node: SequenceNode, declared: str | None, where: str):
        values: list = []
        first_kind: tuple[str, Node] | None = None
        ok = True
        for item in node.value:
            if not isinstance(item, ScalarNode) or _describe(item) == "an empty value":
                self.error(item, f"list values must be strings or integers (got {_describe(item)})", where)
                ok = False
                continue
            if item.tag == _FLOAT_TAG and declared != "string":
                self.error(item, f"list values must be strings or integers (got {_describe(item)}; quote it to make it a string)", where)
                ok = False
                continue
            if item.tag == _INT_TAG and declared != "string":
                kind, value = "int", _constructor.construct_yaml_int(item)
                if not _INT64_MIN <= value <= _INT64_MAX:
                    self.error(item, f"list value {value} does not fit in a 64-bit int", where)
                    ok = False
                    continue
            else:
                kind, value = "string", item.value
            if declared == "int" and kind != "int":
                self.error(item, f"list of type int holds a non-integer {_describe(item)}", where)
                ok = False
                continue
            if first_kind is None:
                first_kind = (kind, item)
            elif kind != first_kind[0] and declared is None:
                self.error(
                    item,
                    f"list mixes strings and integers: {_describe(item)} is a{'n' if kind == 'int' else ''} {kind}, "
                    f"{_describe(first_kind[1])} (line {first_kind[1].start_mark.line + 1}) is a{'n' if first_kind[0] == 'int' else ''} "
                    f"{first_kind[0]}; quote the numbers to make them all strings",
                    where,
                )
                ok = False
                continue
            values.append(value)
        if not ok:
            return None
        elem = declared or (first_kind[0] if first_kind else "string")
        return tuple(dict.fromkeys(values)), (INT if elem == "int" else STRING), None

    def load_list_file(self, node: Node, declared: str | None, where: str):
        rel = self.text_of(node, "list file", where, "a path")
        if rel is None:
            return None
        path = os.path.join(self.base_dir, rel)
        try:
            with open(path, "rb") as f:
                if os.fstat(f.fileno()).st_size > MAX_LIST_FILE_BYTES:
                    self.error(node, f"list file {rel} is larger than the limit of {MAX_LIST_FILE_BYTES // (1024 * 1024)} MiB", where)
                    return None
                data = f.read()
        except FileNotFoundError:
            self.error(node, f"list file not found: {rel}", where)
            return None
        except IsADirectoryError:
            self.error(node, f"list file is a directory: {rel}", where)
            return None
        except OSError as e:
            self.error(node, f"cannot read list file {rel}: {e.strerror or e}", where)
            return None
        try:
            content = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            self.error(node, f"list file {rel} is not UTF-8 text (bad byte at line {line})", where)
            return None
        lines = content.split("\n")
        values = [s for s in map(str.strip, lines) if s and s[0] != "#"]
        as_int = declared == "int" or (declared is None and values and all(map(_DEC_INT.fullmatch, values)))
        if as_int:
            for i, s in enumerate(values):
                if not _DEC_INT.fullmatch(s) or not _INT64_MIN <= int(s) <= _INT64_MAX:
                    lineno = next(n for n, raw in enumerate(lines, 1) if raw.strip() == s)
                    self.error(node, f"list file {rel} line {lineno}: '{s}' is not a 64-bit integer", where)
                    return None
            values = list(map(int, values))
        return tuple(dict.fromkeys(values)), (INT if as_int else STRING), path

    def load_counters(self, entry, fields, field_nodes, lists) -> dict[str, CounterDef]:
        counters: dict[str, CounterDef] = {}
        node = self.section(entry, "counters", MappingNode, "a mapping of counter id to its definition")
        if node is None:
            return counters
        for k, v in self.pairs(node, "", "counter id"):
            cid = k.value
            where = f"counter {cid}"
            if not self.name_of(k, "counter", where):
                continue
            if cid in field_nodes or cid in lists:
                other = "a field" if cid in field_nodes else "a list"
                line = (field_nodes[cid].start_mark.line + 1) if cid in field_nodes else lists[cid].line
                self.error(k, f"counter id '{cid}' is already {other} (line {line}); fields, lists and counters share one namespace", where)
                continue
            if not isinstance(v, MappingNode):
                self.error(v, f"counter '{cid}' must be a mapping with agg, by, window (got {_describe(v)})", where)
                continue
            c = self.load_counter(cid, k, v, fields, where)
            if c is not None:
                counters[cid] = c
        return counters

    def load_counter(self, cid, key: ScalarNode, node: MappingNode, fields, where) -> CounterDef | None:
        keys = self.keyed(node, _COUNTER_KEYS, "counter", where)
        ok = True
        agg = None
        if "agg" not in keys:
            self.error(node, f"counter needs 'agg' (one of: {', '.join(AGGREGATES)})", where)
            ok = False
        else:
            agg = self.text_of(keys["agg"][1], "agg", where, f"one of: {', '.join(AGGREGATES)}")
            if agg is not None and agg not in AGGREGATES:
                self.error(keys["agg"][1], f"unknown agg '{agg}' (expected one of: {', '.join(AGGREGATES)})", where)
                agg = None
            ok = ok and agg is not None

        of = None
        if "of" in keys and agg == "count":
            self.error(keys["of"][0], "agg 'count' takes no 'of' (it counts events; use sum to add up a field)", where)
            ok = False
        elif "of" in keys:
            of = self.field_ref(keys["of"][1], fields, "of", where)
            if of is not None and agg is not None:
                t = fields[of]
                if agg in _NUMERIC_AGGS and t.kind not in _NUMERIC_KINDS:
                    self.error(keys["of"][1], f"agg '{agg}' needs a numeric field (int or double) in of, but '{of}' is {t}", where)
                    of = None
                elif agg == "distinct" and t.kind not in _SCALAR_KINDS:
                    self.error(keys["of"][1], f"agg 'distinct' needs a scalar field in of, but '{of}' is {t}", where)
                    of = None
            ok = ok and of is not None
        elif agg not in (None, "count"):
            self.error(keys["agg"][1], f"agg '{agg}' needs 'of' (the field to aggregate)", where)
            ok = False

        by: list[str] = []
        if "by" not in keys:
            self.error(node, "counter needs 'by' (a field or a list of fields to key it by)", where)
            ok = False
        else:
            bnode = keys["by"][1]
            items = bnode.value if isinstance(bnode, SequenceNode) else [bnode]
            if not items:
                self.error(bnode, "by must name at least one field", where)
                ok = False
            for item in items:
                name = self.field_ref(item, fields, "by", where)
                if name is None:
                    ok = False
                elif name in by:
                    self.error(item, f"field '{name}' appears twice in by", where)
                    ok = False
                elif fields[name].kind not in _KEY_KINDS:
                    self.error(item, f"by field '{name}' is {fields[name]}; keys must be string, int, uint, bool or bytes", where)
                    ok = False
                else:
                    by.append(name)

        window_ms = None
        if "window" not in keys:
            self.error(node, "counter needs 'window' (a duration such as 10m, 1h, 7d)", where)
            ok = False
        else:
            wnode = keys["window"][1]
            parsed = self.duration_of(wnode, "window", where)
            if parsed is not None:
                ms, text = parsed
                if ms > MAX_WINDOW_MS:
                    self.error(wnode, f"window {text} is longer than the maximum 90d", where)
                elif ms < MIN_WINDOW_MS:
                    self.error(wnode, f"window {text} is shorter than the minimum 1s", where)
                else:
                    window_ms = ms
            ok = ok and window_ms is not None

        resolution_ms = _default_resolution(window_ms) if window_ms else None
        if "resolution" in keys:
            rnode = keys["resolution"][1]
            parsed = self.duration_of(rnode, "resolution", where)
            if parsed is None:
                ok = False
            elif window_ms is not None:
                ms, text = parsed
                if ms > window_ms or ms == 0:
                    self.error(rnode, f"resolution {text} must be positive and at most the window", where)
                    ok = False
                elif ms * MAX_BUCKETS < window_ms:
                    self.error(rnode, f"resolution {text} is finer than window/{MAX_BUCKETS} (at most {MAX_BUCKETS} buckets per window)", where)
                    ok = False
                elif window_ms % ms:
                    self.error(rnode, f"resolution {text} must divide the window ({window_ms} ms) into whole buckets", where)
                    ok = False
                else:
                    resolution_ms = ms

        expr = None
        if "where" in keys:
            expr = self.expr_of(keys["where"][1], "where", where)
            ok = ok and expr is not None
        if not ok:
            return None
        return CounterDef(cid, agg, of, tuple(by), window_ms, resolution_ms, expr, key.start_mark.line + 1, key.start_mark.column + 1)

    def load_decision(self, entry) -> DecisionPolicy:
        node = self.section(entry, "decision", MappingNode, "a mapping with actions and score_thresholds")
        if node is None:
            return DecisionPolicy()
        where = "decision"
        keys = self.keyed(node, _DECISION_KEYS, "decision", where)
        actions: list[str] = []
        if "actions" in keys:
            anode = keys["actions"][1]
            if not isinstance(anode, SequenceNode) or not anode.value:
                self.error(anode, f"actions must be a non-empty list, least severe first (got {_describe(anode)})", where)
            else:
                for item in anode.value:
                    name = self.text_of(item, "an action", where, "a name")
                    if name is None:
                        continue
                    if not _IDENT.fullmatch(name):
                        self.error(item, f"action '{name}' is not an identifier", where)
                    elif name in actions:
                        self.error(item, f"action '{name}' is listed twice", where)
                    else:
                        actions.append(name)
        actions_t = tuple(actions) or DEFAULT_ACTIONS
        thresholds: dict[str, int] = {}
        if "score_thresholds" in keys:
            tnode = keys["score_thresholds"][1]
            if not isinstance(tnode, MappingNode):
                self.error(tnode, f"score_thresholds must be a mapping of action to score (got {_describe(tnode)})", where)
            else:
                previous: tuple[str, int, Node] | None = None
                found = []
                for k, v in self.pairs(tnode, where):
                    if k.value not in actions_t:
                        self.error(k, f"unknown action '{k.value}' in score_thresholds (expected one of: {', '.join(actions_t)})", where)
                        continue
                    value = self.int_of(v, f"threshold for '{k.value}'", where, -MAX_SCORE, MAX_SCORE)
                    if value is not None:
                        thresholds[k.value] = value
                        found.append((actions_t.index(k.value), k.value, value, v))
                for rank, name, value, v in sorted(found):
                    if previous is not None and value < previous[1]:
                        self.error(v, f"threshold for '{name}' ({value}) is lower than for the less severe '{previous[0]}' ({previous[1]})", where)
                    previous = (name, value, v)
        return DecisionPolicy(actions_t, thresholds)

    def load_rules(self, entry, actions: tuple[str, ...]) -> tuple[RuleDef, ...]:
        node = self.section(entry, "rules", SequenceNode, "a list of rules (each starting with '- id: ...')")
        if node is None:
            return ()
        rules: list[RuleDef] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(node.value):
            where = f"rule #{i + 1}"
            if not isinstance(item, MappingNode):
                self.error(item, f"a rule must be a mapping with id, when, action (got {_describe(item)})", where)
                continue
            keys = self.keyed(item, _RULE_KEYS, "rule", where)
            rid = None
            if "id" not in keys:
                self.error(item, "rule needs an 'id'", where)
            else:
                inode = keys["id"][1]
                rid = self.text_of(inode, "rule id", where, "a name")
                if rid is not None and not _IDENT.fullmatch(rid):
                    self.error(inode, f"rule id '{rid}' is not an identifier (letters, digits and _, not starting with a digit)", where)
                    rid = None
                if rid is not None:
                    where = f"rule {rid}"
                    if rid in seen:
                        self.error(inode, f"duplicate rule id '{rid}' (first defined at line {seen[rid]})", where)
                        rid = None
                    else:
                        seen[rid] = item.start_mark.line + 1
            when = None
            if "when" not in keys:
                self.error(item, "rule needs 'when' (a CEL condition)", where)
            else:
                when = self.expr_of(keys["when"][1], "when", where)
            action = actions[0]
            if "action" in keys:
                anode = keys["action"][1]
                text = self.text_of(anode, "action", where, f"one of: {', '.join(actions)}")
                if text is not None and text not in actions:
                    self.error(anode, f"unknown action '{text}' (expected one of: {', '.join(actions)})", where)
                    text = None
                action = text
            score = 0
            if "score" in keys:
                score = self.int_of(keys["score"][1], "score", where, -MAX_SCORE, MAX_SCORE)
            reason = rid
            if "reason" in keys:
                reason = self.text_of(keys["reason"][1], "reason", where, "text")
            if rid is not None and when is not None:
                # A bad action, score or reason is already an error; the rule
                # is kept with a stand-in so its condition still gets checked.
                rules.append(
                    RuleDef(
                        rid,
                        when,
                        action if action is not None else actions[0],
                        score if score is not None else 0,
                        reason if reason is not None else rid,
                        item.start_mark.line + 1,
                        item.start_mark.column + 1,
                    )
                )
        return tuple(rules)

    def load_experiments(self, entry, fields) -> tuple[ExperimentDef, ...]:
        node = self.section(entry, "experiments", SequenceNode, "a list of experiments")
        if node is None:
            return ()
        out: list[ExperimentDef] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(node.value):
            where = f"experiment #{i + 1}"
            if not isinstance(item, MappingNode):
                self.error(item, f"an experiment must be a mapping with id, unit, variants (got {_describe(item)})", where)
                continue
            keys = self.keyed(item, _EXPERIMENT_KEYS, "experiment", where)
            ok = True
            eid = None
            if "id" not in keys:
                self.error(item, "experiment needs an 'id'", where)
                ok = False
            else:
                inode = keys["id"][1]
                eid = self.text_of(inode, "experiment id", where, "a name")
                if eid is not None and not _IDENT.fullmatch(eid):
                    self.error(inode, f"experiment id '{eid}' is not an identifier", where)
                    eid = None
                elif eid is not None:
                    where = f"experiment {eid}"
                    if eid in seen:
                        self.error(inode, f"duplicate experiment id '{eid}' (first defined at line {seen[eid]})", where)
                        eid = None
                    else:
                        seen[eid] = item.start_mark.line + 1
                ok = eid is not None
            variants: list[VariantDef] = []
            if "variants" in keys:
                ok = self.load_variants(keys["variants"][1], variants, where) and ok
            unit = None
            if "unit" in keys:
                unit = self.field_ref(keys["unit"][1], fields, "unit", where)
                if unit is not None and fields[unit].kind not in _KEY_KINDS:
                    self.error(keys["unit"][1], f"unit field '{unit}' is {fields[unit]}; it must be string, int, uint, bool or bytes", where)
                    unit = None
                ok = ok and unit is not None
            elif "variants" in keys:
                self.error(item, "experiment needs 'unit' (the field that buckets events into variants, e.g. user_id)", where)
                ok = False
            shadow: list[str] = []
            if "shadow" in keys:
                snode = keys["shadow"][1]
                items = snode.value if isinstance(snode, SequenceNode) else [snode]
                for s in items:
                    p = self.text_of(s, "a shadow rules file", where, "a path")
                    if p is None:
                        ok = False
                    else:
                        shadow.append(p)
            if "variants" not in keys and "shadow" not in keys:
                self.error(item, "experiment needs 'variants' or 'shadow'", where)
                ok = False
            if ok:
                out.append(ExperimentDef(eid, unit, tuple(variants), tuple(shadow), item.start_mark.line + 1, item.start_mark.column + 1))
        return tuple(out)

    def load_variants(self, node: Node, out: list[VariantDef], where: str) -> bool:
        if not isinstance(node, MappingNode) or not node.value:
            self.error(node, f"variants must be a mapping of variant name to {{weight: percent}} (got {_describe(node)})", where)
            return False
        ok = True
        total = 0
        for k, v in self.pairs(node, where, "variant"):
            if not _IDENT.fullmatch(k.value):
                self.error(k, f"variant name '{k.value}' is not an identifier", where)
                ok = False
                continue
            if not isinstance(v, MappingNode):
                self.error(v, f"variant '{k.value}' must be a mapping with weight and optional rules (got {_describe(v)})", where)
                ok = False
                continue
            keys = self.keyed(v, _VARIANT_KEYS, "variant", where)
            weight = None
            if "weight" not in keys:
                self.error(v, f"variant '{k.value}' needs 'weight' (percent of traffic)", where)
            else:
                weight = self.int_of(keys["weight"][1], "weight", where, 0, 100)
            rules = None
            if "rules" in keys:
                rules = self.text_of(keys["rules"][1], "variant rules", where, "a path")
                ok = ok and rules is not None
            if weight is None:
                ok = False
                continue
            total += weight
            out.append(VariantDef(k.value, weight, rules, k.start_mark.line + 1, k.start_mark.column + 1))
        if ok and total != 100:
            self.error(node, f"variant weights must sum to 100 (got {total})", where)
            ok = False
        return ok


def _reader_message(e: yaml.YAMLError) -> str:
    character = getattr(e, "character", None)
    what = f" (character U+{character:04X})" if isinstance(character, int) else ""
    return f"invalid YAML: {getattr(e, 'reason', e)}{what}"


def _unescape_runs(seg: str) -> list[tuple[str, int]]:
    """Split one line of a double-quoted scalar into (value text, source
    offset) runs: plain runs, and one run per escape sequence."""
    simple = {
        "0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v", "f": "\f",
        "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85", "_": "\xa0",
        "L": "\u2028", "P": "\u2029",
    }
    hexlen = {"x": 2, "u": 4, "U": 8}
    runs: list[tuple[str, int]] = []
    start = i = 0
    while i < len(seg):
        if seg[i] != "\\":
            i += 1
            continue
        if i > start:
            runs.append((seg[start:i], start))
        c = seg[i + 1] if i + 1 < len(seg) else ""
        if c in hexlen:
            n = hexlen[c]
            try:
                runs.append((chr(int(seg[i + 2 : i + 2 + n], 16)), i))
            except ValueError:
                pass
            i += 2 + n
        elif c:
            if c in simple:
                runs.append((simple[c], i))
            i += 2
        else:  # escaped line break: joins lines with nothing
            i += 1
        start = i
    if start < len(seg):
        runs.append((seg[start:], start))
    return runs
