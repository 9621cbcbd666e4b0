"""Engines in several real processes share one counter-state file (SPEC §2):
no update is lost, a killed process leaves the state usable, the state
survives a restart, and a rules file with other counters is refused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fraudcore import Engine, FraudcoreError
from fraudcore.errors import StateError

T0 = 1_764_806_400_000
KEYS = 5

RULES = """
version: shared-1
time: ts
fields:
  type: string
  user_id: string
  amount: double
  device_id: string
counters:
  n:   {agg: count, by: user_id, window: 1h}
  wd:  {agg: count, by: user_id, window: 1h, where: 'type == "withdrawal"'}
  tot: {agg: sum, of: amount, by: user_id, window: 1h}
  dev: {agg: distinct, of: device_id, by: user_id, window: 1h}
rules:
  - {id: busy, when: n > 3, action: review, score: 10}
"""

# argv: rules path, state path, worker id, events, mode (decide|ingest), progress file or "-"
WORKER = r"""
import os, sys
from fraudcore import Engine
rules, state, wid, n, mode, progress = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
T0 = {t0}
engine = Engine.from_file(rules, state=state, capacity=1024)
out = None if progress == "-" else os.open(progress, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
print("ready", flush=True)
for i in range(n):
    event = {{"type": "withdrawal" if i % 2 else "deposit", "user_id": f"u{{i % {keys}}}", "amount": 1.0,
             "device_id": f"w{{wid}}-{{i % 3}}", "ts": T0 + (i * 7919) % 600_000}}
    if out is not None:
        os.write(out, b"s")            # about to count event i
    if mode == "decide":
        engine.decide(event)
    else:
        engine.ingest(event)
    if out is not None:
        os.write(out, b"d")            # event i counted
print("done", flush=True)
"""


def spawn(rules, state, wid, n, mode, progress="-"):
    src = WORKER.format(t0=T0, keys=KEYS)
    return subprocess.Popen(
        [sys.executable, "-c", src, str(rules), str(state), str(wid), str(n), mode, str(progress)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def expected_per_key(n):
    """Events per key, and withdrawals per key, of one worker's n events."""
    per = [0] * KEYS
    wd = [0] * KEYS
    for i in range(n):
        per[i % KEYS] += 1
        wd[i % KEYS] += i % 2
    return per, wd


AT = T0 + 600_000   # every worker event is in (AT - 1 h, AT]


@pytest.fixture
def rules(tmp_path):
    p = tmp_path / "rules.yaml"
    p.write_text(RULES)
    return p


def test_two_processes_lose_no_update(rules, tmp_path):
    state = tmp_path / "fc"
    n = 4000
    procs = [spawn(rules, state, 1, n, "decide"), spawn(rules, state, 2, n, "ingest")]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert out.split() == ["ready", "done"]
    engine = Engine.from_file(rules, state=state, capacity=1024)
    per, wd = expected_per_key(n)
    for k in range(KEYS):
        assert engine.counter("n", user_id=f"u{k}", at=AT) == 2 * per[k]
        assert engine.counter("wd", user_id=f"u{k}", at=AT) == 2 * wd[k]
        assert engine.counter("tot", user_id=f"u{k}", at=AT) == 2.0 * per[k]
        assert engine.counter("dev", user_id=f"u{k}", at=AT) == 6     # 3 devices per worker
    # The third engine decides on the shared totals.
    d = engine.decide({"type": "deposit", "user_id": "u0", "amount": 1.0, "device_id": "x", "ts": AT})
    assert d.rules == ["busy"] and d.features["n"] == 2 * per[0] + 1
    engine.close()


def test_killed_process_leaves_state_usable(rules, tmp_path):
    state = tmp_path / "fc"
    n_survivor, n_victim = 3000, 10_000_000
    progress = tmp_path / "victim.progress"
    victim = spawn(rules, state, 9, n_victim, "decide", progress)
    assert victim.stdout.readline().strip() == "ready"
    survivor = spawn(rules, state, 1, n_survivor, "decide")
    # Let the victim run a while alongside the survivor, then SIGKILL it.
    deadline = time.monotonic() + 20
    while (not progress.exists() or progress.stat().st_size < 2 * 3000) and time.monotonic() < deadline:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)
    out, err = survivor.communicate(timeout=60)
    assert survivor.returncode == 0, err
    victim.stdout.close(), victim.stderr.close()

    marks = progress.read_bytes()
    done = marks.count(b"d")              # completed events
    started = marks.count(b"s")           # done, or done + 1 in flight
    assert started - done in (0, 1) and done >= 3000

    engine = Engine.from_file(rules, state=state, capacity=1024)
    per_s, _ = expected_per_key(n_survivor)
    per_lo, _ = expected_per_key(done)
    per_hi, _ = expected_per_key(started)
    total = 0
    for k in range(KEYS):
        got = engine.counter("n", user_id=f"u{k}", at=AT)
        total += got
        assert per_s[k] + per_lo[k] <= got <= per_s[k] + per_hi[k], (k, got)
    assert n_survivor + done <= total <= n_survivor + started
    # The state keeps working for new writers.
    before = engine.counter("n", user_id="u1", at=AT)
    engine.decide({"type": "deposit", "user_id": "u1", "amount": 1.0, "device_id": "x", "ts": AT})
    assert engine.counter("n", user_id="u1", at=AT) == before + 1
    engine.close()


def test_state_survives_restart(rules, tmp_path):
    state = tmp_path / "fc"
    e1 = Engine.from_file(rules, state=state, capacity=1024)
    for i in range(5):
        e1.decide({"type": "withdrawal", "user_id": "u1", "amount": 2.0, "device_id": f"d{i % 2}", "ts": T0 + i})
    e1.close()
    e2 = Engine.from_file(rules, state=state, capacity=1024)
    assert e2.counter("n", user_id="u1", at=T0 + 4) == 5
    assert e2.counter("wd", user_id="u1", at=T0 + 4) == 5
    assert e2.counter("tot", user_id="u1", at=T0 + 4) == 10.0
    assert e2.counter("dev", user_id="u1", at=T0 + 4) == 2
    assert e2.counter("n", user_id="u1") == 5            # the high-water mark survived too
    d = e2.decide({"type": "deposit", "user_id": "u1", "amount": 1.0, "device_id": "d0", "ts": T0 + 5})
    assert d.rules == ["busy"] and d.features["n"] == 6
    assert e2.stats()["state"] == str(state)
    e2.close()


def test_state_with_other_counters_is_refused(rules, tmp_path):
    state = tmp_path / "fc"
    Engine.from_file(rules, state=state, capacity=1024).close()
    other = tmp_path / "other.yaml"
    other.write_text(RULES.replace("n:   {agg: count, by: user_id, window: 1h}",
                                   "n:   {agg: count, by: user_id, window: 2h}"))
    with pytest.raises(StateError) as info:
        Engine.from_file(other, state=state, capacity=1024)
    assert str(state) in str(info.value)
    assert isinstance(info.value, FraudcoreError)
    # The original rules still open it, with its counts.
    Engine.from_file(rules, state=state, capacity=1024).close()


def test_state_with_other_capacity_is_refused(rules, tmp_path):
    state = tmp_path / "fc"
    Engine.from_file(rules, state=state, capacity=1024).close()
    with pytest.raises(StateError) as info:
        Engine.from_file(rules, state=state, capacity=2048)
    assert str(state) in str(info.value)


def test_not_a_state_file_is_refused(rules, tmp_path):
    junk = tmp_path / "junk"
    junk.write_bytes(b"hello world" * 100)
    with pytest.raises(StateError) as info:
        Engine.from_file(rules, state=junk, capacity=1024)
    assert str(junk) in str(info.value)


# argv: rules path, state path. Decides one event a line of stdin and prints
# the version that decided it.
FOLLOWER = r"""
import sys
from fraudcore import Engine
engine = Engine.from_file(sys.argv[1], state=sys.argv[2], capacity=1024)
print("ready", flush=True)
for line in sys.stdin:
    d = engine.decide({"type": "deposit", "user_id": "f", "amount": 1.0, "device_id": "d", "ts": int(line)})
    print(d.version, engine.stats()["reload_error"], flush=True)
"""


def test_reload_in_one_process_moves_every_process(rules, tmp_path):
    state = tmp_path / "fc"
    leader = Engine.from_file(rules, state=state, capacity=1024)
    follower = subprocess.Popen([sys.executable, "-c", FOLLOWER, str(rules), str(state)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert follower.stdout.readline().strip() == "ready"

        def ask(ts):
            follower.stdin.write(f"{ts}\n")
            follower.stdin.flush()
            return follower.stdout.readline().split(" ", 1)

        assert ask(T0)[0] == "shared-1"
        v2 = tmp_path / "rules-v2.yaml"
        v2.write_text(RULES.replace("version: shared-1", "version: shared-2").replace("n > 3", "n > 30"))
        assert leader.reload(v2) == "shared-2"
        version, error = ask(T0 + 1)
        assert (version, error.strip()) == ("shared-2", "None")
        # Counter state carried over: the follower's two events are both counted.
        assert leader.counter("n", user_id="f", at=T0 + 1) == 2
        # A file that does not compile changes nothing anywhere.
        bad = tmp_path / "rules-bad.yaml"
        bad.write_text(RULES.replace("n > 3", "n >"))
        with pytest.raises(Exception):
            leader.reload(bad)
        assert ask(T0 + 2)[0] == "shared-2" and leader.version == "shared-2"
    finally:
        follower.stdin.close()
        follower.wait(timeout=30)
        follower.stdout.close()
