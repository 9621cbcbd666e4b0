"""The result of deciding one event.

``Decision`` is the native class (``fraudcore._native.vm.Decision``) when the
extension is built and enabled, else its pure-Python twin ``DecisionPy``;
both have the same attributes and behaviour, and the logic they share lives
in :class:`RuleMeta`.
"""

from __future__ import annotations

from typing import Any, Sequence

from . import _native

__all__ = ["Decision", "DecisionPy", "RuleMeta"]


class RuleMeta:
    """What a Decision knows about the rule set it came from."""

    __slots__ = ("version", "ids", "reasons")

    def __init__(self, version: str, ids: Sequence[str], reasons: Sequence[str]):
        self.version = version
        self.ids = tuple(ids)
        self.reasons = tuple(reasons)

    @staticmethod
    def select(items: Sequence[str], mask: int) -> list[str]:
        """The items whose bit is set in ``mask``, in order."""
        out = []
        i = 0
        while mask:
            if mask & 1:
                out.append(items[i])
            mask >>= 1
            i += 1
        return out

    @staticmethod
    def as_dict(d: Any) -> dict[str, Any]:
        return {
            "action": d.action,
            "score": d.score,
            "rules": d.rules,
            "reasons": d.reasons,
            "features": d.features,
            "errors": [list(e) for e in d.errors],
            "version": d.version,
        }

    @classmethod
    def equal(cls, d: Any, other: object) -> bool:
        return isinstance(other, (DecisionPy, Decision)) and cls.as_dict(d) == cls.as_dict(other)

    @staticmethod
    def describe(d: Any) -> str:
        return f"Decision(action={d.action!r}, score={d.score}, rules={d.rules!r}, errors={d.errors!r})"


class DecisionPy:
    """allow, review or block, with the score and the reasons (SPEC §2).

    ``rules`` and ``reasons`` are computed from the matched-rule bitmask when
    first read.
    """

    __slots__ = ("action", "score", "version", "matched", "_meta", "_errors", "_features")

    def __init__(
        self,
        action: str,
        score: int,
        matched: int,
        meta: RuleMeta,
        errors: list[tuple[str, str]] | None = None,
        features: dict[str, Any] | None = None,
    ):
        self.action = action
        self.score = score
        self.matched = matched
        self.version = meta.version
        self._meta = meta
        self._errors = errors
        self._features = features

    @property
    def rules(self) -> list[str]:
        """Ids of the matched rules, in file order."""
        return self._meta.select(self._meta.ids, self.matched)

    @property
    def reasons(self) -> list[str]:
        """The matched rules' reasons, in file order."""
        return self._meta.select(self._meta.reasons, self.matched)

    @property
    def errors(self) -> list[tuple[str, str]]:
        """[(rule_id, message)] for the rules that failed to evaluate."""
        if self._errors is None:
            self._errors = []
        return self._errors

    @property
    def features(self) -> dict[str, Any]:
        """The counter values the matched rules read."""
        if self._features is None:
            self._features = {}
        return self._features

    def to_dict(self) -> dict[str, Any]:
        return self._meta.as_dict(self)

    def __eq__(self, other: object) -> bool:
        return self._meta.equal(self, other)

    def __hash__(self) -> int:
        return hash((self.action, self.score, self.matched))

    def __repr__(self) -> str:
        return self._meta.describe(self)


Decision = _native.vm.Decision if _native.vm is not None else DecisionPy
