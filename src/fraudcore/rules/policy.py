"""Stage 3 for a whole rules file: every ``when:`` compiled against one slot
layout, and the decision semantics of SPEC §1.

All rules are evaluated; a rule matches when its condition is true; the
action is the most severe among the matched rules' actions and the score
thresholds; the score is the sum of the matched rules' scores. A rule whose
condition fails to evaluate does not match and is reported under ``errors``;
it never stops the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from .. import _native
from ..cel.compile import Bytecode, Layout
from ..cel.convert import to_cel
from ..cel.program import build
from ..cel import refvm
from ..cel.types import BOOL, DOUBLE, INT, CelType, list_of, map_of, DYN, STRING
from ..cel.values import INT64_MAX, INT64_MIN, UINT64_MAX, Err, Missing, UInt, type_name
from ..decision import Decision, RuleMeta
from ..errors import Diagnostic, RuleError
from .load import RulesFile, SourceExpr, load_rules

__all__ = ["CompiledRule", "Policy", "compile_policy", "load_policy", "COUNTER_TYPES"]

# The store's aggregation codes (counters.pxd AGG_*).
AGG_CODES = {"count": 0, "sum": 1, "min": 2, "max": 3, "avg": 4, "distinct": 5}

# The CEL type a counter's value has in expressions (SPEC §1).
COUNTER_TYPES = {"count": INT, "distinct": INT, "sum": DOUBLE, "min": DOUBLE, "max": DOUBLE, "avg": DOUBLE}

# How the native rule set loads each kind of declared field (vm.pxd K_*).
_K_SET, _K_INT, _K_UINT, _K_DOUBLE, _K_BOOL, _K_STRING, _K_EVENT, _K_OTHER = range(8)
_KIND_OF_TYPE = {"int": _K_INT, "uint": _K_UINT, "double": _K_DOUBLE, "bool": _K_BOOL, "string": _K_STRING}


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    action: str
    rank: int
    score: int
    reason: str
    bytecode: Bytecode

    @property
    def native(self) -> bool:
        return self.bytecode.native and _native.vm is not None

    @property
    def native_blockers(self) -> list[str]:
        return self.bytecode.native_blockers or ([] if _native.vm is not None else ["native extension unavailable"])


def load_policy(source: str | os.PathLike[str], *, text: str | None = None) -> "Policy":
    """Load and compile a rules file; a RuleError lists every problem, those
    of the YAML and those of the CEL expressions together."""
    try:
        rf = load_rules(source, text=text)
    except RuleError as e:
        if not isinstance(e.partial, RulesFile):
            raise
        problems = list(e.diagnostics)
        try:
            compile_policy(e.partial)
        except RuleError as more:
            problems += [d for d in more.diagnostics if d not in problems]
        raise RuleError(sorted(problems, key=lambda d: (d.line, d.column))) from None
    return compile_policy(rf)


def compile_policy(rf: RulesFile) -> "Policy":
    """Compile every rule of ``rf``; raise RuleError with all problems."""
    layout = Layout(types={}, constants={})
    for name, t in rf.fields.items():
        layout.types[name] = t
    if rf.time_field and rf.time_field not in layout.types:
        layout.types[rf.time_field] = INT
    for cid, c in rf.counters.items():
        layout.types[cid] = COUNTER_TYPES[c.agg]
    for name, lst in rf.lists.items():
        layout.types[name] = list_of(lst.elem_type)
        layout.constants[name] = lst.values
    layout.types["event"] = map_of(STRING, DYN)
    layout.event_fields = frozenset(rf.fields) | ({rf.time_field} if rf.time_field else set())
    # Fields first, in declaration order, so slot numbers are stable.
    for name in layout.types:
        if name not in layout.constants:
            layout.slot(name)

    problems: list[Diagnostic] = []
    rules: list[CompiledRule] = []
    actions = list(rf.decision.actions)
    for rule in rf.rules:
        bc = _condition(rule.when, f"rule {rule.id}", layout, problems)
        if bc is not None:
            rules.append(CompiledRule(rule.id, rule.action, actions.index(rule.action), rule.score, rule.reason, bc))
    filters: dict[str, Bytecode] = {}
    for cid, c in rf.counters.items():
        if c.where is None:
            continue
        bc = _condition(c.where, f"counter {cid}", layout, problems)
        if bc is not None and bc.reads & rf.counters.keys():
            read = ", ".join(sorted(bc.reads & rf.counters.keys()))
            problems.append(c.where.relocate(Diagnostic(f"a counter's where cannot read counters ({read})", offset=0), f"counter {cid}"))
        elif bc is not None:
            filters[cid] = bc
    if problems:
        raise RuleError(sorted(problems, key=lambda d: (d.line, d.column)))
    return Policy(rf, layout, rules, filters)


def _condition(expr: SourceExpr, where: str, layout: Layout, problems: list[Diagnostic]) -> Bytecode | None:
    """Compile a ``when:`` or ``where:`` (a bool), or add its problems."""
    try:
        bc = build(expr.text, layout)
    except RuleError as e:
        problems.extend(expr.relocate(d, where) for d in e.diagnostics)
        return None
    if bc.result_type not in (BOOL, DYN):
        problems.append(expr.relocate(Diagnostic(f"condition must be a bool, but it is {bc.result_type}", offset=0), where))
        return None
    return bc


class Policy:
    """A compiled rules file: decides events on the native VM, falling back
    to the reference interpreter rule by rule where it must."""

    def __init__(self, rf: RulesFile, layout: Layout, rules: list[CompiledRule], filters: dict[str, Bytecode]):
        self.rules_file = rf
        self.version = rf.version
        self.layout = layout
        self.rules = rules
        self.filters = filters
        self.counters = list(rf.counters)
        # Fields the native loader reads: those of the rules and filters, the
        # counters' keys and values, and the event time when counting.
        # Every variable any rule reads, and per rule the counters it reads
        # (for Decision.features): derived once here, read per decision.
        self.reads: frozenset[str] = frozenset(n for r in rules for n in r.bytecode.reads)
        self.counter_reads: list[tuple[int, ...]] = [
            tuple(i for i, cid in enumerate(rf.counters) if cid in r.bytecode.reads) for r in rules
        ]
        self.loads: frozenset[str] = self.reads | frozenset(n for bc in filters.values() for n in bc.reads)
        if rf.counters:
            self.loads |= {f for c in rf.counters.values() for f in (*c.by, c.of) if f} | {rf.time_field}
        self.actions = tuple(rf.decision.actions)
        self.thresholds = [rf.decision.score_thresholds.get(a, -1) for a in self.actions]
        self.meta = RuleMeta(rf.version, [r.id for r in rules], [r.reason for r in rules])
        self.field_types: dict[str, CelType] = {n: layout.types[n] for n in layout.names if n in rf.fields or n == rf.time_field}
        self._reference_hits = [0] * len(rules)
        self._native = None
        vm = _native.vm
        if vm is not None:
            kinds = [self._slot_kind(n) for n in layout.names]
            # The counters' filters run as extra rules after the decision
            # rules, scoring nothing.
            extra = len(filters)
            self._native = vm.NativeRuleSet(
                [r.bytecode for r in rules] + list(filters.values()),
                layout.names,
                kinds,
                [r.rank for r in rules] + [0] * extra,
                [r.score for r in rules] + [0] * extra,
                self.thresholds,
            )
            self._native.configure(self.actions, self.meta, self._fallback, len(rules))
            # The whole native path is one C call: no Python frame in between.
            self.decide = self._native.decide  # type: ignore[method-assign]

    def _slot_kind(self, name: str) -> int:
        """How the native rule set fills a slot; fields no rule reads are
        never loaded (K_SET with nobody setting them: they stay errors)."""
        if name not in self.loads:
            return _K_SET
        if name == "event":
            return _K_EVENT
        if name in self.field_types:
            return _KIND_OF_TYPE.get(self.field_types[name].kind, _K_OTHER)
        return _K_SET

    def rule_hits(self) -> dict[str, int]:
        """How many decisions each rule matched, by rule id."""
        native = self._native.rule_hits() if self._native is not None else [0] * len(self.rules)
        return {r.id: n + m for r, n, m in zip(self.rules, native, self._reference_hits)}

    # -- deciding
    def decide(self, event: Mapping[str, Any]) -> Decision:
        """Decide ``event``. With the native VM this method is replaced, per
        instance, by the rule set's own ``decide``."""
        return self.decide_reference(event)

    def _fallback(self, event: dict[str, Any], matched: int, failed: int, counters: list | None = None) -> Decision:
        """Some rules errored or left the VM's domain: the reference path
        decides those (with the counter values the engine read), and words
        the errors."""
        return self._decide_on_reference(event, failed, matched, counters)

    def filter_reference(self, event: Mapping[str, Any], counter: int) -> bool:
        """Whether counter number ``counter``'s where-filter passes, on the
        reference path (for filters the VM cannot run); an error is a no."""
        bc = self.filters[self.counters[counter]]
        return refvm.run(bc, self.reference_slots(event)) is True

    def counter_plan(self) -> list[tuple[int, int, int, int, int, tuple[int, ...]]]:
        """Per counter, what the native engine needs: (store index, agg code,
        value slot, filter rule index or -1, of slot or -1, key slots)."""
        plan = []
        filter_index = {cid: len(self.rules) + i for i, cid in enumerate(self.filters)}
        for i, (cid, c) in enumerate(self.rules_file.counters.items()):
            index = self.layout.index
            plan.append((
                i,
                AGG_CODES[c.agg],
                index[cid],
                filter_index.get(cid, -1),
                index[c.of] if c.of else -1,
                tuple(index[f] for f in c.by),
            ))
        return plan

    def decide_reference(self, event: Mapping[str, Any], counters: list | None = None) -> Decision:
        """The same decision, computed by the reference interpreter alone
        (with the given counter values, if any)."""
        return self._decide_on_reference(event, (1 << len(self.rules)) - 1, 0, counters)

    def _decide_on_reference(self, event: Mapping[str, Any], which: int, matched: int, counters: list | None = None) -> Decision:
        """Run the rules in bitmask ``which`` on the reference interpreter and
        decide with them plus the already ``matched`` ones."""
        slots = self.reference_slots(event, counters)
        errors = []
        for i, rule in enumerate(self.rules):
            if which >> i & 1:
                ok, message = self._reference_rule(rule, slots)
                if ok:
                    matched |= 1 << i
                    self._reference_hits[i] += 1
                elif message is not None:
                    errors.append((rule.id, message))
        return self._decision(matched, errors, counters)

    def _decision(self, matched: int, errors: list[tuple[str, str]], counters: list | None = None) -> Decision:
        rank, score = 0, 0
        for i, rule in enumerate(self.rules):
            if matched >> i & 1:
                score += rule.score
                rank = max(rank, rule.rank)
        for r in range(len(self.actions) - 1, rank, -1):
            if self.thresholds[r] >= 0 and score >= self.thresholds[r]:
                rank = r
                break
        features = None
        if counters is not None:
            features = {}
            for i, read in enumerate(self.counter_reads):
                if matched >> i & 1:
                    features.update((self.counters[c], counters[c]) for c in read if counters[c] is not None)
        return Decision(self.actions[rank], score, matched, self.meta, errors, features)

    @staticmethod
    def _reference_rule(rule: CompiledRule, slots: list[object]) -> tuple[bool, str | None]:
        """(matched, error message or None) for one rule on the reference path."""
        value = refvm.run(rule.bytecode, slots)
        if isinstance(value, Err):
            return False, value.message
        if type(value) is not bool:
            return False, f"condition evaluated to {type_name(value)}, expected bool"
        return value, None

    def reference_slots(self, event: Mapping[str, Any], counters: list | None = None) -> list[object]:
        """The slot values of the reference path: each declared field checked
        against its type, exactly as the native loader checks it; counters
        from ``counters`` (values in counter order, None for an error)."""
        slots: list[object] = []
        counter_index = {cid: i for i, cid in enumerate(self.counters)}
        for name in self.layout.names:
            if name == "event":
                slots.append(to_cel(dict(event)))
            elif name in self.field_types:
                slots.append(load_field(name, self.field_types[name], event))
            elif counters is None:
                slots.append(Err(f"counter '{name}' has no value: counters are kept by an Engine"))
            else:
                value = counters[counter_index[name]]
                slots.append(Err(_counter_error(self.rules_file, name)) if value is None else value)
        return slots


def _counter_error(rf: RulesFile, name: str) -> str:
    c = rf.counters[name]
    fields = ", ".join(f"'{f}'" for f in (rf.time_field, *c.by))
    return f"counter '{name}' has no value: the event's {fields} must be present and of their declared types"


def load_field(name: str, t: CelType, event: Mapping[str, Any]) -> object:
    """One declared field of ``event`` as a CEL value, or an error naming the
    field, the expected type and what the event held."""
    if name not in event:
        return Missing(f"event has no field '{name}'")
    v = event[name]
    k = t.kind
    ok = True
    if k == "double":
        if type(v) is int:
            try:
                v = float(v)
            except OverflowError:
                return Err(f"field '{name}': expected {t}, got an int beyond a double's range")
        ok = type(v) is float
    elif k == "int":
        ok = type(v) is int and INT64_MIN <= v <= INT64_MAX
    elif k == "uint":
        ok = type(v) is int and 0 <= v <= UINT64_MAX
        v = UInt(v) if ok else v
    elif k == "string":
        ok = type(v) is str
    elif k == "bool":
        ok = type(v) is bool
    else:
        return to_cel(v)
    if not ok:
        return Err(f"field '{name}': expected {t}, got {type(v).__name__}")
    return v
