"""fraudcore's CEL engine, usable on its own for any expression.

The pipeline is parse → check → compile → run::

    prog = fraudcore.cel.compile('amount > 1000.0 && country in ["KP", "IR"]',
                                 {"amount": "double", "country": "string"})
    prog.evaluate({"amount": 1500.0, "country": "KP"})   # True
    prog.native                                          # True: the native VM runs it
    fraudcore.cel.evaluate("size([1, 2, 3]) * 2")        # 6
"""

from __future__ import annotations

from ..errors import EvaluationError
from .program import Program, compile, evaluate
from .values import Type, UInt

__all__ = ["EvaluationError", "Program", "Type", "UInt", "compile", "evaluate"]
