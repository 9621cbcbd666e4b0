"""The one exception hierarchy of fraudcore.

Compile-time problems are collected as :class:`Diagnostic` values and raised
together in one :class:`RuleError`, so an analyst sees every mistake in a rules
file at once. Evaluation problems raise :class:`EvaluationError`.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Diagnostic", "EvaluationError", "FraudcoreError", "RuleError", "StateError"]


class FraudcoreError(Exception):
    """Base class of every error fraudcore raises on purpose."""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One compile-time problem, located in its source.

    ``line`` and ``column`` are 1-based; ``source_line`` is the text of that
    line so the message can show a caret under the offending character.
    ``where`` names the rule or counter (``rule withdrawal_velocity``) or is
    empty for file-level problems.
    """

    message: str
    line: int = 0
    column: int = 0
    source_line: str = ""
    where: str = ""
    file: str = ""
    # Offset of the problem inside a CEL expression (-1 when not from one), so
    # the rules loader can move an expression's diagnostic to its place in
    # the YAML file.
    offset: int = -1

    def render(self) -> str:
        loc = self.file or "<input>"
        if self.line:
            loc += f":{self.line}:{self.column}"
        head = f"{loc}: {self.where + ': ' if self.where else ''}{self.message}"
        if not self.source_line:
            return head
        text = self.source_line.rstrip("\n").expandtabs(1)
        caret = " " * max(self.column - 1, 0) + "^"
        return f"{head}\n  | {text}\n  | {caret}"

    def __str__(self) -> str:
        return self.render()


class RuleError(FraudcoreError, ValueError):
    """A rules file or CEL expression failed to compile.

    ``diagnostics`` holds every problem found, in source order.
    """

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic | str):
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic(diagnostics)]
        elif isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        # The part of a rules file that could be loaded despite the errors.
        self.partial: object | None = None
        super().__init__("\n".join(d.render() for d in self.diagnostics))


class EvaluationError(FraudcoreError):
    """A CEL expression failed to evaluate (CEL's error value, raised)."""


class StateError(FraudcoreError):
    """A counter-state file cannot be used: missing, truncated, foreign, or
    written with another layout or other counter definitions. The message
    names the file and what differs."""
