"""The protocol's floor for ``python -m bench load``: a bare uvloop server
that reads fraudcore's frames and answers each at once, without an engine.

``python -m bench.echo_server [--host H] [--port P]``; the first stdout line
is ``bench echo: listening on HOST:PORT (pid N)``; SIGTERM or SIGINT stops it
(exit 0).

Per read it does what the real server does around the engine, and nothing
else: split the bytes into frames (``fraudcore.wire.FrameReader``), decode
each request with msgspec into a Struct (the event's 19 typed fields, as
``examples/rules.yaml`` declares them), encode a tiny fixed response
``{id, ok: true}`` per frame into one buffer, and write that buffer once.
So the difference between fraudcore's round trip and this one is what the
server adds: the tagged-union decode into a dict, the engine, the decision's
encoding, the deadline check and the bookkeeping.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys

import msgspec
import uvloop

from fraudcore.wire import FrameReader

__all__ = ["Event", "Request", "main"]


class Event(msgspec.Struct):
    """One event of examples/rules.yaml's schema (all fields present)."""

    type: str
    user_id: str
    amount: float
    currency: str
    asset: str
    network: str
    device_id: str
    ip: str
    ip_country: str
    country: str
    user_agent: str
    email_domain: str
    account_age_days: int
    kyc_level: int
    dest_address: str
    is_new_device: bool
    two_fa: bool
    failed_logins_1h: int
    ts: int


class Request(msgspec.Struct):
    id: int
    op: str
    event: Event | None = None
    events: list[Event] | None = None


class Reply(msgspec.Struct):
    id: int
    ok: bool


_decode = msgspec.msgpack.Decoder(Request).decode
_encode_into = msgspec.msgpack.Encoder().encode_into


class Echo(asyncio.Protocol):
    __slots__ = ("transport", "reader")

    def __init__(self) -> None:
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.reader = FrameReader()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        frames = self.reader.feed(data)
        if not frames:
            return
        out = bytearray()
        for frame in frames:
            req = _decode(frame)
            start = len(out)
            out += b"\0\0\0\0"
            _encode_into(Reply(req.id, True), out, -1)
            out[start : start + 4] = (len(out) - start - 4).to_bytes(4, "big")
        self.transport.write(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.echo_server", description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))

    async def serve() -> None:
        server = await loop.create_server(Echo, args.host, args.port, backlog=1024)
        port = server.sockets[0].getsockname()[1]
        print(f"bench echo: listening on {args.host}:{port} (pid {os.getpid()})", flush=True)
        await stop
        server.close()

    try:
        loop.run_until_complete(serve())
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
