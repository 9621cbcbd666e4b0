"""bench/rules20.yaml in PyPI ``zen-engine`` (GoRules ZEN): one decision
table, hit policy ``collect``, a row per rule, in the JSON decision-graph
format the GoRules editor saves (input node -> table -> output node).

The table has one input column with no ``field``, so each cell is a whole
ZEN expression over the event rather than a unary test of one column (each
rule tests several fields), and one output column, the rule id.
``engine.evaluate(key, event)["result"]`` lists the rows that matched, in
row order.

The graph is served by ZEN's static loader. Measured with zen-engine 2.1.3
on a one-row table: ``engine.evaluate`` with the static loader about 7 µs a
call, with a Python loader callback about 30 µs (the callback runs on every
evaluation), and ``create_decision(graph).evaluate`` about 160 µs (a fixed
cost per call, even for an empty graph); so the static loader it is.

ZEN's ``matches`` compiles its regex on every call: about 170 µs for
``(?i)headless|phantomjs|selenium`` (Unicode case folding), most of this
peer's time per event. The variant ``regex=False`` writes that rule the way
the hand-written Python does, ``contains(lower(user_agent), "headless") or
...`` (the same on ASCII agents, which the agreement check confirms on
every event), to show the cost of the rest.

15 rules read as in rule-engine (``common.keyword_rules``); named lists are
inlined as array literals (ZEN tables have no named lists). The other five,
keeping CEL's meaning on the benchmark events:

- ``s.startsWith(p)`` / ``s.contains(p)`` / ``s.matches(re)`` ->
  ``startsWith(s, p)`` / ``contains(s, p)`` / ``matches(s, re)`` (Rust regex,
  unanchored like CEL's RE2 ``matches``, with the same ``(?i)``).
- ``int(amount)`` -> ``floor(amount)``: the same for the non-negative amounts
  the rule reaches (it first requires ``amount >= 9000.0``).
- ``(ts / 3600000)`` (CEL integer division) -> ``floor(ts / 3600000)``: ZEN
  divides decimals (28 digits), and ``ts`` is positive.
"""

from __future__ import annotations

import json

import zen

from .common import keyword_rules, literal, version_of

__all__ = ["ZenPeer"]


NO_REGEX_HEADLESS = " or ".join(f'contains(lower(user_agent), "{w}")' for w in ("headless", "phantomjs", "selenium"))


def translations(rf) -> dict[str, str]:
    """Rule id -> ZEN expression."""
    texts = keyword_rules({n: literal(l.values, "[", "]") for n, l in rf.lists.items()})
    texts.update({
        "scripted_client":
            'startsWith(user_agent, "curl/") or contains(user_agent, "python-requests") or user_agent == ""',
        "headless_browser": 'matches(user_agent, "(?i)headless|phantomjs|selenium")',
        "round_amount_structuring":
            'type == "deposit" and amount >= 9000.0 and amount < 10000.0 and floor(amount) % 100 == 0',
        "night_withdrawal_young_account":
            'type == "withdrawal" and floor(ts / 3600000) % 24 < 5 and account_age_days < 3',
        "malformed_evm_address": 'type == "withdrawal" and network in ["ethereum", "bsc", "arbitrum", "base"] '
                                 'and not startsWith(dest_address, "0x")',
    })
    return texts


def decision_graph(rule_ids: list[str], texts: dict[str, str]) -> dict:
    """The JSON decision graph: input -> collect table (a row per rule) -> output."""
    table = {
        "hitPolicy": "collect",
        "inputs": [{"id": "when", "name": "When", "type": "expression", "field": ""}],
        "outputs": [{"id": "rule", "name": "Rule", "type": "expression", "field": "id"}],
        "rules": [{"_id": rid, "_description": rid, "when": texts[rid], "rule": json.dumps(rid)} for rid in rule_ids],
    }
    at = {"x": 0, "y": 0}
    return {
        "contentType": "application/vnd.gorules.decision",
        "nodes": [
            {"id": "event", "type": "inputNode", "name": "Event", "position": at},
            {"id": "rules", "type": "decisionTableNode", "name": "Rules", "position": at, "content": table},
            {"id": "decision", "type": "outputNode", "name": "Decision", "position": at},
        ],
        "edges": [
            {"id": "e1", "type": "edge", "sourceId": "event", "targetId": "rules"},
            {"id": "e2", "type": "edge", "sourceId": "rules", "targetId": "decision"},
        ],
    }


class ZenPeer:
    dist = "zen-engine"

    def __init__(self, rf, regex: bool = True):
        self.name = "zen-engine" if regex else "zen-engine, headless_browser without regex"
        self.version = version_of(self.dist)
        self.unsupported: dict[str, str] = {}
        texts = translations(rf)
        if not regex:
            texts["headless_browser"] = NO_REGEX_HEADLESS
        graph = decision_graph([r.id for r in rf.rules], texts)
        self.engine = zen.ZenEngine({"loader": {"type": "static", "content": {"rules20": graph}}})

    def matched(self, event: dict) -> list[str]:
        return [row["id"] for row in self.engine.evaluate("rules20", event)["result"]]
