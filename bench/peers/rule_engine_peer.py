"""bench/rules20.yaml in PyPI ``rule-engine`` (zeroSteiner): one
``rule_engine.Rule`` per rule, in its own expression syntax.

15 rules read as in ZEN (``common.keyword_rules``); named lists are inlined
as set literals ``{"KP", ...}``, so ``in`` is a set lookup as in fraudcore.
The other five, keeping CEL's meaning on the benchmark events:

- ``s.startsWith(p)`` -> ``s.starts_with(p)``; ``s.contains(p)`` -> ``p in s``;
  ``s.matches(re)`` -> ``s =~~ re`` (``=~~`` is ``re.search``: unanchored,
  like CEL's ``matches``; ``(?i)`` and this alternation mean the same in
  Python's re and RE2).
- ``int(amount)`` -> ``amount.floor``: the same for the non-negative amounts
  the rule reaches (it first requires ``amount >= 9000.0``).
- ``(ts / 3600000)`` (CEL integer division, truncating) -> ``ts // 3600000``
  (floor division): the same for positive epoch times.

The Context's ``default_value`` is null, so an absent field reads as null
(``has()``, see ``keyword_rules``). rule-engine computes in
``decimal.Decimal``; every comparison here is of values exactly
representable either way, which the suite's agreement check confirms on
every event.
"""

from __future__ import annotations

import rule_engine

from .common import keyword_rules, literal, version_of

__all__ = ["RuleEnginePeer"]


def translations(rf) -> dict[str, str]:
    """Rule id -> rule-engine text."""
    texts = keyword_rules({n: literal(l.values, "{", "}") for n, l in rf.lists.items()})
    texts.update({
        "scripted_client": 'user_agent.starts_with("curl/") or "python-requests" in user_agent or user_agent == ""',
        "headless_browser": 'user_agent =~~ "(?i)headless|phantomjs|selenium"',
        "round_amount_structuring":
            'type == "deposit" and amount >= 9000.0 and amount < 10000.0 and amount.floor % 100 == 0',
        "night_withdrawal_young_account": 'type == "withdrawal" and ts // 3600000 % 24 < 5 and account_age_days < 3',
        "malformed_evm_address": 'type == "withdrawal" and network in ["ethereum", "bsc", "arbitrum", "base"] '
                                 'and not dest_address.starts_with("0x")',
    })
    return texts


class RuleEnginePeer:
    name = "rule-engine"
    dist = "rule-engine"

    def __init__(self, rf):
        self.version = version_of(self.dist)
        self.unsupported: dict[str, str] = {}
        texts = translations(rf)
        context = rule_engine.Context(default_value=None)
        self.rules = [(r.id, rule_engine.Rule(texts[r.id], context=context).matches) for r in rf.rules]

    def matched(self, event: dict) -> list[str]:
        return [rid for rid, matches in self.rules if matches(event)]
