"""The opcode table is the single source of truth: the VM's generated
include must match it, and every opcode must be implemented by both
evaluators (or be declared non-native)."""

import re
from pathlib import Path

from fraudcore import _native
from fraudcore.cel import opcodes, refvm
from fraudcore.cel.opcodes import SPECS, Op

NATIVE_DIR = Path(opcodes.__file__).resolve().parent.parent / "_native"


def test_generated_pxi_is_current():
    assert opcodes.PXI_PATH.read_text() == opcodes.render_pxi()


def test_built_vm_shares_the_table():
    if _native.vm is None:
        return  # kill-switch or not built: test_native_selection covers it
    assert _native.vm.OPCODE_TABLE == tuple((s.name, s.nargs) for s in SPECS)


def test_native_opcodes_are_handled_by_the_vm():
    source = (NATIVE_DIR / "vm.pyx").read_text()
    handled = set(re.findall(r"\bOP_([A-Z_]+)\b", source))
    for spec in SPECS:
        if spec.native:
            assert spec.name in handled, f"{spec.name} is marked native but vm.pyx never mentions OP_{spec.name}"


def test_reference_interpreter_handles_every_opcode():
    source = Path(refvm.__file__).read_text()
    dispatched = {op for op in Op if f"Op.{op.name}" in source}
    from fraudcore.cel.compile import OP_FUNCTIONS

    missing = [op.name for op in Op if op not in dispatched and op not in OP_FUNCTIONS]
    assert missing == []
