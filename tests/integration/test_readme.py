"""The README's rules file and API example say what fraudcore really does."""

import re
from pathlib import Path

import fraudcore

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_rules_file_and_decision(tmp_path):
    rules = re.search(r"```yaml\n(.*?)```", README, re.S).group(1)
    path = tmp_path / "rules.yaml"
    path.write_text(rules)
    engine = fraudcore.Engine.from_file(path)
    d = engine.decide({"type": "withdrawal", "user_id": "u1", "amount": 12000.0,
                       "account_age_days": 3, "country": "DE", "ts": 1764806400000})
    assert (d.action, d.score) == ("review", 40)
    assert d.rules == ["new_account_large_withdrawal"]
    assert d.reasons == ["Large withdrawal from an account younger than a week"]
    assert '# "review", 40' in README


def test_readme_cel_examples():
    prog = fraudcore.cel.compile('amount > 1000.0 && country in ["KP", "IR"]', {"amount": "double", "country": "string"})
    assert prog.evaluate({"amount": 1500.0, "country": "KP"}) is True
    assert fraudcore.cel.evaluate("size([1, 2, 3]) * 2") == 6
