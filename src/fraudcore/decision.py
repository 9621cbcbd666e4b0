"""The result of deciding one event."""

from __future__ import annotations

from typing import Any, Sequence

__all__ = ["Decision"]


class Decision:
    """allow, review or block, with the score and the reasons.

    ``rules`` and ``reasons`` are computed from the matched-rule bitmask when
    first read, so deciding an event creates this one object and nothing more
    on the common path.
    """

    __slots__ = ("action", "score", "version", "errors", "features", "_matched", "_meta")

    def __init__(
        self,
        action: str,
        score: int,
        matched: int,
        meta: "RuleMeta",
        errors: list[tuple[str, str]] | None = None,
        features: dict[str, Any] | None = None,
    ):
        self.action = action
        self.score = score
        self.version = meta.version
        self.errors: list[tuple[str, str]] = errors if errors is not None else []
        self.features: dict[str, Any] = features if features is not None else {}
        self._matched = matched
        self._meta = meta

    @property
    def rules(self) -> list[str]:
        """Ids of the matched rules, in file order."""
        return self._meta.select(self._meta.ids, self._matched)

    @property
    def reasons(self) -> list[str]:
        """The matched rules' reasons, in file order."""
        return self._meta.select(self._meta.reasons, self._matched)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "score": self.score,
            "rules": self.rules,
            "reasons": self.reasons,
            "features": self.features,
            "errors": [list(e) for e in self.errors],
            "version": self.version,
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Decision) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Decision(action={self.action!r}, score={self.score}, rules={self.rules!r}, errors={self.errors!r})"


class RuleMeta:
    """What a Decision needs to know about the rule set it came from."""

    __slots__ = ("version", "ids", "reasons")

    def __init__(self, version: str, ids: Sequence[str], reasons: Sequence[str]):
        self.version = version
        self.ids = tuple(ids)
        self.reasons = tuple(reasons)

    @staticmethod
    def select(items: Sequence[str], mask: int) -> list[str]:
        out = []
        i = 0
        while mask:
            if mask & 1:
                out.append(items[i])
            mask >>= 1
            i += 1
        return out
