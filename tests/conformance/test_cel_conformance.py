"""CEL conformance: the cel-spec simple test cases, run through fraudcore.cel.

Every in-scope case of ``shared/cel-conformance/*.json`` runs twice, as
``ref`` (``prog.evaluate_reference``: the plain-Python interpreter) and
``native`` (``prog.evaluate``: the native VM, which falls back to the
reference path for what it does not run). Expectations live in
``expected.json`` beside this file: known failures with their reasons and,
per file and mode, the minimum number of passing cases. See README.md here
for how to regenerate it (``FRAUDCORE_CONFORMANCE_RECORD=1``).

Tests in this module:
* ``test_case[<mode>-<file>/<section>/<name>]``: one case. Fails when the case
  fails and is not a recorded known failure (which is reported as xfail).
* ``test_pass_count[<mode>-<file>]``: the file's pass count (and, in native
  mode, the count of cases the native VM ran) against the recorded minimum.
* ``test_expectations_*``: the record is triaged (no "TODO" reasons) and
  names only existing cases.
* ``test_scope_*`` / ``test_convert_*`` / ``test_compare_*``: self-checks of
  this harness that need no engine.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import fraudcore.cel as cel
import fraudcore.errors as errors
from fraudcore.cel import values as _values

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
EXPECTED_PATH = HERE / "expected.json"
CASES_ENV = "FRAUDCORE_CEL_CONFORMANCE"
RECORD_ENV = "FRAUDCORE_CONFORMANCE_RECORD"
MODES = ("ref", "native")
CASE_TIMEOUT_S = 10.0

# Scope rule of shared/cel-conformance/README.md: a case needing a protobuf
# message type is out of scope.
OUT_OF_SCOPE_MARKERS = ("TestAllTypes", "NestedTestAllTypes", "google.protobuf", "object_value")

# In-scope counts documented in shared/cel-conformance/README.md.
DOCUMENTED_SCOPE = {
    "basic": 43,
    "comparisons": 334,
    "logic": 30,
    "integer_math": 64,
    "fp_math": 30,
    "string": 51,
    "lists": 39,
    "macros": 44,
    "conversions": 109,
    "timestamps": 73,
    "fields": 60,
}


def _native_vm_available() -> bool:
    """False under FRAUDCORE_NO_EXTENSIONS=1: then nothing runs natively."""
    from fraudcore import _native

    return _native.vm is not None


# --- locating and loading the cases -----------------------------------------


def locate_cases() -> Path | None:
    """The cel-conformance folder: $FRAUDCORE_CEL_CONFORMANCE, else
    ``shared/cel-conformance`` beside the repository or one level further up
    (CI clones main next to a copy of shared/), else /work/shared."""
    env = os.environ.get(CASES_ENV)
    if env:
        return Path(env)  # explicit: used even if wrong, so the skip message names it
    for candidate in (
        REPO.parent / "shared" / "cel-conformance",
        REPO.parent.parent / "shared" / "cel-conformance",
        Path("/work/shared/cel-conformance"),
    ):
        if candidate.is_dir() and any(candidate.glob("*.json")):
            return candidate
    return None


CASES_DIR = locate_cases()
if CASES_DIR is None:
    MISSING_REASON = (
        "CEL conformance cases not found: set FRAUDCORE_CEL_CONFORMANCE, or put shared/cel-conformance/ "
        f"beside the repository ({REPO.parent / 'shared'})"
    )
elif not (CASES_DIR.is_dir() and any(CASES_DIR.glob("*.json"))):
    MISSING_REASON = f"CEL conformance cases not found: {CASES_ENV}={CASES_DIR} holds no *.json"
else:
    MISSING_REASON = ""


@dataclass(frozen=True)
class Case:
    file: str  # file stem: "string"
    section: str
    name: str
    data: dict = field(compare=False, hash=False, repr=False)

    @property
    def key(self) -> str:
        return f"{self.file}/{self.section}/{self.name}"

    @property
    def expr(self) -> str:
        return self.data["expr"]


def in_scope(test: dict) -> bool:
    if "container" in test:
        return False
    text = json.dumps(test, ensure_ascii=False)
    return not any(marker in text for marker in OUT_OF_SCOPE_MARKERS)


def load_cases(folder: Path) -> dict[str, list[Case]]:
    """In-scope cases by file stem, in file order."""
    by_file: dict[str, list[Case]] = {}
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        cases = by_file.setdefault(path.stem, [])
        for section in doc.get("section", []):
            for test in section.get("test", []):
                if in_scope(test):
                    cases.append(Case(path.stem, section["name"], test["name"], test))
    return by_file


CASES: dict[str, list[Case]] = load_cases(CASES_DIR) if not MISSING_REASON else {}
ALL_CASES: list[Case] = [c for cases in CASES.values() for c in cases]
CASES_BY_KEY: dict[str, Case] = {c.key: c for c in ALL_CASES}


# --- converting the cases' proto-JSON to declarations and Python values -----


class Unsupported(Exception):
    """The case uses something this harness cannot express through the API;
    the case is skipped with this reason."""


_PRIMITIVES = {
    "BOOL": "bool",
    "INT64": "int",
    "UINT64": "uint",
    "DOUBLE": "double",
    "STRING": "string",
    "BYTES": "bytes",
}
_WELL_KNOWN = {"TIMESTAMP": "timestamp", "DURATION": "duration", "ANY": "dyn"}


def decl_type(t: dict) -> str:
    """A cel.expr.Type in proto-JSON → a CEL type name ("map(string, int)")."""
    if "primitive" in t:
        return _PRIMITIVES[t["primitive"]]
    if "null" in t:
        return "null_type"
    if "dyn" in t:
        return "dyn"
    if "well_known" in t and t["well_known"] in _WELL_KNOWN:
        return _WELL_KNOWN[t["well_known"]]
    if "list_type" in t:
        return f"list({decl_type(t['list_type']['elem_type'])})"
    if "map_type" in t:
        m = t["map_type"]
        return f"map({decl_type(m['key_type'])}, {decl_type(m['value_type'])})"
    if "type" in t:
        return "type"
    raise Unsupported(f"type {json.dumps(t)} has no fraudcore declaration")


def declarations(test: dict) -> dict[str, str]:
    decls: dict[str, str] = {}
    for entry in test.get("type_env", []):
        if "ident" not in entry:
            raise Unsupported(f"declares a function ({entry.get('name')}); fraudcore takes variables only")
        decls[entry["name"]] = decl_type(entry["ident"]["type"])
    return decls


@dataclass(frozen=True)
class TypeName:
    """An expected type value (compared by name with ``fraudcore.cel.Type``)."""

    name: str


def _api(name: str, fallback: Any = None) -> Any:
    return getattr(cel, name, fallback)


def _uint_class() -> type:
    return _api("UInt", _values.UInt)


def to_python(v: dict, *, expected: bool = False) -> object:
    """A cel.expr.Value in proto-JSON → the Python value of SPEC §2.

    With ``expected=True`` a type value becomes a :class:`TypeName`; otherwise
    (a binding) a ``fraudcore.cel.Type``.
    """
    if len(v) != 1:
        raise Unsupported(f"value {json.dumps(v)} is not one kind")
    (kind, x), = v.items()
    if kind == "int64_value":
        return int(x)
    if kind == "uint64_value":
        return _uint_class()(int(x))
    if kind == "double_value":
        return float(x)  # also "Infinity", "-Infinity", "NaN"
    if kind == "string_value":
        return str(x)
    if kind == "bytes_value":
        if isinstance(x, dict):
            return bytes.fromhex(x["__bytes_hex__"])
        return str(x).encode("utf-8")
    if kind == "bool_value":
        return bool(x)
    if kind == "null_value":
        return None
    if kind == "list_value":
        return [to_python(e, expected=expected) for e in x.get("values", [])]
    if kind == "map_value":
        entries = x.get("entries", [])
        out: dict[object, object] = {}
        for e in entries:
            out[to_python(e["key"], expected=expected)] = to_python(e["value"], expected=expected)
        if len(out) != len(entries):
            # true and 1, or 1 and 1u: distinct CEL keys that one dict key holds.
            raise Unsupported("map has keys that are distinct in CEL but equal in a Python dict")
        return out
    if kind == "type_value":
        if expected:
            return TypeName(str(x))
        type_cls = _api("Type", _values.Type)
        return type_cls(str(x))
    raise Unsupported(f"value kind {kind!r} is not in fraudcore's value mapping")


def activation(test: dict) -> dict[str, object]:
    out: dict[str, object] = {}
    for b in test.get("bindings", []):
        ev = b["value"]
        if "value" not in ev:
            raise Unsupported(f"binding {b['key']!r} is an {next(iter(ev), 'empty')} value, not a plain value")
        out[b["key"]] = to_python(ev["value"])
    return out


@dataclass(frozen=True)
class Plan:
    """What one case asks: compile with these arguments, then expect this."""

    decls: dict[str, str]
    check: bool
    macros: bool
    bindings: dict[str, object]
    check_only: bool
    expects_error: bool
    expected: object = None


def plan(test: dict) -> Plan:
    if "unknown" in test:
        raise Unsupported("expects an unknown set (partial evaluation), which fraudcore's API does not model")
    expects_error = "eval_error" in test
    if "value" in test:
        expected = to_python(test["value"], expected=True)
    elif "typed_result" in test:
        tr = test["typed_result"]
        if "result" not in tr:
            raise Unsupported("typed_result without a result value")
        # The deduced type is not observable through the API; the value is.
        expected = to_python(tr["result"], expected=True)
    elif expects_error or test.get("check_only"):
        expected = None
    else:
        raise Unsupported(f"no expected result among the keys {sorted(test)}")
    return Plan(
        decls=declarations(test),
        check=not test.get("disable_check", False),
        macros=not test.get("disable_macros", False),
        bindings=activation(test),
        check_only=bool(test.get("check_only", False)),
        expects_error=expects_error,
        expected=expected,
    )


# --- comparing with CEL's (type-strict) equality -----------------------------


def describe(v: object) -> str:
    if isinstance(v, TypeName):
        return f"type {v.name}"
    if isinstance(v, bool):
        return f"bool {v}"
    if isinstance(v, _uint_class()):
        return f"uint {int(v)}"
    if type(v) is int:
        return f"int {v}"
    return f"{type(v).__name__} {v!r}"


def mismatch(expected: object, actual: object, path: str = "") -> str | None:
    """None when ``actual`` is the CEL value ``expected``; else what differs.

    Type-strict: bool is not int, int is not uint is not double. NaN equals
    NaN here (the case expects NaN). Lists and maps compare element-wise.
    """
    where = f" at {path}" if path else ""
    bad = f"expected {describe(expected)}, got {describe(actual)}{where}"
    UInt = _uint_class()
    if isinstance(expected, TypeName):
        type_cls = _api("Type", _values.Type)
        if not isinstance(actual, type_cls) or str(actual) != expected.name:
            return bad
        return None
    if expected is None:
        return None if actual is None else bad
    if isinstance(expected, bool):
        return None if type(actual) is bool and actual is expected else bad
    if isinstance(expected, UInt):
        return None if isinstance(actual, UInt) and int(actual) == int(expected) else bad
    if type(expected) is int:
        return None if type(actual) is int and actual == expected else bad
    if isinstance(expected, float):
        if type(actual) is not float:
            return bad
        if math.isnan(expected):
            return None if math.isnan(actual) else bad
        return None if actual == expected else bad
    if isinstance(expected, (str, bytes)):
        return None if type(actual) is type(expected) and actual == expected else bad
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return bad
        if len(actual) != len(expected):
            return f"expected a list of {len(expected)}, got {len(actual)}: {actual!r}{where}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            if m := mismatch(e, a, f"{path}[{i}]"):
                return m
        return None
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return bad
        if len(actual) != len(expected):
            return f"expected a map of {len(expected)}, got {len(actual)}: {actual!r}{where}"
        for ek, ev in expected.items():
            hits = [ak for ak in actual if mismatch(ek, ak) is None]
            if not hits:
                return f"expected key {describe(ek)} missing from {actual!r}{where}"
            if m := mismatch(ev, actual[hits[0]], f"{path}[{ek!r}]"):
                return m
        return None
    if isinstance(expected, dt.datetime | dt.timedelta):
        return None if type(actual) is type(expected) and actual == expected else bad
    return f"harness cannot compare {describe(expected)}"


# --- running one case ---------------------------------------------------------


class CaseTimeout(BaseException):
    """A case ran past CASE_TIMEOUT_S (BaseException, so the engine's own
    ``except Exception`` cannot swallow it)."""


class _deadline:
    """SIGALRM-based time limit (main thread on POSIX; a no-op elsewhere).
    Does not interrupt native code that holds the GIL."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.armed = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()

    def _fire(self, signum, frame):
        raise CaseTimeout(f"timed out after {self.seconds:g} s")

    def __enter__(self):
        if self.armed:
            self.previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False


@dataclass(frozen=True)
class Outcome:
    status: str  # "pass" | "fail" | "skip"
    message: str = ""
    native: bool | None = None  # native mode: did prog.native say the VM ran it


def _rule_error() -> tuple[type[BaseException], ...]:
    import fraudcore

    return tuple({getattr(fraudcore, "RuleError", errors.RuleError), errors.RuleError})


def _evaluation_error() -> tuple[type[BaseException], ...]:
    return tuple({_api("EvaluationError", errors.EvaluationError), errors.EvaluationError})


def _short(e: BaseException) -> str:
    text = str(e).strip().replace("\n", " | ")
    return f"{type(e).__name__}: {text[:300]}"


def api_missing() -> str:
    if not callable(_api("compile")):
        return "fraudcore.cel.compile is not available yet"
    return ""


def run_case(case: Case, mode: str) -> Outcome:
    try:
        p = plan(case.data)
    except Unsupported as e:
        return Outcome("skip", str(e))
    with _deadline(CASE_TIMEOUT_S):
        try:
            prog = cel.compile(case.expr, p.decls or None, check=p.check, macros=p.macros)
        except _rule_error() as e:
            if p.expects_error:
                return Outcome("pass", f"rejected at compile time: {_short(e)}")
            return Outcome("fail", f"compile error: {_short(e)}")
        except CaseTimeout as e:
            return Outcome("fail", f"compile {e}")
        except Exception as e:  # noqa: BLE001 - any other exception is an engine bug
            return Outcome("fail", f"compile crashed: {_short(e)}")
        if p.check_only:
            return Outcome("pass", "compiled (check only)")
        native = None
        if mode == "ref":
            evaluate = getattr(prog, "evaluate_reference", None)
            if evaluate is None:
                return Outcome("fail", "the program has no evaluate_reference() (the API contract of this harness)")
        else:
            evaluate = prog.evaluate
            native = bool(getattr(prog, "native", False))
        try:
            result = evaluate(p.bindings)
        except _evaluation_error() as e:
            if p.expects_error:
                return Outcome("pass", f"evaluation error: {_short(e)}", native)
            return Outcome("fail", f"evaluation error: {_short(e)}", native)
        except _rule_error() as e:
            return Outcome("fail", f"evaluate raised a compile error: {_short(e)}", native)
        except CaseTimeout as e:
            return Outcome("fail", f"evaluate {e}", native)
        except Exception as e:  # noqa: BLE001
            return Outcome("fail", f"evaluate crashed: {_short(e)}", native)
    if p.expects_error:
        return Outcome("fail", f"expected an evaluation error, got {describe(result)}", native)
    if m := mismatch(p.expected, result):
        return Outcome("fail", m, native)
    return Outcome("pass", "", native)


_RESULTS: dict[tuple[str, str], Outcome] = {}


def outcome(case: Case, mode: str) -> Outcome:
    """run_case, memoized for the session (the per-file counts and the record
    reuse the per-case results)."""
    key = (mode, case.key)
    if key not in _RESULTS:
        _RESULTS[key] = run_case(case, mode)
    return _RESULTS[key]


# --- the recorded expectations ------------------------------------------------


def load_expected() -> dict:
    if not EXPECTED_PATH.exists():
        return {"known_failures": {}, "skipped": {}, "min_passed": {}, "min_native": {}}
    return json.loads(EXPECTED_PATH.read_text(encoding="utf-8"))


EXPECTED = load_expected()


def known_failure(key: str, mode: str) -> str | None:
    entry = EXPECTED.get("known_failures", {}).get(key)
    if entry and mode in entry.get("modes", MODES):
        return entry["reason"]
    return None


def record() -> dict:
    """A new expected.json from this session's results (all cases, both
    modes), keeping the reasons already written and marking new ones TODO."""
    old_fail = EXPECTED.get("known_failures", {})
    old_skip = EXPECTED.get("skipped", {})
    known: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    min_passed: dict[str, dict[str, int]] = {m: {} for m in MODES}
    min_native: dict[str, int] = {}
    for file, cases in CASES.items():
        for mode in MODES:
            min_passed[mode][file] = sum(outcome(c, mode).status == "pass" for c in cases)
        min_native[file] = sum(bool(outcome(c, "native").native) for c in cases)
        for c in cases:
            results = {m: outcome(c, m) for m in MODES}
            failed = [m for m in MODES if results[m].status == "fail"]
            if failed:
                prior = old_fail.get(c.key, {}).get("reason", "")
                known[c.key] = {
                    "modes": failed,
                    "reason": prior or "TODO: triage",
                    "observed": results[failed[0]].message[:300],
                }
            if results["ref"].status == "skip":
                skipped[c.key] = old_skip.get(c.key) or results["ref"].message
    return {
        "about": EXPECTED.get(
            "about",
            "Recorded CEL conformance expectations; see tests/conformance/README.md. "
            "Regenerate with FRAUDCORE_CONFORMANCE_RECORD=1 pytest tests/conformance.",
        ),
        "target_pass_rate": EXPECTED.get("target_pass_rate", 0.95),
        "min_passed": min_passed,
        "min_native": min_native,
        "known_failures": dict(sorted(known.items())),
        "skipped": dict(sorted(skipped.items())),
    }


def dump_expected(record: dict) -> str:
    """JSON with one line per case entry, so the record diffs line by line."""
    parts = []
    for k, v in record.items():
        if k in ("known_failures", "skipped") and v:
            body = ",\n".join(f"  {json.dumps(ck, ensure_ascii=False)}: {json.dumps(cv, ensure_ascii=False)}" for ck, cv in v.items())
            parts.append(f" {json.dumps(k)}: {{\n{body}\n }}")
        elif k in ("min_passed",):
            body = ",\n".join(f"  {json.dumps(m)}: {json.dumps(counts)}" for m, counts in v.items())
            parts.append(f" {json.dumps(k)}: {{\n{body}\n }}")
        else:
            parts.append(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


# --- the end-of-run table -------------------------------------------------------


def report_lines() -> list[str]:
    if not _RESULTS:
        return []
    head = f"{'file':<14}{'mode':<8}{'cases':>6}{'ran':>6}{'passed':>8}{'failed':>8}{'known':>7}{'fixed':>7}{'skipped':>9}{'native':>8}"
    lines = [f"cases: {CASES_DIR}", head, "-" * len(head)]
    totals = {m: [0] * 8 for m in MODES}
    fixed_keys: list[str] = []
    for file, cases in CASES.items():
        for mode in MODES:
            ran = [(c, _RESULTS[(mode, c.key)]) for c in cases if (mode, c.key) in _RESULTS]
            if not ran:
                continue
            passed = sum(o.status == "pass" for _, o in ran)
            known = sum(o.status == "fail" and known_failure(c.key, mode) is not None for c, o in ran)
            failed = sum(o.status == "fail" for _, o in ran) - known
            fixed = [c.key for c, o in ran if o.status == "pass" and known_failure(c.key, mode) is not None]
            fixed_keys += [f"{mode}: {k}" for k in fixed]
            skipped = sum(o.status == "skip" for _, o in ran)
            native = sum(bool(o.native) for _, o in ran)
            row = [len(cases), len(ran), passed, failed, known, len(fixed), skipped, native]
            totals[mode] = [a + b for a, b in zip(totals[mode], row, strict=True)]
            lines.append(_row(file, mode, row))
    lines.append("-" * len(head))
    for mode in MODES:
        if totals[mode][1]:
            lines.append(_row("total", mode, totals[mode]))
    target = EXPECTED.get("target_pass_rate", 0.95)
    for mode in MODES:
        cases, ran, passed = totals[mode][:3]
        if ran == cases:
            lines.append(f"{mode}: {passed}/{cases} passed = {passed / cases:.1%} (target {target:.0%})")
        elif ran:
            lines.append(f"{mode}: partial run, {passed} of the {ran} cases run passed ({cases} in those files)")
    if fixed_keys:
        lines.append(f"{len(fixed_keys)} known failures now pass; update the record ({RECORD_ENV}=1):")
        lines += [f"  {k}" for k in fixed_keys[:20]] + (["  ..."] if len(fixed_keys) > 20 else [])
    return lines


def _row(name: str, mode: str, row: list[int]) -> str:
    cases, ran, passed, failed, known, fixed, skipped, native = row
    nat = str(native) if mode == "native" else "-"
    return f"{name:<14}{mode:<8}{cases:>6}{ran:>6}{passed:>8}{failed:>8}{known:>7}{fixed:>7}{skipped:>9}{nat:>8}"


@pytest.fixture(scope="module", autouse=True)
def _conformance_session(terminal_report, pytestconfig: pytest.Config) -> Iterator[None]:
    def render() -> list[str]:
        lines = report_lines()
        if lines and pytestconfig.cache is not None:
            out = pytestconfig.cache.mkdir("fraudcore-conformance") / "last_run.txt"
            out.write_text("\n".join(lines) + "\n", encoding="utf-8")
            lines = [*lines, f"(written to {out})"]
        return lines

    terminal_report["CEL conformance (passed / failed / skipped by file)"] = render
    yield
    if os.environ.get(RECORD_ENV) == "1" and ALL_CASES and not api_missing():
        new = record()
        EXPECTED_PATH.write_text(dump_expected(new), encoding="utf-8")
        print(f"\nrecorded {len(new['known_failures'])} known failures to {EXPECTED_PATH}")


# --- the tests -----------------------------------------------------------------


def _case_params() -> list:
    if MISSING_REASON:
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=MISSING_REASON), id="no-cases")]
    return [pytest.param(c, m, id=f"{m}-{c.key}") for m in MODES for c in ALL_CASES]


@pytest.mark.parametrize(("case", "mode"), _case_params())
def test_case(case: Case, mode: str) -> None:
    if missing := api_missing():
        pytest.skip(missing)
    o = outcome(case, mode)
    if o.status == "skip":
        pytest.skip(f"unsupported case: {o.message}")
    if o.status == "pass":
        return
    reason = known_failure(case.key, mode)
    if reason is not None:
        pytest.xfail(f"known: {reason}")
    if os.environ.get(RECORD_ENV) == "1":
        pytest.xfail(f"recording new failure: {o.message}")
    pytest.fail(failure_text(case, mode, o), pytrace=False)


def failure_text(case: Case, mode: str, o: Outcome) -> str:
    t = case.data
    expected = "an error" if "eval_error" in t else json.dumps(t.get("value", t.get("typed_result")))
    lines = [
        f"{case.key} [{mode}]: {o.message}",
        f"  expr:     {case.expr}",
        f"  expected: {expected}",
    ]
    if t.get("type_env"):
        lines.append(f"  declared: {json.dumps(declarations(t))}")
    if t.get("bindings"):
        lines.append(f"  bindings: {activation(t)!r}")
    flags = [f for f in ("disable_check", "disable_macros", "check_only") if t.get(f)]
    if flags:
        lines.append(f"  flags:    {', '.join(flags)}")
    if t.get("description"):
        lines.append(f"  about:    {t['description']}")
    lines.append(f"  (a deviation to accept? record it: {RECORD_ENV}=1 pytest tests/conformance, then write its reason)")
    return "\n".join(lines)


def _file_params() -> list:
    if MISSING_REASON:
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=MISSING_REASON), id="no-cases")]
    return [pytest.param(f, m, id=f"{m}-{f}") for m in MODES for f in CASES]


@pytest.mark.parametrize(("file", "mode"), _file_params())
def test_pass_count(file: str, mode: str) -> None:
    if missing := api_missing():
        pytest.skip(missing)
    results = [(c, outcome(c, mode)) for c in CASES[file]]
    passed = sum(o.status == "pass" for _, o in results)
    minimum = EXPECTED.get("min_passed", {}).get(mode, {}).get(file, 0)
    problems = []
    if passed < minimum:
        not_passing = [f"  {c.key}: {o.status}: {o.message}" for c, o in results if o.status != "pass"]
        problems.append(f"{file} [{mode}]: {passed} cases pass, the record requires {minimum}; not passing:")
        problems += not_passing[:40] + (["  ..."] if len(not_passing) > 40 else [])
    if mode == "native" and _native_vm_available():
        native = sum(bool(o.native) for _, o in results)
        min_native = EXPECTED.get("min_native", {}).get(file, 0)
        if native < min_native:
            problems.append(f"{file}: the native VM ran {native} cases, the record requires {min_native}")
    if problems and os.environ.get(RECORD_ENV) != "1":
        pytest.fail("\n".join(problems), pytrace=False)


def test_expectations_triaged() -> None:
    todo = [k for k, v in EXPECTED.get("known_failures", {}).items() if v.get("reason", "").startswith("TODO")]
    todo += [k for k, v in EXPECTED.get("skipped", {}).items() if v.startswith("TODO")]
    assert not todo, f"expected.json has untriaged entries (write each reason): {todo}"


def test_expectations_name_existing_cases() -> None:
    if MISSING_REASON:
        pytest.skip(MISSING_REASON)
    stale = [k for k in [*EXPECTED.get("known_failures", {}), *EXPECTED.get("skipped", {})] if k not in CASES_BY_KEY]
    assert not stale, f"expected.json names cases that are not in scope (regenerate it): {stale}"
    for k, v in EXPECTED.get("known_failures", {}).items():
        assert v.get("reason") and set(v.get("modes", [])) <= set(MODES), f"malformed entry {k}: {v}"


# --- self-checks of the harness (no engine needed) --------------------------------


def test_scope_counts_match_documentation() -> None:
    if MISSING_REASON:
        pytest.skip(MISSING_REASON)
    counts = {f: len(cs) for f, cs in CASES.items()}
    assert counts == DOCUMENTED_SCOPE
    assert len(ALL_CASES) == 877
    assert len(CASES_BY_KEY) == len(ALL_CASES), "case keys file/section/name must be unique"


def test_scope_cases_convert() -> None:
    """Every in-scope case converts to declarations, bindings and an
    expectation: the harness skips nothing today."""
    if MISSING_REASON:
        pytest.skip(MISSING_REASON)
    unsupported = []
    for c in ALL_CASES:
        try:
            plan(c.data)
        except Unsupported as e:
            unsupported.append(f"{c.key}: {e}")
    recorded = set(EXPECTED.get("skipped", {}))
    assert {u.split(":", 1)[0] for u in unsupported} <= recorded, unsupported


@pytest.mark.parametrize(
    ("proto", "name"),
    [
        ({"primitive": "INT64"}, "int"),
        ({"primitive": "UINT64"}, "uint"),
        ({"null": "NULL_VALUE"}, "null_type"),
        ({"dyn": {}}, "dyn"),
        ({"well_known": "DURATION"}, "duration"),
        ({"list_type": {"elem_type": {"primitive": "STRING"}}}, "list(string)"),
        (
            {"map_type": {"key_type": {"primitive": "STRING"}, "value_type": {"list_type": {"elem_type": {"primitive": "INT64"}}}}},
            "map(string, list(int))",
        ),
    ],
)
def test_convert_declarations(proto: dict, name: str) -> None:
    assert decl_type(proto) == name


def test_convert_declarations_reject_messages() -> None:
    with pytest.raises(Unsupported):
        decl_type({"message_type": "google.protobuf.Duration"})


def test_convert_values() -> None:
    UInt = _uint_class()
    assert to_python({"int64_value": "-9223372036854775808"}) == -(2**63)
    u = to_python({"uint64_value": "18446744073709551615"})
    assert isinstance(u, UInt) and u == 2**64 - 1
    assert math.isnan(to_python({"double_value": "NaN"}))
    assert to_python({"double_value": "-Infinity"}) == -math.inf
    assert to_python({"bytes_value": {"__bytes_hex__": "00ff"}}) == b"\x00\xff"
    assert to_python({"bytes_value": "\u00ff"}) == b"\xc3\xbf"
    assert to_python({"null_value": "NULL_VALUE"}) is None and to_python({"null_value": 0}) is None
    assert to_python({"list_value": {}}) == []
    assert to_python({"map_value": {"entries": [{"key": {"int64_value": 1}, "value": {"bool_value": True}}]}}) == {1: True}
    assert to_python({"type_value": "int"}, expected=True) == TypeName("int")
    assert str(to_python({"type_value": "int"})) == "int"
    with pytest.raises(Unsupported):
        to_python({"map_value": {"entries": [{"key": {"bool_value": True}, "value": {"int64_value": 1}},
                                             {"key": {"int64_value": 1}, "value": {"int64_value": 2}}]}})
    with pytest.raises(Unsupported):
        to_python({"object_value": {}})


def test_compare_is_type_strict() -> None:
    UInt = _uint_class()
    Type = _api("Type", _values.Type)
    assert mismatch(1, 1) is None
    assert mismatch(1, True) and mismatch(True, 1)
    assert mismatch(1, UInt(1)) and mismatch(UInt(1), 1) and mismatch(UInt(1), UInt(1)) is None
    assert mismatch(1.0, 1) and mismatch(1, 1.0)
    assert mismatch(math.nan, math.nan) is None and mismatch(math.nan, 1.0)
    assert mismatch("a", b"a") and mismatch(b"a", b"a") is None
    assert mismatch(None, None) is None and mismatch(None, 0) and mismatch(False, None)
    assert mismatch([1, [2.0]], [1, [2.0]]) is None and mismatch([1, [2.0]], [1, [2]])
    assert mismatch([1], (1,)) and mismatch([1], [1, 2])
    assert mismatch({"a": [1]}, {"a": [1]}) is None and mismatch({"a": 1}, {"a": 1.0})
    assert mismatch({UInt(1): 1}, {UInt(1): 1}) is None and mismatch({UInt(1): 1}, {1: 1})
    assert mismatch(TypeName("int"), Type("int")) is None
    assert mismatch(TypeName("int"), "int") and mismatch(TypeName("int"), Type("uint"))
