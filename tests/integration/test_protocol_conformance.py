"""docs/protocol.md, checked by a client written from that page alone.

Only a raw socket and the ``msgpack`` package speak to the server (no
msgspec, no ``fraudcore.client``, no ``fraudcore.wire``): what passes here is
what a gateway in Java or Go would see. The servers are `fraudcore serve`
subprocesses on free ports, stopped with SIGTERM, which must exit 0.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import msgpack
import pytest

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "examples" / "rules.yaml"
DOC = ROOT / "docs" / "protocol.md"
VERSION = "2026-12-04.1"  # examples/rules.yaml
TOKEN = "s3cret"
MAX_FRAME = 1 << 20
TS = 1764806400000  # 2025-12-04 00:00 UTC, epoch ms: every event here is near it
ACTIONS = ("allow", "review", "block")
DECISION_KEYS = {"action", "score", "rules", "reasons", "features", "errors", "version"}
SAFETY_TIMEOUT = 10.0  # s: only so a broken server fails the test instead of hanging it

# The worked example's request, as docs/protocol.md writes it out.
WORKED_EVENT = {
    "type": "withdrawal", "user_id": "u1", "amount": 2500.0, "currency": "USD", "asset": "BTC",
    "network": "bitcoin", "device_id": "d1", "ip": "10.0.0.1", "ip_country": "DE", "country": "DE",
    "user_agent": "ExchangeApp/5.12.0", "email_domain": "gmail.com", "account_age_days": 400,
    "kyc_level": 1, "dest_address": "bc1qx", "is_new_device": False, "two_fa": True,
    "failed_logins_1h": 0, "ts": TS,
}  # fmt: skip
WORKED_REQUEST = {"id": 7, "op": "decide", "event": WORKED_EVENT}


# -- the client: framing and MessagePack, nothing else


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def unpack(payload: bytes) -> Any:
    return msgpack.unpackb(payload, raw=False)  # raises on trailing bytes: exactly one value


class Conn:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=SAFETY_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, request: Any) -> None:
        self.sock.sendall(frame(pack(request)))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError(f"end of stream after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def read_frame(self) -> bytes:
        header = self._exact(4)
        return header + self._exact(struct.unpack(">I", header)[0])

    def recv(self) -> dict[str, Any]:
        resp = unpack(self.read_frame()[4:])
        assert isinstance(resp, dict) and type(resp["id"]) is int and type(resp["ok"]) is bool, resp
        return resp

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        self.send(request)
        resp = self.recv()
        assert resp["id"] == request["id"], resp
        return resp

    def result(self, request: dict[str, Any]) -> dict[str, Any]:
        resp = self.call(request)
        assert resp["ok"] is True and "error" not in resp, resp
        return resp

    def expect_eof(self) -> None:
        assert self.sock.recv(1) == b"", "the server should have closed the connection"

    def close(self) -> None:
        self.sock.close()


def error_of(resp: dict[str, Any]) -> tuple[int, str, str]:
    assert resp["ok"] is False, resp
    err = resp["error"]
    assert set(err) == {"code", "message"} and isinstance(err["code"], str) and isinstance(err["message"], str), err
    return resp["id"], err["code"], err["message"]


def names(message: str, field: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(field)}(?!\w)", message) is not None


def assert_decision(d: Any) -> None:
    """The seven keys and their types, as the doc's decision table says."""
    assert isinstance(d, dict) and set(d) == DECISION_KEYS, d
    assert d["action"] in ACTIONS
    assert type(d["score"]) is int
    assert isinstance(d["rules"], list) and all(isinstance(r, str) for r in d["rules"])
    assert isinstance(d["reasons"], list) and all(isinstance(r, str) for r in d["reasons"])
    assert len(d["reasons"]) == len(d["rules"])
    assert isinstance(d["features"], dict)
    assert all(isinstance(k, str) and type(v) in (int, float) for k, v in d["features"].items())
    assert isinstance(d["errors"], list)
    assert all(isinstance(e, list) and len(e) == 2 and all(isinstance(s, str) for s in e) for e in d["errors"])
    assert isinstance(d["version"], str)


def withdrawal(user: str, dest: str, **fields: Any) -> dict[str, Any]:
    """A full event of examples/rules.yaml: KYC level 2, so a first withdrawal
    to a fresh address matches first_time_address only. Its own device and IP,
    so that the per-device and per-IP counters of other tests cannot fire."""
    own = {"user_id": user, "device_id": f"dev-{user}", "ip": f"ip-{user}", "dest_address": dest, "kyc_level": 2}
    return {**WORKED_EVENT, **own, **fields}


# -- servers


class Server:
    def __init__(self, logdir: Path, *args: str):
        env = {k: v for k, v in os.environ.items() if k != "FRAUDCORE_TOKEN"}  # only --token sets one
        self.log = logdir / "stderr.txt"
        self._stderr = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fraudcore.cli", "serve", "--rules", str(RULES), "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env,
        )  # fmt: skip
        line = self.proc.stdout.readline()
        m = re.match(r"fraudcore serve: listening on 127\.0\.0\.1:(\d+) \(", line)
        if m is None:
            self.proc.kill()
            self.stop()
            pytest.fail(f"no listening line: {line!r}\n{self.log.read_text()}")
        self.port = int(m.group(1))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self.proc.stdout.close()
            self._stderr.close()


@contextmanager
def running(tmp_path_factory: pytest.TempPathFactory, *args: str) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("server"), *args)
    try:
        yield server
    finally:
        status = server.stop()
    assert status == 0, server.log.read_text()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Defaults: no token, 1 MiB frames."""
    with running(tmp_path_factory) as srv:
        yield srv


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    """An admin token; a short frame timeout for the frame_timeout test."""
    with running(tmp_path_factory, "--token", TOKEN, "--frame-timeout", "0.5") as srv:
        yield srv


@pytest.fixture
def fresh_server(tmp_path_factory):
    """A server of its own: state no other test touched."""
    with running(tmp_path_factory) as srv:
        yield srv


@pytest.fixture
def connect():
    conns: list[Conn] = []

    def make(srv: Server) -> Conn:
        conns.append(Conn(srv.port))
        return conns[-1]

    yield make
    for c in conns:
        c.close()


# -- the worked example


def doc_frames() -> list[bytes]:
    """The hex listings of docs/protocol.md, in order: each fenced block whose
    every line is `OFFSET  HEX BYTES  annotation` (hex in columns 6..53)."""
    frames = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", DOC.read_text(), re.S | re.M):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines or not all(re.match(r"[0-9a-f]{4}  [0-9a-f]{2}( |$)", line) for line in lines):
            continue
        data = bytearray()
        for line in lines:
            assert int(line[:4], 16) == len(data), f"offset out of step: {line!r}"
            data += bytes.fromhex(line[6:53])
        frames.append(bytes(data))
    return frames


def test_the_worked_example_decodes_to_what_the_doc_says():
    frames = doc_frames()
    assert len(frames) == 4  # decide request, its response, health request, its response
    for f in frames:
        assert struct.unpack(">I", f[:4])[0] == len(f) - 4
    decide_req, decide_resp, health_req, health_resp = (unpack(f[4:]) for f in frames)
    assert len(frames[0]) == 316 and len(frames[1]) == 243
    assert decide_req == WORKED_REQUEST
    assert decide_resp == {
        "id": 7,
        "ok": True,
        "decision": {
            "action": "review",
            "score": 45,
            "rules": ["first_time_address", "low_kyc_high_value"],
            "reasons": ["First withdrawal to this address in 30 days", "Basic-KYC account moving more than 2000 USD"],
            "features": {"to_address_30d": 1},
            "errors": [],
            "version": VERSION,
        },
    }
    assert health_req == {"id": 1, "op": "health"}
    assert health_resp == {"id": 1, "ok": True, "status": "ok", "version": VERSION}


def test_the_worked_example_replayed_on_a_fresh_server(fresh_server, connect):
    decide_req, decide_resp, health_req, health_resp = doc_frames()
    c = connect(fresh_server)
    c.send_raw(decide_req)  # the documented bytes, as they are
    got = c.read_frame()
    assert unpack(got[4:]) == unpack(decide_resp[4:])
    assert_decision(unpack(got[4:])["decision"])
    c.send_raw(health_req)
    assert unpack(c.read_frame()[4:]) == unpack(health_resp[4:])


# -- every op and the shape of its answer


def test_health(server, connect):
    resp = connect(server).result({"id": 1, "op": "health"})
    assert resp == {"id": 1, "ok": True, "status": "ok", "version": VERSION}


def test_decide_evaluate_ingest(server, connect):
    c = connect(server)
    first = withdrawal("u-ops", "addr-ops")
    for rid in (1, 2):  # evaluate writes nothing: the same answer twice
        d = c.result({"id": rid, "op": "evaluate", "event": first})["decision"]
        assert_decision(d)
        assert d["rules"] == ["first_time_address"] and d["features"] == {"to_address_30d": 1}
        assert d["action"] == "allow" and d["score"] == 15 and d["version"] == VERSION
    decided = c.result({"id": 3, "op": "decide", "event": first})
    assert set(decided) == {"id", "ok", "decision"}
    assert decided["decision"]["rules"] == ["first_time_address"]
    # decide counted it: this address is no longer a first.
    assert c.result({"id": 4, "op": "evaluate", "event": first})["decision"]["rules"] == []
    # ingest counts without deciding, and answers only id and ok.
    second = withdrawal("u-ops", "addr-ops-2", ts=TS + 1)
    assert c.result({"id": 5, "op": "ingest", "event": second}) == {"id": 5, "ok": True}
    assert c.result({"id": 6, "op": "evaluate", "event": second})["decision"]["rules"] == []


def test_decide_batch(server, connect):
    c = connect(server)
    login = {**withdrawal("u-batch-2", ""), "type": "login", "user_agent": "curl/8.5.0"}
    events = [withdrawal("u-batch", "addr-batch"), withdrawal("u-batch", "addr-batch", ts=TS + 1), login]
    resp = c.result({"id": 1, "op": "decide_batch", "events": events})
    assert set(resp) == {"id", "ok", "decisions"}
    ds = resp["decisions"]
    assert isinstance(ds, list) and len(ds) == 3
    for d in ds:
        assert_decision(d)
    # In order, each counted before the next: the second is no longer a first.
    assert [d["rules"] for d in ds] == [["first_time_address"], [], ["scripted_client"]]
    assert c.result({"id": 2, "op": "decide_batch", "events": []})["decisions"] == []


def test_event_field_types_and_missing_fields(server, connect):
    c = connect(server)
    base = withdrawal("u-types", "addr-types")
    expected = c.result({"id": 1, "op": "evaluate", "event": base})["decision"]
    # A double field takes an int; floats may be float32; ints any width.
    as_int = c.result({"id": 2, "op": "evaluate", "event": {**base, "amount": 2500}})["decision"]
    assert as_int == expected
    c.send_raw(frame(msgpack.packb({"id": 3, "op": "evaluate", "event": base}, use_single_float=True)))
    assert c.recv()["decision"] == expected
    # Missing fields are per-rule errors, not request errors.
    d = c.result({"id": 4, "op": "evaluate", "event": {}})["decision"]
    assert_decision(d)
    assert ["sanctioned_country", "event has no field 'country'"] in d["errors"]
    assert d["rules"] == [] and len(d["errors"]) > 1
    # A mistyped field: the rules reading it report it, the others decide.
    mistyped = {**base, "amount": "lots", "user_agent": "curl/8.5.0"}
    d = c.result({"id": 5, "op": "evaluate", "event": mistyped})["decision"]
    assert any(names(msg, "amount") for _, msg in d["errors"])
    assert "scripted_client" in d["rules"]
    # Undeclared fields are ignored.
    extra = c.result({"id": 6, "op": "evaluate", "event": {**base, "not_a_field": [1, {"x": None}]}})["decision"]
    assert extra == expected


def test_stats(server, connect):
    c = connect(server)
    c.result({"id": 1, "op": "health"})
    for rid, extra in ((2, {}), (3, {"token": "ignored without --token"}), (4, {"token": None})):
        stats = c.result({"id": rid, "op": "stats", **extra})["stats"]
        assert isinstance(stats, dict)
        for key in ("version", "rules", "native_rules", "rule_hits", "counters", "keys", "memory_bytes", "evictions",
                    "high_water_ms", "state", "reload_error", "server"):  # fmt: skip
            assert key in stats, key
        assert stats["version"] == VERSION and stats["rules"] == 26
        assert set(stats["rule_hits"]) >= {"first_time_address", "sanctioned_country"}
        assert {"keys", "evictions", "too_old", "future_skipped"} <= set(stats["counters"]["to_address_30d"])
        srv = stats["server"]
        for key in ("pid", "uptime_s", "open_connections", "connections", "requests", "rejected_connections", "errors"):
            assert key in srv, key
        assert type(srv["pid"]) is int and srv["open_connections"] >= 1 and srv["requests"] >= 2
        assert isinstance(srv["errors"], dict)


def test_ids_of_any_width_are_echoed(server, connect):
    c = connect(server)
    for rid in (0, 1, 255, 2**32, 2**64 - 1):
        assert c.result({"id": rid, "op": "health"})["status"] == "ok"
    # 5 as int64 (d3), and op before id: any integer format, any key order.
    c.send_raw(frame(b"\x82\xa2op\xa6health\xa2id\xd3" + (5).to_bytes(8, "big")))
    assert c.recv()["id"] == 5


def test_unknown_request_fields_are_ignored(server, connect):
    resp = connect(server).result({"id": 9, "op": "health", "trace_id": "abc", "extra": [1, {"a": 2.5}]})
    assert resp["status"] == "ok"


# -- pipelining


def test_pipelined_responses_come_in_request_order(server, connect):
    c = connect(server)
    requests: list[bytes] = []
    expected: list[tuple[int, str | None]] = []  # (id, error code or None)
    for i in range(100):
        rid = 1000 + i
        if i == 50:
            requests.append(frame(b"\xc1"))  # not MessagePack: answered in its place, with id 0
            expected.append((0, "bad_frame"))
            continue
        if i == 75:
            req: dict[str, Any] = {"id": rid, "op": "no_such_op"}
            expected.append((rid, "unknown_op"))
        else:
            op = ("health", "evaluate", "decide", "ingest")[i % 4]
            req = {"id": rid, "op": op}
            if op != "health":
                req["event"] = withdrawal(f"u-pipe-{i}", f"addr-pipe-{i}", ts=TS + i)
            expected.append((rid, None))
        requests.append(frame(pack(req)))
    c.send_raw(b"".join(requests))  # all 100 before reading anything
    got = []
    for _ in range(100):
        resp = c.recv()
        got.append((resp["id"], None if resp["ok"] else resp["error"]["code"]))
        if resp["ok"] and "decision" in resp:
            assert_decision(resp["decision"])
    assert got == expected
    assert c.result({"id": 1, "op": "health"})["status"] == "ok"


# -- errors that keep the connection


BAD_FRAMES = {
    "invalid byte": b"\xc1",
    "truncated": b"\x82\xa2id",
    "trailing bytes": pack({"id": 3, "op": "health"}) + b"\x01",
    "empty": b"",
}


@pytest.mark.parametrize("payload", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
def test_bad_frame_keeps_the_connection(server, connect, payload):
    c = connect(server)
    c.send_raw(frame(payload))
    assert error_of(c.recv())[:2] == (0, "bad_frame")
    assert c.result({"id": 2, "op": "health"})["status"] == "ok"


BAD_REQUESTS = {  # name: (request, expected id, field the message names)
    "not a map": ([1, 2], 0, None),
    "missing op": ({"id": 5}, 5, "op"),
    "op not a str": ({"id": 5, "op": 1}, 5, "op"),
    "missing id": ({"op": "health"}, 0, "id"),
    "id a str": ({"id": "5", "op": "health"}, 0, "id"),
    "negative id": ({"id": -5, "op": "health"}, 0, "id"),
    "id a float": ({"id": 5.0, "op": "health"}, 0, "id"),
    "missing event": ({"id": 6, "op": "decide"}, 6, "event"),
    "event an array": ({"id": 6, "op": "evaluate", "event": [1]}, 6, "event"),
    "event key not a str": ({"id": 6, "op": "ingest", "event": {1: 2}}, 6, "event"),
    "events not an array": ({"id": 6, "op": "decide_batch", "events": {}}, 6, "events"),
    "events item not a map": ({"id": 6, "op": "decide_batch", "events": [{}, 5]}, 6, "events[1]"),
    "token not a str": ({"id": 6, "op": "stats", "token": 5}, 6, "token"),
    "rules not a str": ({"id": 6, "op": "reload", "rules": 5}, 6, "rules"),
    "bin keys": ({b"id": 6, b"op": b"health"}, 0, None),
}


@pytest.mark.parametrize("request_, rid, field", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_request_names_the_field_and_keeps_the_connection(server, connect, request_, rid, field):
    c = connect(server)
    c.send(request_)
    got_id, code, message = error_of(c.recv())
    assert (got_id, code) == (rid, "bad_request"), message
    if field is not None:
        assert names(message, field), message
    assert c.result({"id": 2, "op": "health"})["status"] == "ok"


@pytest.mark.parametrize("op", ["no_such_op", "HEALTH", ""])
def test_unknown_op_keeps_the_connection(server, connect, op):
    c = connect(server)
    assert error_of(c.call({"id": 8, "op": op}))[:2] == (8, "unknown_op")
    assert c.result({"id": 9, "op": "health"})["status"] == "ok"


# -- errors that close the connection


def test_frame_too_large_closes_the_connection(server, connect):
    c = connect(server)
    c.send_raw(struct.pack(">I", MAX_FRAME + 1))  # the payload is never read, so none is sent
    assert error_of(c.recv())[:2] == (0, "frame_too_large")
    c.expect_eof()
    assert connect(server).result({"id": 1, "op": "health"})["status"] == "ok"  # the server goes on


def test_a_frame_of_exactly_the_maximum_is_accepted(server, connect):
    base = pack({"id": 9, "op": "health", "pad": ""})
    pad = "x" * (MAX_FRAME - len(base) - 4)  # a str of 256 .. 65535 bytes takes 2 more header bytes (str16)
    payload = pack({"id": 9, "op": "health", "pad": pad})
    assert len(payload) == MAX_FRAME
    c = connect(server)
    c.send_raw(frame(payload))
    assert c.recv() == {"id": 9, "ok": True, "status": "ok", "version": VERSION}


def test_frame_timeout_closes_the_connection(token_server, connect):
    c = connect(token_server)
    c.send_raw(frame(pack({"id": 1, "op": "health"}))[:6])  # a frame begun, never finished
    assert error_of(c.recv())[:2] == (0, "frame_timeout")  # waits ~0.5 s for the server's timer
    c.expect_eof()


def test_limits_deadline_and_connections(tmp_path_factory, connect):
    # A deadline of 1 ns expires before any request starts; one connection at most.
    with running(tmp_path_factory, "--max-connections", "1", "--deadline-ms", "0.000001") as srv:
        a = connect(srv)
        rid, code, _ = error_of(a.call({"id": 11, "op": "health"}))
        assert (rid, code) == (11, "deadline_exceeded")
        b = connect(srv)  # a is held: the limit is reached
        assert error_of(b.recv())[:2] == (0, "too_many_connections")
        b.expect_eof()
        assert error_of(a.call({"id": 12, "op": "decide", "event": WORKED_EVENT}))[1] == "deadline_exceeded"


# -- the admin token and reload


def test_admin_ops_need_the_token(token_server, connect):
    c = connect(token_server)
    for rid, req in enumerate(
        [
            {"op": "stats"},
            {"op": "stats", "token": "wrong"},
            {"op": "reload"},
            {"op": "reload", "rules": "rules: []\n", "token": None},
        ],
        start=1,
    ):
        assert error_of(c.call({"id": rid, **req}))[:2] == (rid, "unauthorized")
    # health never needs it; the connection is still usable; nothing was reloaded.
    assert c.result({"id": 10, "op": "health"})["version"] == VERSION
    stats = c.result({"id": 11, "op": "stats", "token": TOKEN})["stats"]
    assert stats["version"] == VERSION and stats["server"]["errors"]["unauthorized"] >= 4


def test_reload(token_server, connect):
    c = connect(token_server)
    text = RULES.read_text()
    broken = {
        "broken YAML": "version: x\nrules: [\n",
        "undeclared name": text.replace("withdrawals_1h > 5", "withdrawls_1h > 5"),
    }
    for rid, rules in enumerate(broken.values(), start=1):
        _, code, message = error_of(c.call({"id": rid, "op": "reload", "rules": rules, "token": TOKEN}))
        assert code == "bad_rules"
        assert re.search(r":\d+:\d+", message), message  # file:line:col
        assert c.result({"id": 10, "op": "health"})["version"] == VERSION  # the old rules stay
    new = text.replace(f"version: {VERSION}", "version: conformance-2")
    try:
        assert c.result({"id": 20, "op": "reload", "rules": new, "token": TOKEN}) == {
            "id": 20, "ok": True, "version": "conformance-2",
        }  # fmt: skip
        assert c.result({"id": 21, "op": "health"})["version"] == "conformance-2"
        d = c.result({"id": 22, "op": "evaluate", "event": withdrawal("u-reload", "addr-reload")})["decision"]
        assert d["version"] == "conformance-2" and d["rules"] == ["first_time_address"]
    finally:
        # Without rules: the server re-reads its own file.
        resp = c.call({"id": 23, "op": "reload", "token": TOKEN})
    assert resp == {"id": 23, "ok": True, "version": VERSION}
    assert c.result({"id": 24, "op": "health"})["version"] == VERSION


# -- several workers; shutdown


def test_several_workers_share_rules_and_counters(tmp_path_factory, connect):
    with running(tmp_path_factory, "--workers", "2") as srv:
        by_pid: dict[int, Conn] = {}
        for rid in range(200):  # the kernel spreads connections: find one on each worker
            c = connect(srv)
            by_pid.setdefault(c.result({"id": rid, "op": "stats"})["stats"]["server"]["pid"], c)
            if len(by_pid) == 2:
                break
        assert len(by_pid) == 2, "every connection went to one worker"
        a, b = by_pid.values()
        event = withdrawal("u-workers", "addr-workers")
        assert a.result({"id": 1, "op": "decide", "event": event})["decision"]["rules"] == ["first_time_address"]
        assert b.result({"id": 2, "op": "evaluate", "event": event})["decision"]["rules"] == []  # counted for both
        new = RULES.read_text().replace(f"version: {VERSION}", "version: workers-2")
        assert a.result({"id": 3, "op": "reload", "rules": new})["version"] == "workers-2"
        assert b.result({"id": 4, "op": "health"})["version"] == "workers-2"
        assert b.result({"id": 5, "op": "evaluate", "event": event})["decision"]["version"] == "workers-2"


def test_sigterm_closes_connections_and_exits_0(fresh_server, connect):
    c = connect(fresh_server)
    assert c.result({"id": 1, "op": "health"})["status"] == "ok"
    fresh_server.proc.send_signal(signal.SIGTERM)
    c.expect_eof()  # an idle connection is closed (FIN, not a reset)
    assert fresh_server.proc.wait(timeout=30) == 0
    with pytest.raises(ConnectionRefusedError):
        connect(fresh_server)


def test_requests_before_an_oversized_frame_are_answered_first(server, connect):
    # A decide and an oversized prefix in one write: the decide is answered
    # (and counted), then the closing error, then the end of the stream.
    event = withdrawal("u-unanswered", "addr-unanswered")
    c = connect(server)
    c.send_raw(frame(pack({"id": 1, "op": "decide", "event": event})) + struct.pack(">I", MAX_FRAME + 1))
    first, closing = c.recv(), c.recv()
    assert first["id"] == 1 and first["ok"]
    assert closing["id"] == 0 and closing["error"]["code"] == "frame_too_large"
    c.expect_eof()
    after = connect(server).result({"id": 2, "op": "evaluate", "event": event})["decision"]
    assert after["rules"] == []  # the address was counted: no longer a first-time address
