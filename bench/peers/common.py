"""What the stateless peers share: the rules file they translate, the rules
that read alike in the two and/or/not languages, and fraudcore's decision
semantics applied to the rules a peer matched."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

from fraudcore.rules.load import RulesFile, load_rules

__all__ = ["RULES20", "Verdicts", "keyword_rules", "literal", "rules20", "version_of"]

RULES20 = Path(__file__).resolve().parent.parent / "rules20.yaml"


def rules20() -> RulesFile:
    return load_rules(RULES20)


def version_of(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


class Verdicts:
    """``(action, score, rules)`` from the ids of the matched rules, with
    fraudcore's semantics: the score is the sum of the matched rules' scores,
    the action the most severe of their actions and of the score thresholds
    reached. The peers only say which rules matched (what a rules engine
    answers); this turns that into the decision fraudcore returns, so that
    every path is timed doing the same whole job."""

    def __init__(self, rf: RulesFile):
        self.actions = rf.decision.actions
        severity = {a: i for i, a in enumerate(self.actions)}
        self.rule = {r.id: (severity[r.action], r.score) for r in rf.rules}
        # Most severe first, so the first threshold reached is the one that counts.
        self.thresholds = sorted(((t, severity[a]) for a, t in rf.decision.score_thresholds.items()),
                                 key=lambda x: -x[1])

    def __call__(self, matched: list[str]) -> tuple[str, int, list[str]]:
        rank = 0
        score = 0
        for rid in matched:
            r, s = self.rule[rid]
            score += s
            rank = max(rank, r)
        for threshold, r in self.thresholds:
            if score >= threshold:
                rank = max(rank, r)
                break
        return self.actions[rank], score, matched


def keyword_rules(lists: dict[str, str]) -> dict[str, str]:
    """The 15 rules of rules20.yaml that use only comparisons, ``in``, the
    ternary and arithmetic, with CEL's ``&&`` ``||`` ``!`` written ``and``
    ``or`` ``not``: the same text in rule-engine and in ZEN, which differ
    only in how a list is written (``lists``: list name -> literal) and in
    their string functions (each peer module writes the other 5 rules).
    ``has(event.ip_country)`` becomes ``ip_country != null``: both read an
    absent key as null (a present null would differ; fraudcore's schema
    rejects one and no event has one)."""
    L = lists
    return {
        "sanctioned_country": f"country in {L['high_risk_countries']} or ip_country in {L['high_risk_countries']}",
        "known_bad_address": f'type == "withdrawal" and dest_address in {L["bad_addresses"]}',
        "new_account_large_withdrawal": 'type == "withdrawal" and amount > 10000.0 and account_age_days < 7',
        "kyc_withdrawal_limit": 'type == "withdrawal" and amount > (kyc_level >= 2 ? 50000.0 : 5000.0)',
        "low_kyc_high_value": 'kyc_level < 2 and amount >= 2000.0 and (type == "withdrawal" or type == "transfer")',
        "unverified_money_movement":
            'kyc_level == 0 and type in ["deposit", "withdrawal", "transfer"] and amount > 1000.0',
        "new_device_no_2fa": 'is_new_device and not two_fa and type in ["withdrawal", "api_key_change"]',
        "api_key_change_new_device": 'type == "api_key_change" and is_new_device',
        "new_device_login_abroad": 'type == "login" and is_new_device and ip_country != country',
        "login_failed_attempts": 'type == "login" and failed_logins_1h >= 5',
        "disposable_email": f"email_domain in {L['disposable_email_domains']} and account_age_days < 30",
        "country_mismatch": 'ip_country != null and ip_country != country and type == "withdrawal"',
        "privacy_coin_out": f'type == "withdrawal" and asset in {L["privacy_assets"]} and amount > 500.0',
        "odd_network": 'asset == "USDT" and not (network in ["ethereum", "tron", "bsc", "solana"])',
        "large_trade_young_account":
            f'type == "trade" and amount * 2.0 > 50000.0 and account_age_days < 30 and not (user_id in {L["vip_users"]})',
    }


def literal(values, open_: str, close: str) -> str:
    """A list literal: ``values`` as JSON strings between the brackets."""
    return open_ + ", ".join(json.dumps(v) for v in values) + close
