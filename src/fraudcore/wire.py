"""The wire protocol of SPEC §4, shared by the server and the clients.

A frame is a 4-byte unsigned big-endian length N, then N bytes of
MessagePack. Requests are a tagged union on ``op``; every request carries an
unsigned ``id`` that its response echoes. docs/protocol.md is the reference
for gateway teams; this module is its executable form.
"""

from __future__ import annotations

import struct
from typing import Annotated, Any, Union

import msgspec

__all__ = [
    "HEADER",
    "MAX_FRAME",
    "Code",
    "Decide",
    "DecideBatch",
    "DecisionMsg",
    "ErrorMsg",
    "Evaluate",
    "FrameReader",
    "FrameTooLarge",
    "Health",
    "Ingest",
    "Reload",
    "Request",
    "Response",
    "Stats",
    "append_frame",
    "error_response",
]

HEADER = 4
MAX_FRAME = 1 << 20  # default maximum payload, bytes

Id = Annotated[int, msgspec.Meta(ge=0)]  # MessagePack uint: 0 .. 2^64 - 1
Event = dict[str, Any]


class Code:
    """Error codes of ``error.code``: stable strings a client can branch on."""

    BAD_FRAME = "bad_frame"  # the payload is not one MessagePack value
    BAD_REQUEST = "bad_request"  # MessagePack, but not a valid request (the message names the field)
    UNKNOWN_OP = "unknown_op"
    FRAME_TOO_LARGE = "frame_too_large"  # the connection is closed after it
    FRAME_TIMEOUT = "frame_timeout"  # a frame not completed in time; closed after it
    TOO_MANY_CONNECTIONS = "too_many_connections"  # closed after it
    UNAUTHORIZED = "unauthorized"  # an admin op without the configured token
    DEADLINE_EXCEEDED = "deadline_exceeded"  # waited in the server longer than its deadline
    BAD_EVENT = "bad_event"  # an event the engine refused as a whole
    BAD_RULES = "bad_rules"  # reload: the rules do not compile; the old ones stay
    RELOAD_FAILED = "reload_failed"  # reload: refused for another reason; the old rules stay
    INTERNAL = "internal"  # a bug: reported, logged, and the server goes on


# -- requests: one Struct per op, tagged by "op"; unknown fields are ignored,
# so clients may add fields (a trace id, say) without breaking the server.


class Request(msgspec.Struct, tag_field="op"):
    id: Id


class Decide(Request, tag="decide"):
    event: Event


class Evaluate(Request, tag="evaluate"):
    event: Event


class Ingest(Request, tag="ingest"):
    event: Event


class DecideBatch(Request, tag="decide_batch"):
    events: list[Event]


class Health(Request, tag="health"):
    pass


class Stats(Request, tag="stats"):
    token: str | None = None


class Reload(Request, tag="reload"):
    rules: str | None = None
    token: str | None = None


AnyRequest = Union[Decide, Evaluate, Ingest, DecideBatch, Health, Stats, Reload]
OPS = tuple(sorted(t.__struct_config__.tag for t in AnyRequest.__args__))  # type: ignore[attr-defined]

# -- responses, as clients decode them


class DecisionMsg(msgspec.Struct):
    action: str
    score: int
    rules: list[str]
    reasons: list[str]
    features: dict[str, Any]
    errors: list[tuple[str, str]]
    version: str


class ErrorMsg(msgspec.Struct):
    code: str
    message: str


class Response(msgspec.Struct, omit_defaults=True):
    id: Id
    ok: bool
    decision: DecisionMsg | None = None
    decisions: list[DecisionMsg] | None = None
    status: str | None = None
    stats: dict[str, Any] | None = None
    version: str | None = None
    error: ErrorMsg | None = None


def error_response(rid: int, code: str, message: str) -> dict[str, Any]:
    return {"id": rid, "ok": False, "error": {"code": code, "message": message}}


_length = struct.Struct(">I")


def append_frame(out: bytearray, encoder: msgspec.msgpack.Encoder, msg: Any) -> None:
    """Encode ``msg`` as one frame at the end of ``out``, in place."""
    start = len(out)
    out += b"\0\0\0\0"
    encoder.encode_into(msg, out, -1)
    _length.pack_into(out, start, len(out) - start - HEADER)


class FrameReader:
    """Splits a byte stream into frame payloads.

    ``feed`` returns the complete payloads (memoryviews: decoders read them
    without a copy); a partial frame stays buffered. A length above
    ``max_frame`` ends the stream: ``error`` becomes a ``FrameTooLarge``
    (the frames before it are still returned, to be answered), nothing of
    its payload is buffered, and later feeds return nothing.
    """

    __slots__ = ("max_frame", "error", "_buf", "_need")

    def __init__(self, max_frame: int = MAX_FRAME):
        self.max_frame = max_frame
        self.error: FrameTooLarge | None = None
        self._buf = bytearray()
        self._need = 0  # bytes the buffered partial frame needs in all

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[memoryview]:
        if self.error is not None:
            return []
        buf = self._buf
        if buf:
            buf += data
            if len(buf) < self._need:
                return []  # a large frame arriving in pieces: no re-parse, no copy of the whole
            # The payloads are views of the filled buffer, which a fresh one
            # replaces: a frame of many MB is not copied once more.
            data, self._buf = buf, bytearray()
            buf = self._buf
        view = memoryview(data)
        frames = []
        pos, end, n = 0, len(data), 0
        unpack = _length.unpack_from
        while end - pos >= HEADER:
            (n,) = unpack(data, pos)
            if n > self.max_frame:
                self.error = FrameTooLarge(n, self.max_frame)
                return frames
            if end - pos - HEADER < n:
                break
            frames.append(view[pos + HEADER : pos + HEADER + n])
            pos += HEADER + n
        if pos < end:
            buf += view[pos:]
            self._need = HEADER + n if end - pos >= HEADER else HEADER
        return frames


class FrameTooLarge(Exception):
    """A frame's length prefix is above the limit: the stream cannot go on."""

    def __init__(self, size: int, limit: int):
        super().__init__(f"frame of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit
