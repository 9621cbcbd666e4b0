"""The Engine: a compiled rules file, ready to decide events (SPEC §2)."""

from __future__ import annotations

import os
import threading
from typing import Any, Iterable, Mapping

from .decision import Decision
from .rules.policy import Policy, load_policy

__all__ = ["Engine"]


class Engine:
    """Decides events with the rules of one rules file.

    ``reload`` swaps the compiled policy in one reference assignment, so a
    decision sees the old rules or the new ones, never a mix.
    """

    def __init__(self, policy: Policy):
        self._policy = policy
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> "Engine":
        """Load and compile a rules file; raise RuleError listing every problem."""
        return cls(load_policy(path))

    @classmethod
    def from_text(cls, text: str, name: str = "<rules>") -> "Engine":
        return cls(load_policy(name, text=text))

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def version(self) -> str:
        return self._policy.version

    def decide(self, event: Mapping[str, Any]) -> Decision:
        """Decide ``event``: every rule is evaluated (SPEC §1)."""
        return self._policy.decide(event)

    def evaluate(self, event: Mapping[str, Any]) -> Decision:
        """Decide without recording anything (a dry run)."""
        return self._policy.decide(event)

    def decide_many(self, events: Iterable[Mapping[str, Any]]) -> list[Decision]:
        decide = self._policy.decide
        return [decide(e) for e in events]

    def stats(self) -> dict[str, Any]:
        """Rules, per-rule hit counts and (once counters are kept) the store's
        keys, memory and evictions."""
        return {
            "version": self._policy.version,
            "rules": len(self._policy.rules),
            "native_rules": sum(r.native for r in self._policy.rules),
            "rule_hits": self._policy.rule_hits(),
            "counters": {},
            "keys": 0,
            "memory_bytes": 0,
            "evictions": 0,
        }

    def reload(self, path: str | os.PathLike[str]) -> str:
        """Compile ``path`` and switch to it atomically; returns its version.
        On a compile error the old rules stay in force."""
        policy = load_policy(path)
        with self._lock:
            self._policy = policy
        return policy.version
