"""Native extensions, selected in this one place.

``FRAUDCORE_NO_EXTENSIONS=1`` turns them off: everything then runs on the
pure-Python reference paths, which give the same answers, only slower. When
the extension is not built the package still imports and says so here.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

__all__ = ["vm", "counters", "engine", "DISABLED", "IMPORT_ERROR"]

DISABLED = os.environ.get("FRAUDCORE_NO_EXTENSIONS", "") not in ("", "0")
IMPORT_ERROR: str | None = None


def _load(name: str) -> ModuleType | None:
    global IMPORT_ERROR
    if DISABLED:
        return None
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ImportError as e:  # not built: the reference paths serve
        IMPORT_ERROR = str(e)
        return None


vm = _load("vm")
counters = _load("counters") if vm is not None else None
engine = _load("engine") if counters is not None else None
if vm is not None:
    # The VM was compiled against opcodes.pxi; refuse a stale build rather
    # than run bytecode whose numbering it does not share.
    from ..cel.opcodes import SPECS

    if vm.OPCODE_TABLE != tuple((s.name, s.nargs) for s in SPECS):
        raise ImportError("fraudcore._native.vm was built from another opcode table: rebuild it (make test)")
