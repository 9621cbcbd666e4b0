"""Several real processes share one counter-state file.

Each worker is a separate interpreter (subprocess) mapping the same path and
updating overlapping keys; the parent checks the totals exactly. Every event
adds 1.0 to an ``avg`` counter, so any read of it must be exactly 1.0 (or NaN
when empty): a reader process reading while the writers run would see
another value if it ever paired a bucket's count with a sum from another
moment (a torn read).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from fraudcore._native.counters import CounterStore

T0 = 1_764_806_400_000
SPECS = [
    ("n", "count", 3_600_000, 60_000),
    ("s", "sum", 3_600_000, 60_000),
    ("a", "avg", 3_600_000, 60_000),
    ("d", "distinct", 3_600_000, 60_000),
]
KEYS = 8
CAP = 1024

WORKER = """
import sys
from fraudcore._native.counters import CounterStore
path, wid, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
specs = {specs!r}
s = CounterStore(specs, path=path, capacity={cap})
T0 = {t0}
for i in range(n):
    k = i % {keys}
    ts = T0 + (i * 7919) % 600_000       # out of order, inside the window
    s.update_key("n", k, ts)
    s.update_key("s", k, ts, 1.0)
    s.update_key("a", k, ts, 1.0)
    s.update_key("d", k, ts, item=wid * 100 + i % 5)
    s.update_key("n", ("progress", wid), ts)  # after the shared updates: progress <= shared
    if i == 1000:
        print("started", flush=True)
print("done", flush=True)
"""

READER = """
import math, sys
from fraudcore._native.counters import CounterStore
path, seconds = sys.argv[1], float(sys.argv[2])
s = CounterStore({specs!r}, path=path, capacity={cap}, create=False)
import time
end = time.monotonic() + seconds
reads = 0
while time.monotonic() < end:
    for k in range({keys}):
        a = s.read_key("a", k, {t0} + 3_000_000)
        if not (math.isnan(a) or a == 1.0):
            print("TORN avg", k, a, flush=True)
            sys.exit(1)
        reads += 1
print("reads", reads, flush=True)
"""


def spawn(code, *args):
    src = code.format(specs=SPECS, cap=CAP, t0=T0, keys=KEYS)
    env = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.Popen(
        [sys.executable, "-c", src, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def totals(store):
    at = T0 + 3_000_000
    return (
        sum(store.read_key("n", k, at) for k in range(KEYS)),
        sum(store.read_key("s", k, at) for k in range(KEYS)),
    )


def test_concurrent_updates_are_exact(tmp_path):
    path = tmp_path / "state"
    CounterStore(SPECS, path=path, capacity=CAP).close()
    per = 60_000
    workers = [spawn(WORKER, path, w, per) for w in range(3)]
    reader = spawn(READER, path, 3.0)
    for p in workers:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, out + err
    store = CounterStore(SPECS, path=path, capacity=CAP)
    assert totals(store) == (3 * per, 3.0 * per)
    at = T0 + 3_000_000
    for k in range(KEYS):
        assert store.read_key("a", k, at) == 1.0
        assert store.read_key("d", k, at) == 15  # 3 workers x 5 items each, all keys
    for w in range(3):
        assert store.read_key("n", ("progress", w), at) == per
    st = store.stats()["counters"]
    assert st["n"]["too_old"] == st["n"]["dropped"] == st["n"]["evictions"] == 0


def test_sigkill_mid_stream_leaves_region_usable(tmp_path):
    path = tmp_path / "state"
    CounterStore(SPECS, path=path, capacity=CAP).close()
    per = 60_000
    victim = spawn(WORKER, path, 9, 10_000_000)  # would run for minutes
    assert victim.stdout.readline().strip() == "started"
    survivors = [spawn(WORKER, path, w, per) for w in range(2)]
    time.sleep(0.5)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=10)  # reaps it and closes its pipes
    assert victim.returncode == -signal.SIGKILL
    for p in survivors:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    store = CounterStore(SPECS, path=path, capacity=CAP)  # still opens and validates
    at = T0 + 3_000_000
    killed = store.read_key("n", ("progress", 9), at)
    assert killed > 1000
    n, s = totals(store)
    # The victim's in-flight iteration may have completed some of its shared
    # updates but not its progress mark: at most one event more per counter.
    assert 2 * per + killed <= n <= 2 * per + killed + 1
    assert 2 * per + killed <= s <= 2 * per + killed + 1
    for w in range(2):
        assert store.read_key("n", ("progress", w), at) == per
    # And the region keeps working for everyone.
    assert store.update_key("n", "after", T0)
    assert store.read_key("n", "after", at) == 1


@pytest.mark.parametrize("n", [1])
def test_concurrent_eviction_stays_consistent(tmp_path, n):
    """Tiny table, many keys, two processes: evictions everywhere, no crash,
    the file still opens and each held key's count is plausible."""
    path = tmp_path / "state"
    specs = [("n", "count", 3_600_000, 60_000)]
    code = """
import sys
from fraudcore._native.counters import CounterStore
s = CounterStore({specs!r}, path=sys.argv[1], capacity=32)
for i in range(50_000):
    s.update_key("n", i % 200, {t0} + i)
print("done")
""".replace("{specs!r}", repr(specs)).replace("{t0}", str(T0))
    CounterStore(specs, path=path, capacity=32).close()
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    store = CounterStore(specs, path=path, capacity=32)
    st = store.stats()["counters"]["n"]
    assert st["keys"] == 32 and st["evictions"] > 0
    held = [store.read_key("n", k, T0 + 60_000) for k in range(200)]
    assert sum(1 for h in held if h) <= 32
    assert all(0 <= h <= 2 * 250 for h in held)
