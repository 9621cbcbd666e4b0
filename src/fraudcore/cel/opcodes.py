"""The instruction set: the single source of truth for the compiler, the
reference interpreter and the native VM.

A program is a flat ``int32`` array: an opcode followed by its ``nargs``
operands. Jump operands are absolute positions in that array. The stack
machine keeps values on an operand stack; variables and comprehension locals
live in numbered slots.

``native`` says whether ``_native/vm.pyx`` implements the opcode. The Cython
side includes ``_native/opcodes.pxi``, generated from this table by
:func:`render_pxi` (setup.py runs this file before cythonize); a test fails when the
generated file is stale, and the VM checks the table at import time.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Op", "SPECS", "OpSpec", "render_pxi", "CMP_FUNCTIONS", "ARITH_FUNCTIONS"]


@dataclass(frozen=True, slots=True)
class OpSpec:
    name: str
    nargs: int
    native: bool
    doc: str


SPECS: tuple[OpSpec, ...] = (
    # -- data movement
    OpSpec("CONST", 1, True, "push constants[a]"),
    OpSpec("LOAD", 1, True, "push slots[a] (a declared variable or a comprehension local)"),
    OpSpec("STORE", 1, False, "pop into slots[a]"),
    OpSpec("POP", 0, False, "drop the top of the stack"),
    # -- control flow; CEL's error absorption lives in AND/OR/COND
    OpSpec("JUMP", 1, True, "pc = a"),
    OpSpec("AND_SHORT", 1, True, "if top is false: jump to a, keeping it (false && x is false)"),
    OpSpec("AND", 0, True, "pop b, a: false if either is false, else an error if either is one, else true"),
    OpSpec("OR_SHORT", 1, True, "if top is true: jump to a, keeping it"),
    OpSpec("OR", 0, True, "pop b, a: true if either is true, else an error if either is one, else false"),
    OpSpec("COND", 2, True, "pop c: true falls through, false jumps to a, otherwise push the error and jump to b"),
    OpSpec("NOT_STRICTLY_FALSE", 0, False, "pop v; push false only if v is false (errors count as true)"),
    # -- comprehensions (macros)
    OpSpec("ITER_INIT", 1, False, "pop a list or map, push an iterator; on anything else push an error and jump to a"),
    OpSpec("ITER_NEXT", 2, False, "advance the iterator on top into slots[b]; when exhausted pop it and jump to a"),
    OpSpec("JUMP_IF_FALSE", 1, False, "pop v; jump to a unless v is true"),
    # -- operators, dispatched on the runtime types of their operands
    OpSpec("NOT", 0, True, "logical not"),
    OpSpec("NEG", 0, True, "arithmetic negation"),
    OpSpec("ADD", 0, True, "a + b (numbers natively; strings, bytes, lists, times on the reference path)"),
    OpSpec("SUB", 0, True, "a - b"),
    OpSpec("MUL", 0, True, "a * b"),
    OpSpec("DIV", 0, True, "a / b"),
    OpSpec("MOD", 0, True, "a % b"),
    OpSpec("EQ", 0, True, "a == b, CEL heterogeneous equality"),
    OpSpec("NE", 0, True, "a != b"),
    OpSpec("LT", 0, True, "a < b, numbers across types"),
    OpSpec("LE", 0, True, "a <= b"),
    OpSpec("GT", 0, True, "a > b"),
    OpSpec("GE", 0, True, "a >= b"),
    OpSpec("IN", 0, False, "a in b (list or map)"),
    OpSpec("IN_SET", 1, True, "top in the constant set constants[a]"),
    # -- superinstructions: a comparison against a constant, the commonest
    #    shape in rules (``amount > 1000.0``, ``type == "withdrawal"``)
    OpSpec("CMP_CONST", 2, True, "pop v; push v <cmp a> constants[b], a indexing CMP_OPS"),
    OpSpec("LOAD_CMP_CONST", 3, True, "push slots[a] <cmp b> constants[c]"),
    OpSpec("LOAD_CMP_CONST_AND", 4, True, "LOAD_CMP_CONST a b c, then AND_SHORT d: the commonest conjunct, one dispatch"),
    # -- string functions with native implementations
    OpSpec("SIZE", 0, True, "size(v) (strings natively)"),
    OpSpec("STARTS_WITH", 0, True, "a.startsWith(b)"),
    OpSpec("ENDS_WITH", 0, True, "a.endsWith(b)"),
    OpSpec("CONTAINS", 0, True, "a.contains(b)"),
    OpSpec("MATCHES_CONST", 1, True, "pop s, push whether the compiled regex constants[a] matches in s"),
    OpSpec("TO_INT", 0, True, "int(v) (numbers natively)"),
    OpSpec("TO_DOUBLE", 0, True, "double(v) (numbers natively)"),
    # -- everything else: a standard-library overload
    OpSpec("CALL", 2, False, "pop b arguments, call overloads[a]"),
    OpSpec("DISPATCH", 2, False, "pop b arguments, resolve functions[a] by their runtime types, call it"),
    OpSpec("INDEX", 0, False, "a[b]"),
    OpSpec("SELECT", 1, True, "pop a map, push its field constants[a] (the event map natively)"),
    OpSpec("HAS", 1, True, "pop a map, push whether it has field constants[a]"),
    OpSpec("HAS_FIELD", 2, True, "push whether the event has declared field slots[a] (named constants[b]): has(event.f)"),
    OpSpec("MAKE_LIST", 1, False, "pop a values, push a list"),
    OpSpec("MAKE_MAP", 1, False, "pop 2a values (key, value pairs), push a map"),
    OpSpec("ERROR", 1, False, "push the error constants[a] (a statically known failure)"),
    OpSpec("RETURN", 0, True, "stop; the top of the stack is the result"),
)

Op = enum.IntEnum("Op", [(s.name, i) for i, s in enumerate(SPECS)])  # type: ignore[misc]
Op.__doc__ = "Opcode numbers, in SPECS order."

# Comparison operators encoded in CMP_CONST / LOAD_CMP_CONST operands.
CMP_OPS = ("EQ", "NE", "LT", "LE", "GT", "GE")
CMP_FUNCTIONS = {"_==_": "EQ", "_!=_": "NE", "_<_": "LT", "_<=_": "LE", "_>_": "GT", "_>=_": "GE"}
ARITH_FUNCTIONS = {"_+_": "ADD", "_-_": "SUB", "_*_": "MUL", "_/_": "DIV", "_%_": "MOD"}

PXI_PATH = Path(__file__).resolve().parent.parent / "_native" / "opcodes.pxi"


def render_pxi() -> str:
    """The Cython include declaring every opcode as a C enum constant."""
    lines = [
        "# Generated from src/fraudcore/cel/opcodes.py (setup.py runs it before cythonize).",
        "# Do not edit: tests/unit/test_opcodes.py fails when this file is stale.",
        "",
        "cdef enum:",
    ]
    lines += [f"    OP_{s.name} = {i}  # {s.nargs} operand(s); {s.doc}" for i, s in enumerate(SPECS)]
    lines += ["", "cdef enum:"]
    lines += [f"    CMP_{name} = {i}" for i, name in enumerate(CMP_OPS)]
    lines += ["", f"OPCODE_TABLE = {tuple((s.name, s.nargs) for s in SPECS)!r}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    # Rewrite only on change, so an unchanged table does not recompile the VM.
    text = render_pxi()
    if not PXI_PATH.exists() or PXI_PATH.read_text() != text:
        PXI_PATH.write_text(text)
        print(f"wrote {PXI_PATH}")
