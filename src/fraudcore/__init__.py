"""fraudcore: a real-time fraud decision engine with a native core.

Rules are CEL expressions in one YAML file, compiled to bytecode run by a
native VM. See SPEC §2 for the API::

    engine = fraudcore.Engine.from_file("rules.yaml")
    d = engine.decide({"type": "withdrawal", "user_id": "u1", "amount": 12000.0, ...})
    d.action, d.score, d.rules, d.reasons, d.errors

and over TCP from `fraudcore serve` (docs/protocol.md)::

    with fraudcore.Client("127.0.0.1", 7878) as client:
        client.decide(event).action
"""

from __future__ import annotations

from . import cel
from .client import AsyncClient, Client, ServerError
from .decision import Decision
from .engine import Engine
from .errors import Diagnostic, EvaluationError, FraudcoreError, RuleError

__all__ = [
    "AsyncClient",
    "Client",
    "Decision",
    "Diagnostic",
    "Engine",
    "EvaluationError",
    "FraudcoreError",
    "RuleError",
    "ServerError",
    "cel",
]

__version__ = "0.1.0"
