"""Typing stub of the native decision path (engine.pyx)."""

from typing import Any, Callable, Mapping, Sequence

from .counters import CounterStore
from .vm import Decision, NativeRuleSet

class NativeEngine:
    seq: int
    def __init__(
        self,
        rules: NativeRuleSet,
        store: CounterStore,
        plans: Sequence[tuple[int, int, int, int, int, tuple[int, ...]]],
        n_rules: int,
        time_slot: int,
        counter_names: Sequence[str],
        rule_counters: Sequence[tuple[int, ...]],
        fallback: Callable[..., Decision],
        filter_fallback: Callable[[Mapping[str, Any], int], bool],
        seq: int,
        switch: Callable[[dict[str, Any], int], Decision | None],
    ) -> None: ...
    def decide(self, event: Mapping[str, Any], mode: int = ...) -> Decision | None: ...
    def evaluate(self, event: Mapping[str, Any]) -> Decision: ...
    def ingest(self, event: Mapping[str, Any]) -> None: ...
    def decide_list(self, events: list[Mapping[str, Any]], mode: int = ...) -> list[Decision]: ...
    def counter_values(self) -> list[int | float | None]: ...
