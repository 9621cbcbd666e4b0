"""The decision server of `fraudcore serve` (SPEC §3, §4): a uvloop TCP server
speaking the framed MessagePack protocol of docs/protocol.md, with worker
processes sharing one state region.

Installed as ``fraudcore.server``; the wire format it shares with the
clients is ``fraudcore.wire``.
"""

from .config import ServerConfig
from .supervisor import serve

__all__ = ["ServerConfig", "serve"]
