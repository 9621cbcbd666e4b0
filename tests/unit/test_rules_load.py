"""The rules-file loader (SPEC §1): structure, defaults, every error with its
exact position, limits, list files, and SourceExpr's offset mapping.

Bad inputs are a table of (YAML after a common header, message, line,
column); the header takes lines 1-9, so sections added to it start on line 10.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from fraudcore.cel.types import DOUBLE, INT, STRING, list_of, parse_type
from fraudcore.errors import Diagnostic, RuleError
from fraudcore.rules.load import (
    CounterDef,
    DecisionPolicy,
    ListDef,
    RulesFile,
    SourceExpr,
    load_rules,
    parse_duration,
)
from fraudcore.rules.load import _YamlLoader

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

HEADER = """\
version: 1
time: ts
fields:
  type: string
  user_id: string
  amount: double
  device_id: string
  tags: list(string)
  n: int
"""


def load(text: str, name: str = "rules.yaml") -> RulesFile:
    return load_rules(name, text=text)


def problems(text: str, name: str = "rules.yaml") -> list[tuple[str, int, int]]:
    with pytest.raises(RuleError) as info:
        load_rules(name, text=text)
    return [(d.message, d.line, d.column) for d in info.value.diagnostics]


def same_problems(got: list[tuple[str, int, int]], expected: list[tuple[str, int, int]]) -> bool:
    """Equal; YAML syntax messages are libyaml's, so with PyYAML's pure-Python
    loader only their positions are compared."""
    if _YamlLoader is not yaml.SafeLoader:
        return got == expected
    strip = lambda ps: [(m if not m.startswith("invalid YAML:") else "invalid YAML", l, c) for m, l, c in ps]
    return strip(got) == strip(expected)


# --------------------------------------------------------------------------
# The example policy


def test_example_rules_structure():
    rf = load_rules(EXAMPLES / "rules.yaml")
    assert rf.version == "2026-12-04.1"
    assert rf.time_field == "ts" and rf.fields["ts"] == INT
    assert rf.fields["amount"] == DOUBLE and rf.fields["two_fa"] == parse_type("bool")
    assert len(rf.rules) >= 20
    assert len({r.id for r in rf.rules}) == len(rf.rules)
    assert all(r.reason and r.reason != r.id for r in rf.rules)
    assert {c.agg for c in rf.counters.values()} == {"count", "sum", "min", "max", "avg", "distinct"}
    assert any(len(c.by) > 1 for c in rf.counters.values())
    assert rf.counters["withdrawals_1h"] == CounterDef(
        "withdrawals_1h", "count", None, ("user_id",), 3_600_000, 60_000, SourceExpr('type == "withdrawal"')
    )
    assert rf.counters["logins_5m"].resolution_ms == 5_000
    bad = rf.lists["bad_addresses"]
    assert bad.elem_type == STRING and len(bad.values) == 200
    assert all(v.startswith("0x") and len(v) == 42 for v in bad.values)
    assert bad.file == os.path.join(str(EXAMPLES), "lists/bad_addresses.txt")
    assert rf.lists["high_risk_countries"].values[:4] == ("KP", "IR", "SY", "CU")
    assert rf.decision == DecisionPolicy(("allow", "review", "block"), {"review": 50, "block": 100})
    decl = rf.declarations()
    assert decl["withdrawn_24h"] == DOUBLE and decl["devices_24h"] == INT
    assert decl["bad_addresses"] == list_of(STRING)
    # every expression points at its own text in the file
    lines = rf.text.splitlines()
    for expr in [r.when for r in rf.rules] + [c.where for c in rf.counters.values() if c.where]:
        first = expr.text.split("\n")[0].split('"')[0][:8]
        assert lines[expr.line - 1][expr.column - 1 :].startswith(first), (expr.text, expr.line, expr.column)


def test_example_rules_compile_when_policy_compiler_present():
    policy = pytest.importorskip("fraudcore.rules.policy")
    try:
        compiled = policy.compile_policy(load_rules(EXAMPLES / "rules.yaml"))
    except ImportError as e:  # pragma: no cover - another stage not built yet
        pytest.skip(str(e))
    assert len(compiled.rules) >= 20


# --------------------------------------------------------------------------
# Defaults


def test_defaults():
    rf = load("fields: {amount: double}\nrules:\n  - id: big\n    when: amount > 1.0\n")
    assert rf.version == "unversioned"
    assert rf.time_field is None
    assert rf.decision == DecisionPolicy(("allow", "review", "block"), {})
    (rule,) = rf.rules
    assert (rule.action, rule.score, rule.reason) == ("allow", 0, "big")
    assert (rule.line, rule.column) == (3, 5)
    assert rf.lists == {} and rf.counters == {} and rf.experiments == ()


def test_time_field_is_added_as_int_and_default_resolution():
    rf = load("time: at\nfields: {user_id: string}\ncounters:\n  c: {agg: count, by: user_id, window: 90s}\n")
    assert rf.fields == {"user_id": STRING, "at": INT}
    assert rf.counters["c"].window_ms == 90_000 and rf.counters["c"].resolution_ms == 1_500
    rf = load("time: at\nfields: {user_id: string}\ncounters:\n  c: {agg: count, by: user_id, window: 1s}\n")
    assert rf.counters["c"].resolution_ms == 10  # 1000 // 60 = 16 does not divide 1000; 10 does
    rf = load("time: at\nfields: {user_id: string}\ncounters:\n  c: {agg: count, by: user_id, window: 7d}\n")
    assert rf.counters["c"].resolution_ms == 604_800_000 // 60


def test_resolution_must_divide_the_window():
    with pytest.raises(RuleError, match=r"resolution 7s must divide the window \(60000 ms\) into whole buckets"):
        load("time: at\nfields: {user_id: string}\ncounters:\n  c: {agg: count, by: user_id, window: 1m, resolution: 7s}\n")


@pytest.mark.parametrize(
    "text, ms",
    [("1500ms", 1500), ("90s", 90_000), ("10m", 600_000), ("1h", 3_600_000), ("7d", 604_800_000), ("5 m", None), ("1.5h", None), ("h", None)],
)
def test_parse_duration(text, ms):
    assert parse_duration(text) == ms


def test_version_kept_as_source_text():
    assert load("version: 2026-12-04\n").version == "2026-12-04"
    assert load("version: 1.10\n").version == "1.10"


def test_inline_lists_types():
    rf = load(
        "lists:\n  countries: [NO, SE, ON, yes]\n  ids: [3, 1, 3, 0x10]\n  empty: []\n"
        "  bins: {values: [012345, 411111], type: string}\n  nums: {values: [], type: int}\n"
    )
    assert rf.lists["countries"] == ListDef("countries", ("NO", "SE", "ON", "yes"), STRING)
    assert rf.lists["ids"].values == (3, 1, 16) and rf.lists["ids"].elem_type == INT
    assert rf.lists["empty"].elem_type == STRING
    assert rf.lists["bins"].values == ("012345", "411111")
    assert rf.lists["nums"].elem_type == INT and rf.lists["nums"].cel_type == list_of(INT)


def test_merge_keys_and_anchors():
    rf = load(
        HEADER
        + "counters:\n  a: &base {agg: count, by: user_id, window: 1h}\n  b: {<<: *base, window: 2h}\n"
    )
    assert rf.counters["b"].window_ms == 7_200_000 and rf.counters["b"].by == ("user_id",)


def test_equality_ignores_positions():
    one = load(HEADER + "counters:\n  c: {agg: count, by: user_id, window: 1h, where: 'amount > 1.0'}\n")
    two = load(HEADER + "\n\ncounters:\n\n  c:   {agg: count, by: user_id, window: 1h, where: \"amount > 1.0\"}\n")
    assert one.counters["c"] == two.counters["c"]
    assert one.counters["c"].line != two.counters["c"].line


def test_experiments_shape():
    rf = load(
        HEADER
        + "experiments:\n  - id: velocity_v2\n    unit: user_id\n    variants:\n"
        "      control: {weight: 90}\n      strict: {weight: 10, rules: strict_rules.yaml}\n"
        "    shadow: [candidate_rules.yaml]\n  - id: shadow_only\n    shadow: other.yaml\n"
    )
    first, second = rf.experiments
    assert first.id == "velocity_v2" and first.unit == "user_id"
    assert [(v.name, v.weight, v.rules) for v in first.variants] == [("control", 90, None), ("strict", 10, "strict_rules.yaml")]
    assert first.shadow == ("candidate_rules.yaml",)
    assert (second.unit, second.variants, second.shadow) == (None, (), ("other.yaml",))
    assert rf.resolve_path("x.yaml") == "x.yaml"


# --------------------------------------------------------------------------
# Errors, one at a time, with their exact place

RULE = "rules:\n  - id: r\n    when: amount > 1.0\n"

BAD = [
    # counters
    ("counters:\n  c1: {agg: count, by: user_id, window: 1h, windw: 1h}\n",
     "unknown key 'windw' in counter (expected one of: agg, of, by, window, where, resolution)", 11, 45),
    ("counters:\n  c1: {agg: count, by: user_id, window: 5 minutes}\n",
     "window must be a duration such as 90s, 10m, 1h, 7d (got '5 minutes')", 11, 41),
    ("counters:\n  c1: {agg: count, by: user_id, window: 3600}\n",
     "window must be a duration such as 90s, 10m, 1h, 7d (got '3600'; add a unit, e.g. 3600s)", 11, 41),
    ("counters:\n  c1: {agg: count, by: user_id, window: 120d}\n",
     "window 120d is longer than the maximum 90d", 11, 41),
    ("counters:\n  c1: {agg: count, by: user_id, window: 500ms}\n",
     "window 500ms is shorter than the minimum 1s", 11, 41),
    ("counters:\n  c1: {agg: count, by: amout, window: 1h}\n",
     "unknown field 'amout' in by (did you mean 'amount'?)", 11, 24),
    ("counters:\n  c1: {agg: count, by: [user_id, nope], window: 1h}\n",
     "unknown field 'nope' in by", 11, 34),
    ("counters:\n  c1: {agg: count, by: [user_id, user_id], window: 1h}\n",
     "field 'user_id' appears twice in by", 11, 34),
    ("counters:\n  c1: {agg: count, by: tags, window: 1h}\n",
     "by field 'tags' is list(string); keys must be string, int, uint, bool or bytes", 11, 24),
    ("counters:\n  c1: {agg: sum, by: user_id, window: 1h}\n",
     "agg 'sum' needs 'of' (the field to aggregate)", 11, 13),
    ("counters:\n  c1: {agg: total, by: user_id, window: 1h}\n",
     "unknown agg 'total' (expected one of: count, sum, min, max, avg, distinct)", 11, 13),
    ("counters:\n  c1: {agg: count, of: amount, by: user_id, window: 1h}\n",
     "agg 'count' takes no 'of' (it counts events; use sum to add up a field)", 11, 20),
    ("counters:\n  c1: {agg: avg, of: device_id, by: user_id, window: 1h}\n",
     "agg 'avg' needs a numeric field (int or double) in of, but 'device_id' is string", 11, 22),
    ("counters:\n  c1: {agg: distinct, of: tags, by: user_id, window: 1h}\n",
     "agg 'distinct' needs a scalar field in of, but 'tags' is list(string)", 11, 27),
    ("counters:\n  c1: {agg: count, window: 1h}\n",
     "counter needs 'by' (a field or a list of fields to key it by)", 11, 7),
    ("counters:\n  c1: {agg: count, by: user_id}\n",
     "counter needs 'window' (a duration such as 10m, 1h, 7d)", 11, 7),
    ("counters:\n  c1: {agg: count, by: user_id, window: 1h, resolution: 100ms}\n",
     "resolution 100ms is finer than window/10000 (at most 10000 buckets per window)", 11, 57),
    ("counters:\n  c1: {agg: count, by: user_id, window: 1h, resolution: 2h}\n",
     "resolution 2h must be positive and at most the window", 11, 57),
    ("counters:\n  c1: {agg: count, agg: sum, by: user_id, window: 1h}\n",
     "duplicate key 'agg' (first defined at line 11)", 11, 20),
    ("counters:\n  c1: {agg: count, by: user_id, window: 1h}\n  c1: {agg: count, by: n, window: 1h}\n",
     "duplicate counter id 'c1' (first defined at line 11)", 12, 3),
    ("counters:\n  amount: {agg: count, by: user_id, window: 1h}\n",
     "counter id 'amount' is already a field (line 6); fields, lists and counters share one namespace", 11, 3),
    ("counters:\n  c1: count\n",
     "counter 'c1' must be a mapping with agg, by, window (got 'count')", 11, 7),
    ("counters:\n  c1: {agg: count, by: user_id, window: 1h, where: ''}\n",
     "where must be a CEL expression (got an empty value)", 11, 52),
    # rules
    ("rules:\n  - id: x\n    when: amount > 1.0\n  - id: x\n    when: 'true'\n",
     "duplicate rule id 'x' (first defined at line 11)", 13, 9),
    (RULE + "    score: high\n", "score must be an integer (got 'high')", 13, 12),
    (RULE + "    score: '10'\n", "score must be an integer (got '10' (a quoted string))", 13, 12),
    (RULE + "    score: 2000000000\n", "score must be between -1000000000 and 1000000000 (got 2000000000)", 13, 12),
    (RULE + "    action: deny\n", "unknown action 'deny' (expected one of: allow, review, block)", 13, 13),
    (RULE + "    reason:\n", "reason must be text (got an empty value)", 13, 12),
    (RULE + "    whn: x\n", "unknown key 'whn' in rule (expected one of: id, when, action, score, reason)", 13, 5),
    ("rules:\n  - id: withdrawal-velocity\n    when: amount > 1.0\n",
     "rule id 'withdrawal-velocity' is not an identifier (letters, digits and _, not starting with a digit)", 11, 9),
    ("rules:\n  - id: r\n", "rule needs 'when' (a CEL condition)", 11, 5),
    ("rules:\n  - when: amount > 1.0\n", "rule needs an 'id'", 11, 5),
    ("rules:\n  - id: r\n    when: {a: 1}\n", "when must be a CEL expression (got a mapping)", 12, 11),
    ("rules:\n  r: {when: x}\n", "rules must be a list of rules (each starting with '- id: ...') (got a mapping)", 11, 3),
    ("rules:\n  - just a string\n", "a rule must be a mapping with id, when, action (got 'just a string')", 11, 5),
    # lists
    ("lists:\n  x: {file: lists/x.txt}\n", "list file not found: lists/x.txt", 11, 13),
    ("lists:\n  x: [a, 1]\n",
     "list mixes strings and integers: '1' is an int, 'a' (line 11) is a string; quote the numbers to make them all strings", 11, 10),
    ("lists:\n  x: [1.5]\n", "list values must be strings or integers (got '1.5'; quote it to make it a string)", 11, 7),
    ("lists:\n  x: [a, [b]]\n", "list values must be strings or integers (got a list)", 11, 10),
    ("lists:\n  x: {values: [a], type: float}\n", "list type must be string or int (got 'float')", 11, 26),
    ("lists:\n  x: {values: [1, b], type: int}\n", "list of type int holds a non-integer 'b'", 11, 19),
    ("lists:\n  x: {values: [a], file: f.txt}\n", "list needs exactly one of 'file' (a path) or 'values' (a list)", 11, 6),
    ("lists:\n  x: a\n", "list 'x' must be a list of values or {file: path} (got 'a')", 11, 6),
    ("lists:\n  type: [a]\n",
     "list name 'type' is already a field (line 4); fields, lists and counters share one namespace", 11, 3),
    # fields
    ("  amout: strng\n", "unknown CEL type 'strng' (expected one of any, bool, bytes, double, duration, dyn, float, "
     "int, int64, list, map, null, null_type, string, timestamp, type, uint, uint64, list(T), map(K, V))", 10, 10),
    ("  in: string\n", "field name 'in' is a CEL reserved word", 10, 3),
    ("  event: string\n", "field name 'event' is reserved: the whole event is bound as 'event'", 10, 3),
    ("  2fa: bool\n", "field name '2fa' is not an identifier (letters, digits and _, not starting with a digit)", 10, 3),
    ("  amount: int\n", "duplicate field name 'amount' (first defined at line 6)", 10, 3),
    ("  x:\n", "the type of field 'x' must be a CEL type such as string, int, double, bool, list(string) "
     "(got an empty value)", 10, 5),
    # decision
    ("decision:\n  actions: [allow, block]\n  score_thresholds: {review: 50}\n",
     "unknown action 'review' in score_thresholds (expected one of: allow, block)", 12, 22),
    ("decision:\n  score_thresholds: {review: 50, block: 40}\n",
     "threshold for 'block' (40) is lower than for the less severe 'review' (50)", 11, 41),
    ("decision:\n  actions: [allow, allow]\n", "action 'allow' is listed twice", 11, 20),
    ("decision:\n  score_thresholds: {review: lots}\n", "threshold for 'review' must be an integer (got 'lots')", 11, 30),
    # experiments
    ("experiments:\n  - id: e\n    unit: user_id\n    variants: {a: {weight: 60}, b: {weight: 30}}\n",
     "variant weights must sum to 100 (got 90)", 13, 15),
    ("experiments:\n  - id: e\n    unit: usr\n    variants: {a: {weight: 100}}\n",
     "unknown field 'usr' in unit (did you mean 'user_id'?)", 12, 11),
    ("experiments:\n  - id: e\n    variants: {a: {weight: 100}}\n",
     "experiment needs 'unit' (the field that buckets events into variants, e.g. user_id)", 11, 5),
    ("experiments:\n  - id: e\n    unit: user_id\n    variants: {a: {weight: 101}}\n",
     "weight must be between 0 and 100 (got 101)", 13, 28),
    ("experiments:\n  - id: e\n", "experiment needs 'variants' or 'shadow'", 11, 5),
    # file level
    ("rule:\n  - id: x\n", "unknown key 'rule' in the rules file (expected one of: version, time, fields, lists, "
     "counters, rules, decision, experiments)", 10, 1),
    ("rules:\n  - id: x\n    when: a: b\n", "invalid YAML: mapping values are not allowed in this context", 12, 12),
    ("version: [1]\n", "duplicate key 'version' (first defined at line 1)", 10, 1),
]


@pytest.mark.parametrize("tail, message, line, column", BAD, ids=[m[:50] for _, m, _, _ in BAD])
def test_bad_input(tail, message, line, column):
    assert same_problems(problems(HEADER + tail), [(message, line, column)])


@pytest.mark.parametrize(
    "text, message, line, column",
    [
        ("- a\n- b\n", "the rules file must be a mapping with keys version, time, fields, lists, counters, rules, "
         "decision, experiments (got a list)", 1, 1),
        ("", "the rules file is empty (expected a mapping with version, fields, rules...)", 0, 0),
        ("# only a comment\n", "the rules file is empty (expected a mapping with version, fields, rules...)", 0, 0),
        ("version: [1]\n", "version must be a string such as 2026-12-04.1 (got a list)", 1, 10),
        ("fields: {ts: double, u: string}\ntime: ts\n", "time field 'ts' must be declared int (epoch milliseconds), not double", 1, 10),
        ("fields: {u: string}\ncounters:\n  c: {agg: count, by: u, window: 1h}\n",
         "counters need an event-time field: add 'time: <field>' (an int field, epoch milliseconds)", 2, 1),
        ("a: [1\n", "invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 1)", 2, 1),
        ("a: 'x\x07'\n", "invalid YAML: control characters are not allowed (character U+0007)", 1, 6),
        ("\tversion: 1\n", "invalid YAML: found character that cannot start any token (while scanning for the next token at line 1)", 1, 1),
    ],
)
def test_bad_file(text, message, line, column):
    assert same_problems(problems(text), [(message, line, column)])


def test_many_errors_reported_in_source_order():
    text = (
        "version: 3\n"                                              # 1
        "rules:\n"                                                  # 2
        "  - id: a\n"                                               # 3
        "    when: amount > 1.0\n"                                  # 4
        "    action: deny\n"                                        # 5
        "  - id: a\n"                                               # 6
        "    when: amount > 2.0\n"                                  # 7
        "    score: high\n"                                         # 8
        "time: ts\n"                                                # 9
        "fields:\n"                                                 # 10
        "  amount: double\n"                                        # 11
        "  user_id: sting\n"                                        # 12
        "counters:\n"                                               # 13
        "  c: {agg: sum, by: usr, window: 5 minutes}\n"             # 14
        "lists:\n"                                                  # 15
        "  l: {file: missing.txt}\n"                                # 16
        "decision:\n"                                               # 17
        "  score_thresholds: {deny: 1}\n"                           # 18
        "colour: blue\n"                                            # 19
    )
    got = problems(text)
    assert [(line, col) for _, line, col in got] == sorted((line, col) for _, line, col in got)
    assert [m.split(" (")[0] for m, _, _ in got] == [
        "unknown action 'deny'",
        "duplicate rule id 'a'",
        "score must be an integer",
        "unknown CEL type 'strng'".replace("strng", "sting"),
        "agg 'sum' needs 'of'",
        "unknown field 'usr' in by",
        "window must be a duration such as 90s, 10m, 1h, 7d",
        "list file not found: missing.txt",
        "unknown action 'deny' in score_thresholds",
        "unknown key 'colour' in the rules file",
    ]
    assert [line for _, line, _ in got] == [5, 6, 8, 12, 14, 14, 14, 16, 18, 19]
    with pytest.raises(RuleError) as info:
        load_rules("policy.yaml", text=text)
    wheres = [d.where for d in info.value.diagnostics]
    assert wheres == ["rule a", "rule a", "rule a", "field user_id", "counter c", "counter c", "counter c",
                      "list l", "decision", ""]
    assert all(d.file == "policy.yaml" for d in info.value.diagnostics)
    assert str(info.value).count("policy.yaml:") == 10


def test_render_shows_caret_under_column():
    with pytest.raises(RuleError) as info:
        load(HEADER + "counters:\n  c1: {agg: count, by: user_id, window: 5 minutes}\n")
    (d,) = info.value.diagnostics
    assert d.where == "counter c1" and d.file == "rules.yaml"
    head, src, caret = d.render().split("\n")
    assert head == "rules.yaml:11:41: counter c1: window must be a duration such as 90s, 10m, 1h, 7d (got '5 minutes')"
    assert src == "  |   c1: {agg: count, by: user_id, window: 5 minutes}"
    assert caret == "  | " + " " * 40 + "^"
    assert src[caret.index("^") :].startswith("5 minutes")


def test_columns_count_characters_not_bytes():
    (msg, line, col), = problems("fields: {u: string}\nrules:\n  - {id: é_x, when: 'u == \"é\"'}\n")
    assert (msg, line, col) == ("rule id 'é_x' is not an identifier (letters, digits and _, not starting with a digit)", 3, 10)
    (msg, line, col), = problems("fields: {u: string}\nrules:\n  - {id: x, when: 'u == \"ééé\"', action: nope}\n")
    assert (line, col) == (3, 41)


# --------------------------------------------------------------------------
# List files


def test_list_file(tmp_path):
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "a.txt").write_text("# bad ones\n\n  0xabc  \n0xdef\r\n# more\n0xabc\n\n")
    (tmp_path / "ints.txt").write_text("10\n-3\n\n+7\n")
    (tmp_path / "bins.txt").write_text("012345\n411111\n")
    (tmp_path / "mixed.txt").write_text("12\nu1\n")
    (tmp_path / "badint.txt").write_text("1\n# c\n\nx2\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "lists:\n  a: {file: lists/a.txt}\n  i: {file: ints.txt}\n  b: {file: bins.txt, type: string}\n"
        "  m: {file: mixed.txt}\n"
    )
    rf = load_rules(rules)
    assert rf.lists["a"] == ListDef("a", ("0xabc", "0xdef"), STRING, str(tmp_path / "lists/a.txt"))
    assert rf.lists["i"].values == (10, -3, 7) and rf.lists["i"].elem_type == INT
    assert rf.lists["b"].values == ("012345", "411111") and rf.lists["b"].elem_type == STRING
    assert rf.lists["m"].values == ("12", "u1") and rf.lists["m"].elem_type == STRING
    # text= with a display path resolves lists next to it
    assert load_rules(rules, text="lists:\n  i: {file: ints.txt}\n").lists["i"].values == (10, -3, 7)
    with pytest.raises(RuleError) as info:
        load_rules(rules, text="lists:\n  i: {file: badint.txt, type: int}\n  d: {file: lists}\n")
    assert [(d.message, d.line, d.column) for d in info.value.diagnostics] == [
        ("list file badint.txt line 4: 'x2' is not a 64-bit integer", 2, 13),
        ("list file is a directory: lists", 3, 13),
    ]


def test_big_list_file_loads_fast(tmp_path):
    n = 1_000_000
    (tmp_path / "big.txt").write_text("".join(f"0x{i:040x}\n" for i in range(n)))
    (tmp_path / "bigint.txt").write_text("".join(f"{i}\n" for i in range(n)))
    t0 = time.perf_counter()
    rf = load_rules(tmp_path / "r.yaml", text="lists:\n  s: {file: big.txt}\n  i: {file: bigint.txt}\n")
    elapsed = time.perf_counter() - t0
    assert len(rf.lists["s"].values) == n and rf.lists["i"].values[-1] == n - 1
    assert elapsed < 5.0, elapsed


# --------------------------------------------------------------------------
# Limits


def test_billion_laughs_is_rejected_quickly():
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    t0 = time.perf_counter()
    (msg, line, col), = problems("\n".join(lines) + "\n")
    assert time.perf_counter() - t0 < 2.0
    assert msg.startswith("YAML aliases expand the file by ") and msg.endswith("more than the limit of 100000")


def test_recursive_alias_is_rejected():
    assert problems("version: 1\nfields: &f {x: *f}\n") == [("recursive YAML alias (a node that contains itself)", 2, 9)]


@pytest.mark.parametrize(
    "text, line, column",
    [
        ("rules: " + "[" * 100_000 + "]" * 100_000 + "\n", 1, 71),
        ("rules:\n" + "".join("  " * i + "- \n" for i in range(200)), 65, 127),
        ("rules:\n" + "- " * 5000 + "x\n", 2, 127),
    ],
    ids=["flow", "block", "compact"],
)
def test_deep_nesting_is_rejected_not_crashing(text, line, column):
    (message, got_line, got_column), = problems(text)
    assert (message, got_line) == ("YAML is nested deeper than 64 levels", line)
    # libyaml 0.2.5 as bundled by PyYAML >= 6.0.4 stops flow nesting at its
    # own limit while scanning ahead, so the column is that of level 1000.
    assert got_column in (column, 1007)


def test_huge_file_is_rejected_quickly(tmp_path):
    big = "version: 1\nlists:\n  l: [" + ", ".join(["abcdefgh"] * 1_300_000) + "]\n"
    assert len(big) > 10 * 1024 * 1024
    t0 = time.perf_counter()
    assert problems(big) == [("rules file is larger than the limit of 10 MiB", 0, 0)]
    path = tmp_path / "big.yaml"
    path.write_text(big)
    with pytest.raises(RuleError, match="larger than the limit of 10 MiB"):
        load_rules(path)
    assert time.perf_counter() - t0 < 1.0


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(RuleError, match="rules file not found: "):
        load_rules(tmp_path / "nope.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"version: 1\nfields: {caf\xe9: string}\n")
    with pytest.raises(RuleError) as info:
        load_rules(tmp_path / "latin1.yaml")
    (d,) = info.value.diagnostics
    assert (d.message, d.line, d.column) == ("rules file is not UTF-8 text (bad byte 0xe9)", 2, 13)


def test_rule_error_is_value_error():
    with pytest.raises(ValueError):
        load("- 1\n")


# --------------------------------------------------------------------------
# SourceExpr: offsets inside an expression back to the file


def _expr(yaml_tail: str) -> SourceExpr:
    rf = load("fields: {amount: double, type: string, foo: int}\nrules:\n  - id: r\n" + yaml_tail)
    return rf.rules[0].when


def _where_is(expr: SourceExpr, needle: str, nth: int = 0) -> tuple[int, int, str]:
    offset = -1
    for _ in range(nth + 1):
        offset = expr.text.index(needle, offset + 1)
    return expr.locate(offset)


@pytest.mark.parametrize(
    "tail, needle, line, column",
    [
        ("    when: amount > 1.0 && foo > 2\n", "foo", 4, 27),
        ("    when:   amount > 1.0 &&   foo > 2   # comment\n", "foo", 4, 31),
        ("    when: 'type == ''x'' && foo > 2'\n", "foo", 4, 29),
        ("    when: 'type == ''x'' && foo > 2'\n", "x", 4, 22),
        ('    when: "type == \\"x\\" && foo > 2"\n', "foo", 4, 29),
        ('    when: "type == \\u0078 && foo > 2"\n', "foo", 4, 30),
        ('    when: "type == \\u0078 && foo > 2"\n', "x", 4, 20),
        ("    when: |\n      type == \"x\"\n        && foo > 2\n", "foo", 6, 12),
        ("    when: |-\n\n      type == \"x\"\n      && foo > 2\n", "foo", 7, 10),
        ("    when: >\n      type == \"x\"\n      && amount > 1.0\n      && foo > 2\n", "foo", 7, 10),
        ("    when: >-\n      type == \"x\" &&\n\n      foo > 2\n", "foo", 7, 7),
        ("    when: type == \"x\"\n      && amount > 1.0\n      && foo > 2\n", "foo", 6, 10),
        ("    when: 'type == \"x\"\n      && foo > 2'\n", "foo", 5, 10),
        ("    when: \"type == 'x'\n      && foo > 2\"\n", "foo", 5, 10),
    ],
)
def test_locate(tail, needle, line, column):
    expr = _expr(tail)
    got_line, got_col, source_line = _where_is(expr, needle)
    assert (got_line, got_col) == (line, column)
    shown = source_line[got_col - 1 :]
    assert shown.startswith(needle) or shown.startswith("\\u0078") and needle == "x"


def test_locate_start_end_and_clamping():
    expr = _expr("    when: 'amount > 1.0'\n")
    assert (expr.line, expr.column) == (4, 12)
    assert expr.locate(0)[:2] == (4, 12)
    assert expr.locate(len(expr.text))[:2] == (4, 12 + len(expr.text))
    assert expr.locate(10_000)[:2] == expr.locate(len(expr.text))[:2]
    assert expr.locate(-5)[:2] == (4, 12)


def test_relocate():
    expr = _expr("    when: |\n      type == \"x\"\n        && nope > 2\n")
    diag = Diagnostic("undeclared reference to 'nope'", 2, 12, '  && nope > 2', offset=expr.text.index("nope"))
    moved = expr.relocate(diag, "rule r")
    assert moved == Diagnostic("undeclared reference to 'nope'", 6, 12, "        && nope > 2", "rule r", "rules.yaml")
    assert moved.render().splitlines() == [
        "rules.yaml:6:12: rule r: undeclared reference to 'nope'",
        "  |         && nope > 2",
        "  |            ^",
    ]
    # a diagnostic without an offset lands at the start of the expression
    start = expr.relocate(Diagnostic("condition must be a bool"), "rule r")
    assert (start.line, start.column, start.source_line) == (5, 7, '      type == "x"')


def test_hand_built_source_expr():
    e = SourceExpr("a + b", "f.yaml", 3, 10)
    assert e.locate(4) == (3, 14, "")
    assert e.relocate(Diagnostic("boom", offset=4), "rule x") == Diagnostic("boom", 3, 14, "", "rule x", "f.yaml")
    assert e == SourceExpr("a + b") and hash(e) == hash(SourceExpr("a + b"))
