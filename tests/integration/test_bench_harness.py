"""`fraudcore bench` end to end: the quick `micro` and `load` suites run once
each, as a user runs them, and write their records.

This proves the harness works, not that fraudcore is fast: nothing here looks
at a timing beyond "something was measured" (a median above zero). Together
the two runs take about a minute.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("fraudcore", "numpy", "msgspec", "uvloop", "Cython")
BENCHMARK_FIELDS = ("name", "unit", "median", "mean", "stddev", "iqr", "min", "max", "rounds", "iterations", "ops_per_s")


def bench(suite: str, out: Path) -> tuple[dict[str, Any], str]:
    """Run `fraudcore bench <suite> --quick --out <out>`; its JSON record and Markdown summary."""
    env = {k: v for k, v in os.environ.items() if k != "FRAUDCORE_NO_EXTENSIONS"}  # the suites time the native paths
    r = subprocess.run([sys.executable, "-m", "fraudcore.cli", "bench", suite, "--quick", "--out", str(out)],
                       cwd=out, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"fraudcore bench {suite} --quick failed:\n{r.stderr[-4000:]}"
    assert re.search(r"^\[\d+:\d\d\] ", r.stderr, re.M), f"no progress lines on stderr:\n{r.stderr[-2000:]}"
    records = sorted(out.glob(f"{suite}-quick-*.json"))
    assert [p.name for p in records] == [records[0].name] and re.fullmatch(
        rf"{suite}-quick-\d{{8}}T\d{{6}}Z\.json", records[0].name), sorted(p.name for p in out.iterdir())
    doc = json.loads(records[0].read_text())
    assert json.loads((out / f"latest-{suite}-quick.json").read_text()) == doc
    md = (out / f"{suite}-quick.md").read_text()
    assert md.startswith(f"# bench {suite} (quick)") and md in r.stdout
    assert doc["suite"] == suite and doc["config"]["quick"] is True
    check_machine(doc["machine"])
    return doc, md


def check_machine(m: dict[str, Any]) -> None:
    assert m["cpu"]["model"]
    assert m["cores"] >= 1 and 1 <= m["cores_usable"] <= m["cores"]
    assert m["memory_bytes"] > 0
    assert m["python"].startswith(("CPython", "PyPy")) and m["python_executable"]
    for name in PACKAGES:
        assert m["packages"].get(name), f"no version recorded for {name}: {m['packages']}"
    assert m["native_extension"] is True
    assert m["git_dirty"] in (True, False, None)
    if (ROOT / ".git").exists():  # a checkout: the commit is known
        assert re.fullmatch(r"[0-9a-f]{40}", m["git_commit"] or ""), m["git_commit"]
    assert len(m["load_average"]) == 3 and len(m["load_average_after"]) == 3


def test_micro_quick(tmp_path: Path) -> None:
    doc, md = bench("micro", tmp_path)
    benchmarks = doc["benchmarks"]
    assert {b["group"] for b in benchmarks} == {"compile", "vm", "counters", "decide", "decide_many", "floor"}
    assert len({b["name"] for b in benchmarks}) == len(benchmarks)
    for b in benchmarks:
        missing = [f for f in BENCHMARK_FIELDS if f not in b]
        assert not missing, f"{b['name']}: no {missing}"
        assert b["median"] > 0 and b["ops_per_s"] > 0, b
        assert b["min"] <= b["median"] <= b["max"] and b["iqr"] >= 0 and b["stddev"] >= 0, b
        assert b["rounds"] >= doc["config"]["timing"]["min_rounds"] and b["iterations"] >= 1, b
        assert f"| {b['name']} |" in md
    assert doc["engine_store"]["evictions"] >= 0


def test_load_quick(tmp_path: Path) -> None:
    doc, md = bench("load", tmp_path)
    runs = doc["runs"]
    assert runs
    for r in runs:
        where = f"{r['server']} {r['scenario']} {r['kind']}"
        assert r["answered"] > 0, where
        assert (r["errors"], r["unanswered"], r["bad_ids"]) == (0, 0, 0), where
        assert not r["lost_connections"] and not r["timed_out"], where
        assert r["verify"]["bad"] == 0 and r["verify"]["decisions_with_errors"] == 0, where
    for name, server in doc["servers"].items():
        assert server["exit_code"] == 0, f"{name} exited with {server['exit_code']}"
    assert all(o["errors"] == 0 and o["unanswered"] == 0 for o in doc["open_loop"])

