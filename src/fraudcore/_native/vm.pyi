"""Typing stub of the native CEL VM (vm.pyx)."""

from typing import Any, Callable, Mapping, Sequence

OPCODE_TABLE: tuple[tuple[str, int], ...]

class NativeProgram:
    def __init__(self, bytecode: Any) -> None: ...
    def evaluate(self, activation: Mapping[str, object]) -> tuple[bool, object]: ...

class NativeRuleSet:
    def __init__(
        self,
        bytecodes: Sequence[Any],
        slot_names: Sequence[str],
        slot_kinds: Sequence[int],
        ranks: Sequence[int],
        scores: Sequence[int],
        thresholds: Sequence[int],
    ) -> None: ...
    def configure(self, actions: Sequence[str], meta: Any, fallback: Callable[..., Decision], n_decision: int) -> None: ...
    def decide(self, event: Mapping[str, Any]) -> Decision: ...
    def run(self, event: dict[str, Any]) -> tuple[int, int, int, int]: ...
    def rule_hits(self) -> list[int]: ...
    def time_rules(self, event: dict[str, Any], iterations: int) -> float: ...

class Decision:
    action: str
    score: int
    version: str
    matched: int
    def __init__(
        self,
        action: str,
        score: int,
        matched: int,
        meta: Any,
        errors: list[tuple[str, str]] | None = ...,
        features: dict[str, Any] | None = ...,
    ) -> None: ...
    @property
    def rules(self) -> list[str]: ...
    @property
    def reasons(self) -> list[str]: ...
    @property
    def errors(self) -> list[tuple[str, str]]: ...
    @property
    def features(self) -> dict[str, Any]: ...
    def to_dict(self) -> dict[str, Any]: ...
