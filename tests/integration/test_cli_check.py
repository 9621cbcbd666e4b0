"""``fraudcore check``: every error with line:column and a caret, or a summary."""

import subprocess
import sys
from pathlib import Path

import fraudcore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rules.yaml"


def check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fraudcore.cli", "check", str(path)], capture_output=True, text=True)


def test_summary_of_the_example():
    out = check(EXAMPLE)
    assert out.returncode == 0, out.stderr
    assert "OK (version 2026-12-04.1)" in out.stdout
    native = "26 native" if fraudcore._native.vm is not None else "0 native"
    assert f"rules:    26 ({native}" in out.stdout
    assert "withdrawal_velocity" in out.stdout and "withdrawals_1h" in out.stdout


def test_every_error_at_once(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\n"
        "fields: {amount: double, type: string}\n"
        "rules:\n"
        "  - id: a\n"
        "    when: amout > 1.0\n"
        "  - id: b\n"
        '    when: type == "x" && amount == 1\n'
        "    action: deny\n"
        "  - id: c\n"
        "    when: type.matches('(')\n"
    )
    out = check(bad)
    assert out.returncode == 1
    err = out.stderr
    assert f"{bad}:5:11: rule a: undeclared reference to 'amout'" in err
    assert f"{bad}:7:33: rule b: found no matching overload for '==' applied to '(double, int)'" in err
    assert f"{bad}:8:13: rule b: unknown action 'deny'" in err
    assert f"{bad}:10:24: rule c: invalid regular expression" in err
    assert "  |     when: amout > 1.0\n  |           ^" in err
    assert err.rstrip().endswith(f"4 errors in {bad}")


def test_unreadable_file(tmp_path):
    out = check(tmp_path / "missing.yaml")
    assert out.returncode == 1 and "missing.yaml" in out.stderr


def test_demo_reports_a_bad_rules_file_and_a_bad_count(tmp_path):
    out = subprocess.run([sys.executable, "-m", "fraudcore.cli", "demo", "--rules", str(tmp_path / "none.yaml")],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "rules file not found" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "fraudcore.cli", "demo", "--events", "0"], capture_output=True, text=True)
    assert out.returncode == 2 and "must be at least 1" in out.stderr
