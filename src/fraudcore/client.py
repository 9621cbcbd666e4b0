"""Clients of `fraudcore serve` (docs/protocol.md).

``Client`` is blocking, for scripts and threads (one per thread);
``AsyncClient`` is for asyncio services, and pipelines on its own: any
number of concurrent calls share one connection, matched to responses by id.

Both reconnect: a call on a broken connection opens a new one. A request
whose answer was lost with the connection is not re-sent (a decide counts
the event: sending it twice would count it twice); it raises
``ConnectionError`` and the next call reconnects.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from typing import Any, Iterable, Mapping, Sequence

import msgspec

from .errors import FraudcoreError
from .wire import DecisionMsg, FrameReader, Response, append_frame

__all__ = ["AsyncClient", "Client", "ServerError"]

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Response)


class ServerError(FraudcoreError):
    """The server answered a request with an error (``code``: see wire.Code)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _result(resp: Response) -> Response:
    if not resp.ok:
        err = resp.error
        raise ServerError(err.code, err.message) if err else ServerError("unknown", "ok is false without an error")
    return resp


class _ClientBase:
    """What both clients share: where the server is, the limits, and the
    request builder (op name and fields in, one frame out, a fresh id)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7878,
        *,
        timeout: float = 5.0,
        connect_timeout: float = 2.0,
        token: str | None = None,
        max_response: int = 1 << 30,
    ):
        self.host, self.port = host, port
        self.timeout = timeout  # seconds, per call
        self.connect_timeout = connect_timeout
        self.token = token  # sent with the admin ops (stats, reload)
        # Responses are not bound by the server's request limit (a batch's
        # answer can be larger than its request); this only stops a stream
        # that is not this protocol.
        self.max_response = max_response
        self._ids = itertools.count(1)

    def _frame(self, out: bytearray, op: str, **fields: Any) -> int:
        rid = next(self._ids)
        msg = {"id": rid, "op": op}
        if op in ("stats", "reload") and self.token is not None:
            msg["token"] = self.token
        msg.update(fields)
        append_frame(out, _encoder, msg)
        return rid

    @property
    def _where(self) -> str:
        return f"{self.host}:{self.port}"


class Client(_ClientBase):
    """A blocking client: Client(host, port, timeout=, connect_timeout=,
    token=, max_response=). Not shared between threads: one per thread."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._sock: socket.socket | None = None
        self._reader = FrameReader(self.max_response)
        self._ready: list[Response] = []

    # -- the ops of SPEC §4
    def decide(self, event: Mapping[str, Any]) -> DecisionMsg:
        return self._call("decide", event=event).decision  # type: ignore[return-value]

    def evaluate(self, event: Mapping[str, Any]) -> DecisionMsg:
        return self._call("evaluate", event=event).decision  # type: ignore[return-value]

    def ingest(self, event: Mapping[str, Any]) -> None:
        self._call("ingest", event=event)

    def decide_batch(self, events: Sequence[Mapping[str, Any]]) -> list[DecisionMsg]:
        return self._call("decide_batch", events=events).decisions  # type: ignore[return-value]

    def health(self) -> str:
        return self._call("health").status  # type: ignore[return-value]

    def stats(self) -> dict[str, Any]:
        return self._call("stats").stats  # type: ignore[return-value]

    def reload(self, rules: str | None = None) -> str:
        """Switch every worker to ``rules`` (YAML text; None: the server's
        rules file, re-read). Returns the new version."""
        fields = {} if rules is None else {"rules": rules}
        return self._call("reload", **fields).version  # type: ignore[return-value]

    def decide_pipelined(self, events: Iterable[Mapping[str, Any]], window: int = 64) -> list[DecisionMsg]:
        """Decide each event as its own request, keeping up to ``window``
        requests in flight: the round trips overlap."""
        out: list[DecisionMsg] = []
        pending = 0
        buf = bytearray()
        for event in events:
            self._frame(buf, "decide", event=event)
            pending += 1
            if pending == window:
                self._send(buf)
                buf.clear()
                out.extend(_result(self._recv()).decision for _ in range(pending))  # type: ignore[misc]
                pending = 0
        if pending:
            self._send(buf)
            out.extend(_result(self._recv()).decision for _ in range(pending))  # type: ignore[misc]
        return out

    # -- transport
    def _call(self, op: str, **fields: Any) -> Response:
        buf = bytearray()
        rid = self._frame(buf, op, **fields)
        self._send(buf)
        resp = self._recv()
        if resp.id != rid and resp.id != 0:
            self.close()
            raise ConnectionError(f"response id {resp.id} does not answer request {rid}; connection reset")
        return _result(resp)

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self.timeout)
            self._sock, self._reader, self._ready = sock, FrameReader(self.max_response), []
        return self._sock

    def _send(self, data: bytes | bytearray) -> None:
        sock = self._connect()
        try:
            sock.sendall(data)
        except OSError:
            self.close()
            # Nothing of it was answered; one retry on a new connection is safe
            # only if nothing was sent, which a failed sendall cannot promise.
            raise

    def _recv(self) -> Response:
        sock = self._sock
        if sock is None:
            raise ConnectionError("not connected")
        deadline = time.monotonic() + self.timeout
        while not self._ready:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise TimeoutError(f"no response from {self._where} within {self.timeout:g} s")
            sock.settimeout(left)
            try:
                data = sock.recv(1 << 16)
            except socket.timeout:
                continue
            except OSError:
                self.close()
                raise
            if not data:
                self.close()
                raise ConnectionError(f"{self._where} closed the connection")
            self._ready.extend(_decoder.decode(f) for f in self._reader.feed(data))
            if self._reader.error is not None:
                self.close()
                raise ConnectionError(f"{self._where}: {self._reader.error}; connection closed")
        return self._ready.pop(0)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Stream(asyncio.Protocol):
    def __init__(self, client: "AsyncClient"):
        self.client = client
        self.reader = FrameReader(client.max_response)
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        waiting = self.client._waiting
        try:
            frames = self.reader.feed(data)
            if self.reader.error is not None:
                raise self.reader.error
            for f in frames:
                resp = _decoder.decode(f)
                fut = waiting.pop(resp.id, None)
                if fut is not None and not fut.done():
                    fut.set_result(resp)
                elif resp.id == 0 and not resp.ok:  # a connection-level error: fail everyone
                    self._fail(ServerError(resp.error.code, resp.error.message) if resp.error else ConnectionError("server error"))
        except Exception as e:  # a broken stream (not frames, not responses): drop the connection
            self._fail(ConnectionError(f"bad response stream: {e}"))
            if self.transport is not None:
                self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(ConnectionError(f"connection lost: {exc}" if exc else "the server closed the connection"))
        if not self.lost.done():
            self.lost.set_result(None)
        if self.client._stream is self:
            self.client._stream = None

    def _fail(self, exc: Exception) -> None:
        waiting = self.client._waiting
        for fut in waiting.values():
            if not fut.done():
                fut.set_exception(exc)
        waiting.clear()


class AsyncClient(_ClientBase):
    """An asyncio client: concurrent calls pipeline over one connection.
    Takes Client's arguments, and ``reconnect_attempts``: connection
    attempts after the first, with exponential backoff, before a call fails."""

    def __init__(self, *args: Any, reconnect_attempts: int = 3, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.reconnect_attempts = reconnect_attempts
        self._stream: _Stream | None = None
        self._connecting: asyncio.Lock | None = None
        self._waiting: dict[int, asyncio.Future[Response]] = {}

    async def decide(self, event: Mapping[str, Any]) -> DecisionMsg:
        return (await self._call("decide", event=event)).decision  # type: ignore[return-value]

    async def evaluate(self, event: Mapping[str, Any]) -> DecisionMsg:
        return (await self._call("evaluate", event=event)).decision  # type: ignore[return-value]

    async def ingest(self, event: Mapping[str, Any]) -> None:
        await self._call("ingest", event=event)

    async def decide_batch(self, events: Sequence[Mapping[str, Any]]) -> list[DecisionMsg]:
        return (await self._call("decide_batch", events=events)).decisions  # type: ignore[return-value]

    async def health(self) -> str:
        return (await self._call("health")).status  # type: ignore[return-value]

    async def stats(self) -> dict[str, Any]:
        return (await self._call("stats")).stats  # type: ignore[return-value]

    async def reload(self, rules: str | None = None) -> str:
        fields = {} if rules is None else {"rules": rules}
        return (await self._call("reload", **fields)).version  # type: ignore[return-value]

    async def _connect(self) -> _Stream:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._stream is not None and self._stream.transport is not None and not self._stream.transport.is_closing():
                return self._stream
            loop = asyncio.get_running_loop()
            delay = 0.05
            for attempt in range(self.reconnect_attempts + 1):
                try:
                    _, stream = await asyncio.wait_for(
                        loop.create_connection(lambda: _Stream(self), self.host, self.port), self.connect_timeout
                    )
                    self._stream = stream
                    return stream
                except (OSError, asyncio.TimeoutError):
                    if attempt == self.reconnect_attempts:
                        raise ConnectionError(f"cannot connect to {self._where} after {attempt + 1} attempts") from None
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)
            raise AssertionError("unreachable")

    async def _call(self, op: str, **fields: Any) -> Response:
        stream = await self._connect()
        buf = bytearray()
        rid = self._frame(buf, op, **fields)
        fut: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        assert stream.transport is not None
        stream.transport.write(buf)
        try:
            resp = await asyncio.wait_for(fut, self.timeout)
        except asyncio.TimeoutError:
            self._waiting.pop(rid, None)
            raise TimeoutError(f"no response from {self._where} within {self.timeout:g} s") from None
        return _result(resp)

    async def close(self) -> None:
        stream = self._stream
        self._stream = None
        if stream is not None and stream.transport is not None:
            stream.transport.close()
            await stream.lost

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

