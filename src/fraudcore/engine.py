"""The Engine: a compiled rules file and its velocity counters (SPEC §2)."""

from __future__ import annotations

import os
import threading
from typing import Any, Iterable, Mapping

import numpy as np

from . import _native
from .decision import Decision
from .errors import FraudcoreError
from .rules.policy import Policy, load_policy

__all__ = ["Engine"]

# NativeEngine modes (engine.pyx).
_DECIDE, _EVALUATE, _INGEST = 0, 1, 2


class Engine:
    """Decides events with the rules of one rules file, keeping its counters.

    Counters live in one region of memory: private to this process, or, with
    ``state=PATH``, a file-backed shared mapping that every process opening
    the same path updates lock-free. ``capacity`` is the number of keys each
    counter's table holds (rounded up to a power of two); when a table is
    full its stalest keys are evicted and counted in ``stats()``. With
    ``prefault`` every page of the region is faulted in at start (like a
    JVM's AlwaysPreTouch): memory is committed up front and first touches
    leave the decision path. With ``follow``, an engine opening a shared
    region that already holds published rules decides with those rather than
    publishing its own (a server worker restarted after a reload).
    """

    def __init__(
        self,
        policy: Policy,
        *,
        state: str | os.PathLike[str] | None = None,
        capacity: int | Mapping[str, int] = 65536,
        sketches: int = 16,
        prefault: bool = False,
        follow: bool = False,
    ):
        self._lock = threading.Lock()
        self._capacity = capacity
        self._sketches = sketches
        self._prefault = prefault
        self._state = os.fspath(state) if state is not None else None
        self._store = None
        self.reload_error: str | None = None
        self._bind(policy, publish=not follow)
        if follow and self._store is not None:
            seq, path, text = self._store.read_rules()
            if path is None:
                self._bind(policy, publish=True)  # nothing published yet: ours are the rules
            else:
                self._follow(seq, path, text)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **options: Any) -> "Engine":
        """Load and compile a rules file; raise RuleError listing every problem."""
        return cls(load_policy(path), **options)

    @classmethod
    def from_text(cls, text: str, name: str = "<rules>", **options: Any) -> "Engine":
        return cls(load_policy(name, text=text), **options)

    # -- binding a policy to the counter store
    def _bind(self, policy: Policy, *, publish: bool = False, seq: int = 0) -> None:
        """Compile ``policy`` into the decision path. With ``publish`` its
        rules file becomes the rules of every process sharing the region."""
        # A region holds the counters, and with `state` the rules shared by
        # every process: a counter-less rules file on shared state has one too.
        stateful = bool(policy.rules_file.counters) or self._state is not None
        if stateful and _native.vm is None:
            raise FraudcoreError(
                "counters and shared state are kept by the native extension, which is "
                + ("disabled (FRAUDCORE_NO_EXTENSIONS)" if _native.DISABLED else f"not available ({_native.IMPORT_ERROR})")
            )
        if stateful and self._store is None:
            self._store = self._open_store(policy)
        engine = None
        if stateful and publish:
            seq = self._store.publish_rules(policy.rules_file.path, policy.rules_file.text)
        if stateful:
            engine = _native.engine.NativeEngine(
                policy._native,
                self._store,
                policy.counter_plan(),
                len(policy.rules),
                policy.layout.index[policy.rules_file.time_field],
                policy.counters,
                policy.counter_reads,
                policy._fallback,
                policy.filter_reference,
                seq,
                self._switch,
            )
        # One assignment publishes the new rules: a decision sees the old
        # policy or the new one, never a mix.
        self._policy, self._engine = policy, engine
        if engine is not None:
            self.decide = engine.decide  # type: ignore[method-assign]
            self.evaluate = engine.evaluate  # type: ignore[method-assign]
            self.ingest = engine.ingest  # type: ignore[method-assign]
        else:
            self.decide = policy.decide  # type: ignore[method-assign]
            self.evaluate = policy.decide  # type: ignore[method-assign]
            self.ingest = _ignore  # type: ignore[method-assign]

    def _open_store(self, policy: Policy):
        counters = policy.rules_file.counters
        specs = [(cid, c.agg, c.window_ms, c.resolution_ms) for cid, c in counters.items()]
        cap = self._capacity
        capacity = [cap.get(cid, 65536) for cid in counters] if isinstance(cap, Mapping) else cap
        return _native.counters.CounterStore(
            specs, path=self._state, capacity=capacity, sketches=self._sketches, prefault=self._prefault
        )

    # -- the API of SPEC §2
    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def version(self) -> str:
        return self._policy.version

    def decide(self, event: Mapping[str, Any]) -> Decision:  # replaced per instance by _bind
        """Count ``event`` in the counters, then decide it: every rule is
        evaluated, counters include the event (SPEC §1)."""
        raise NotImplementedError

    def evaluate(self, event: Mapping[str, Any]) -> Decision:  # replaced per instance by _bind
        """Decide as if the event were counted, without writing anything."""
        raise NotImplementedError

    def ingest(self, event: Mapping[str, Any]) -> None:  # replaced per instance by _bind
        """Count ``event`` without deciding."""
        raise NotImplementedError

    def decide_many(self, events: Iterable[Mapping[str, Any]] | Mapping[str, np.ndarray]) -> list[Decision]:
        """Decide a batch, in order: a list of events, or columns (a dict of
        equally long arrays, one per field)."""
        if isinstance(events, Mapping):
            if self._engine is not None and "event" not in self._policy.loads:
                return self._engine.decide_columns(dict(events))
            events = _rows(events)
        if self._engine is not None:
            return self._engine.decide_list(events if isinstance(events, list) else list(events))
        decide = self._policy.decide
        return [decide(e) for e in events]

    def counter(self, name: str, *, at: int | None = None, **key: Any) -> int | float:
        """The value of counter ``name`` for the key given by its ``by``
        fields (``engine.counter("withdrawals_1h", user_id="u1", at=ts)``),
        at event time ``at`` (default: the latest event time counted)."""
        rf = self._policy.rules_file
        if name not in rf.counters:
            raise KeyError(f"no counter named {name!r} (counters: {', '.join(rf.counters) or 'none'})")
        c = rf.counters[name]
        missing = [f for f in c.by if f not in key]
        extra = [f for f in key if f not in c.by]
        if missing or extra:
            raise TypeError(f"counter {name!r} is keyed by {', '.join(c.by)}"
                            + (f"; missing {', '.join(missing)}" if missing else "")
                            + (f"; unexpected {', '.join(extra)}" if extra else ""))
        # Hash the key as the engine does: double fields as floats.
        parts = tuple(float(key[f]) if rf.fields[f].kind == "double" else key[f] for f in c.by)
        if at is None:
            at = self._store.stats()["high_water_ms"]
        return self._store.read_key(name, parts, at)

    def stats(self) -> dict[str, Any]:
        """Keys held, memory, evictions (per counter and in all) and per-rule
        hit counts."""
        policy = self._policy
        out: dict[str, Any] = {
            "version": policy.version,
            "rules": len(policy.rules),
            "native_rules": sum(r.native for r in policy.rules),
            "rule_hits": policy.rule_hits(),
            "counters": {},
            "keys": 0,
            "memory_bytes": 0,
            "evictions": 0,
        }
        if self._store is not None:
            store = self._store.stats()
            out["counters"] = store["counters"]
            out["keys"] = sum(c["keys"] for c in store["counters"].values())
            out["memory_bytes"] = store["bytes"]
            out["huge_page_bytes"] = store["huge_page_bytes"]
            out["evictions"] = sum(c["evictions"] for c in store["counters"].values())
            out["high_water_ms"] = store["high_water_ms"]
            out["state"] = store["path"]
            out["reload_error"] = self.reload_error
        return out

    def reload(self, path: str | os.PathLike[str] | None = None, *, text: str | None = None) -> str:
        """Compile the rules file (default: the current one, re-read) and
        switch to it atomically; returns its version. A decision sees the old
        rules or the new ones, never a mix; every process sharing the state
        region moves to the new rules on its next event. On a compile error
        the old rules stay in force. The counters must be defined as before:
        their state is kept."""
        source = os.fspath(path) if path is not None else self._policy.rules_file.path
        policy = load_policy(source, text=text)
        old = self._policy.rules_file.counters
        new = policy.rules_file.counters
        with self._lock:
            if list(old.items()) != list(new.items()):
                self._restore(policy)
            self._bind(policy, publish=True)
        return policy.version

    def _restore(self, policy: Policy) -> None:
        """New counter definitions: a new region, into which every counter
        whose definition is unchanged brings its state. A shared region is
        the counters of every process that maps it, so it cannot change
        under them: that takes a new state path."""
        if self._state is not None:
            raise FraudcoreError(
                f"reload: the counter definitions changed, and the shared state {self._state} holds the old "
                "ones for every process; start the engines with a new state path to count with the new ones"
            )
        old_store, old = self._store, self._policy.rules_file.counters
        self._store = self._open_store(policy) if policy.rules_file.counters else None
        if self._store is None or old_store is None:
            return
        old_index = {cid: i for i, cid in enumerate(old)}
        for i, (cid, c) in enumerate(policy.rules_file.counters.items()):
            if cid in old_index and old[cid] == c:
                try:
                    self._store.adopt(i, old_store, old_index[cid])
                except ValueError:
                    pass  # its capacity changed: it starts afresh

    def _switch(self, event: dict[str, Any], mode: int) -> Decision | None:
        """The region holds newer rules than this process runs: compile them,
        move to them, and decide ``event`` with them."""
        self.sync()
        return self._engine.decide(event, mode)

    def sync(self) -> None:
        """Move to the rules another process published in the shared region,
        if any. Decisions do this by themselves; a caller reporting the
        version (a server's health check) calls it first."""
        if self._engine is None or self._store.rules_generation() == self._engine.seq:
            return
        with self._lock:
            seq, path, text = self._store.read_rules()
            if self._engine.seq != seq:
                self._follow(seq, path, text)

    def _follow(self, seq: int, path: str, text: str) -> None:
        """Decide with the rules published at ``seq`` in the region."""
        try:
            self._bind(load_policy(path, text=text), seq=seq)
            self.reload_error = None
        except FraudcoreError as e:
            # This process cannot compile them (a list file missing here,
            # say): it keeps its rules and says why in stats().
            self.reload_error = f"rules published at sequence {seq} ({path}) failed here: {e}"
            self._bind(self._policy, seq=seq)

    def flush(self) -> None:
        """Write a file-backed region's pages to its file (msync); a no-op
        for private memory."""
        if self._store is not None:
            self._store.flush()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def _ignore(event: Mapping[str, Any]) -> None:
    return None


def _rows(columns: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """Columns as event dicts (numpy scalars as Python values)."""
    names = list(columns)
    lists = [np.asarray(columns[n]).tolist() for n in names]
    if not lists:
        return []
    n = len(lists[0])
    if any(len(col) != n for col in lists):
        raise ValueError("decide_many: every column must have the same length")
    return [dict(zip(names, row)) for row in zip(*lists)]
