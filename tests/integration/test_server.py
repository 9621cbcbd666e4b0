"""`fraudcore serve` for real: a server process on loopback, driven by the
package's clients and by raw sockets, checked against the in-process Engine."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import socket
import struct
import sys
import time
from pathlib import Path

import msgspec
import pytest

import fraudcore
from fraudcore.synth import ExchangeStream
from fraudcore.wire import FrameReader, Response, append_frame

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from serverproc import RULES, ServerProc, rss_bytes  # noqa: E402

ENC = msgspec.msgpack.Encoder()
DEC = msgspec.msgpack.Decoder(Response)


def events(n: int, seed: int = 3, users: int = 300) -> list[dict]:
    return ExchangeStream(seed=seed, users=users).events(n)


def normal(d) -> dict:
    """A decision as plain data, NaN made comparable, from either side."""
    if isinstance(d, msgspec.Struct):
        d = msgspec.structs.asdict(d)
    else:
        d = fraudcore.decision.RuleMeta.as_dict(d)
    feats = {k: ("nan" if isinstance(v, float) and math.isnan(v) else v) for k, v in d["features"].items()}
    return {**d, "features": feats, "errors": [list(e) for e in d["errors"]]}


def frame(msg: dict) -> bytes:
    out = bytearray()
    append_frame(out, ENC, msg)
    return bytes(out)


def read_responses(sock: socket.socket, n: int) -> list[Response]:
    reader, got = FrameReader(64 << 20), []
    while len(got) < n:
        data = sock.recv(1 << 16)
        if not data:
            raise ConnectionError(f"closed after {len(got)} of {n} responses")
        got.extend(DEC.decode(f) for f in reader.feed(data))
    return got


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1 << 16) == b""
    except ConnectionResetError:
        return True


@pytest.fixture(scope="module")
def server():
    with ServerProc() as s:
        yield s


# -- decisions


def test_decide_matches_the_in_process_engine():
    """The same stream, decided over TCP (one call each, pipelined, batched)
    and in process, gives the same decisions: state included."""
    evs = events(1500)
    engine = fraudcore.Engine.from_file(RULES)
    expected = [normal(engine.decide(e)) for e in evs]
    assert sum(d["action"] != "allow" for d in expected) > 0  # the stream exercises the rules
    with ServerProc() as s, fraudcore.Client(port=s.port) as c:
        got = [normal(c.decide(e)) for e in evs[:500]]
        got += [normal(d) for d in c.decide_pipelined(evs[500:1000], window=50)]
        got += [normal(d) for d in c.decide_batch(evs[1000:])]
    assert got == expected


def test_evaluate_and_ingest(server):
    evs = events(50, seed=11)
    fresh = fraudcore.Engine.from_file(RULES)
    with fraudcore.Client(port=server.port) as c:
        for e in evs:
            assert normal(c.evaluate(e)) == normal(fresh.evaluate(e))
            assert c.ingest(e) is None
        assert c.health() == "ok"


def test_async_client_pipelines_concurrent_calls(server):
    evs = events(400, seed=5)
    fresh = fraudcore.Engine.from_file(RULES)

    async def main():
        async with fraudcore.AsyncClient(port=server.port) as c:
            first = await asyncio.gather(*(c.evaluate(e) for e in evs))
            batch = await c.decide_batch(evs[:10])
            return first, batch, await c.health()

    got, batch, health = asyncio.run(main())
    assert [normal(d) for d in got] == [normal(fresh.evaluate(e)) for e in evs]
    assert len(batch) == 10 and health == "ok"


def test_async_client_reconnects_after_the_server_restarts():
    first = ServerProc()
    port = first.port

    async def main():
        c = fraudcore.AsyncClient(port=port, reconnect_attempts=1)
        assert await c.health() == "ok"
        first.stop()
        with pytest.raises(ConnectionError):
            await c.health()  # nothing listens: the connection attempts fail
        with ServerProc("--port", str(port)):
            assert await c.health() == "ok"  # the next call reconnects by itself
            await c.close()

    asyncio.run(main())


def test_blocking_client_reconnects(server):
    c = fraudcore.Client(port=server.port)
    assert c.health() == "ok"
    c._sock.close()  # the connection breaks under the client
    with pytest.raises(OSError):
        c.health()
    assert c.health() == "ok"  # a new connection
    c.close()


# -- workers sharing one region


def test_workers_share_counters_and_rules(tmp_path):
    state = str(tmp_path / "state")
    ts = 1_764_806_400_000
    with ServerProc("--workers", "2", "--state", state) as s:
        clients, pids = [], set()
        while len(pids) < 2 and len(clients) < 64:  # SO_REUSEPORT spreads connections by hash
            c = fraudcore.Client(port=s.port)
            pids.add(c.stats()["server"]["pid"])
            clients.append(c)
        assert len(pids) == 2, "connections never reached the second worker"
        withdrawal = {"type": "withdrawal", "user_id": "u-shared", "amount": 10.0, "currency": "USD", "asset": "BTC",
                      "device_id": "d1", "ip": "10.0.0.1", "dest_address": "addr-1"}
        for i in range(40):
            clients[i % len(clients)].ingest({**withdrawal, "ts": ts + i})
        # Every worker counted into the same region: exact.
        engine = fraudcore.Engine.from_file(RULES, state=state, follow=True)
        assert engine.counter("withdrawals_1h", user_id="u-shared", at=ts + 39) == 40
        engine.close()
        # A reload sent to one worker switches both.
        text = RULES.read_text()
        new = text.replace("version:", "version: reloaded-", 1) if "version:" in text else text
        version = clients[0].reload(new)
        assert version.startswith("reloaded-")
        for c in clients:
            assert c.health() == "ok"
            assert c.decide({**withdrawal, "ts": ts + 100}).version == version
        for c in clients:
            c.close()


# -- stopping and restarting


def test_sigterm_answers_in_flight_requests_then_exits():
    evs = events(6000, seed=9)
    with ServerProc("--max-frame", str(16 << 20)) as s:
        sock = s.connect(timeout=30)
        sock.sendall(frame({"id": 77, "op": "decide_batch", "events": evs}))
        os.kill(s.pid, signal.SIGTERM)  # while the batch is read or decided
        (resp,) = read_responses(sock, 1)
        assert resp.ok and resp.id == 77 and len(resp.decisions) == len(evs)
        assert closed_by_peer(sock)
        assert s.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_counters_survive_a_restart(tmp_path, sig):
    state = str(tmp_path / "state")
    ts = 1_764_806_400_000
    w = {"type": "withdrawal", "user_id": "u-restart", "amount": 5.0, "device_id": "d", "ip": "10.1.1.1", "dest_address": "a"}
    with ServerProc("--state", state) as s, fraudcore.Client(port=s.port) as c:
        for i in range(25):
            c.ingest({**w, "ts": ts + i})
        code = s.stop(sig)
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
    with ServerProc("--state", state) as s, fraudcore.Client(port=s.port) as c:
        d = c.evaluate({**w, "ts": ts + 30})  # a dry run: counts as if this were the 26th
        engine = fraudcore.Engine.from_file(RULES, state=state, follow=True)
        assert engine.counter("withdrawals_1h", user_id="u-restart", at=ts + 30) == 25
        c.ingest({**w, "ts": ts + 31})
        assert engine.counter("withdrawals_1h", user_id="u-restart", at=ts + 31) == 26
        engine.close()
    assert "withdrawal_velocity" in d.rules or d.features.get("withdrawals_1h", 26) == 26


# -- admin


def test_admin_ops_need_the_token():
    with ServerProc("--token", "s3cret") as s:
        with fraudcore.Client(port=s.port) as anon:
            assert anon.health() == "ok"  # not an admin op
            for call in (anon.stats, anon.reload):
                with pytest.raises(fraudcore.ServerError) as e:
                    call()
                assert e.value.code == "unauthorized"
        with fraudcore.Client(port=s.port, token="s3cret") as admin:
            assert admin.stats()["server"]["pid"] == s.pid
            before = admin.health()
            with pytest.raises(fraudcore.ServerError) as e:
                admin.reload("rules: [oops")
            assert e.value.code == "bad_rules" and "line" in e.value.message
            assert admin.health() == before
            assert admin.reload() == fraudcore.Engine.from_file(RULES).version  # re-reads the file


# -- limits and bad input: each gets an error or a closed connection, and the
# server keeps serving everyone else.


@pytest.fixture(scope="module")
def strict():
    with ServerProc("--max-frame", "65536", "--frame-timeout", "1", "--idle-timeout", "2") as s:
        yield s


def still_serving(s: ServerProc) -> None:
    with fraudcore.Client(port=s.port, timeout=5) as c:
        assert c.health() == "ok"


def test_length_prefix_of_4_gib(strict):
    sock = strict.connect()
    sock.sendall(b"\xff\xff\xff\xff" + b"x" * 100)
    (resp,) = read_responses(sock, 1)
    assert not resp.ok and resp.id == 0 and resp.error.code == "frame_too_large"
    assert "4294967295" in resp.error.message
    assert closed_by_peer(sock)
    still_serving(strict)


@pytest.mark.parametrize(
    "payload, code, names",
    [
        (b"\xc1", "bad_frame", "MessagePack"),  # 0xc1 is never used
        (b"\x92\x01", "bad_frame", "MessagePack"),  # truncated inside the frame
        (msgspec.msgpack.encode([1, 2]), "bad_request", "map"),
        (msgspec.msgpack.encode({"id": 5, "op": "decide", "event": 3}), "bad_request", "event"),
        (msgspec.msgpack.encode({"id": 6, "op": "decide_batch", "events": [{"a": 1}, 2]}), "bad_request", "events[1]"),
        (msgspec.msgpack.encode({"id": 7, "op": "launch"}), "unknown_op", "launch"),
        (msgspec.msgpack.encode({"id": -3, "op": "health"}), "bad_request", "id"),
        (msgspec.msgpack.encode({"op": "health"}), "bad_request", "id"),
    ],
)
def test_bad_requests_get_an_error_and_the_connection_goes_on(strict, payload, code, names):
    sock = strict.connect()
    sock.sendall(struct.pack(">I", len(payload)) + payload + frame({"id": 99, "op": "health"}))
    bad, ok = read_responses(sock, 2)
    assert not bad.ok and bad.error.code == code and names in bad.error.message
    raw = msgspec.msgpack.decode(payload) if code != "bad_frame" else None
    assert bad.id == (raw["id"] if isinstance(raw, dict) and raw.get("id", -1) >= 0 else 0)
    assert ok.ok and ok.id == 99 and ok.status == "ok"
    sock.close()


def test_wrong_field_types_in_an_event_are_decided_with_errors(strict):
    with fraudcore.Client(port=strict.port) as c:
        d = c.evaluate({"type": "withdrawal", "user_id": 12, "amount": "lots", "ts": 1_764_806_400_000})
    assert d.errors  # the rules that read the mistyped fields report it; the rest decide
    assert all(isinstance(rule, str) and msg for rule, msg in d.errors)


def test_client_that_vanishes_mid_frame(strict):
    for cut in (2, 4, 30):
        sock = strict.connect()
        sock.sendall(frame({"id": 1, "op": "decide", "event": events(1)[0]})[:cut])
        sock.close()
    still_serving(strict)


def test_slow_client_one_byte_at_a_time(strict):
    sock = strict.connect()
    data = frame({"id": 1, "op": "health"})
    started = time.monotonic()
    got = b""
    for b in data[:-1]:
        try:
            sock.sendall(bytes([b]))
        except OSError:
            break
        still_serving(strict)  # everyone else is served meanwhile
        time.sleep(0.3)
        sock.settimeout(0.01)
        try:
            got += sock.recv(4096)
        except socket.timeout:
            pass
        if got:
            break
    sock.settimeout(5)
    (resp,) = read_responses_from(sock, got)
    assert not resp.ok and resp.error.code == "frame_timeout"
    assert time.monotonic() - started < 5
    assert closed_by_peer(sock)


def read_responses_from(sock: socket.socket, head: bytes) -> list[Response]:
    reader = FrameReader(1 << 20)
    got = [DEC.decode(f) for f in reader.feed(head)]
    while not got:
        data = sock.recv(4096)
        assert data, "closed without an error response"
        got = [DEC.decode(f) for f in reader.feed(data)]
    return got


def test_idle_connection_is_closed(strict):
    sock = strict.connect()
    sock.settimeout(10)
    started = time.monotonic()
    assert closed_by_peer(sock)
    assert 1.5 < time.monotonic() - started < 8


def test_too_many_connections():
    with ServerProc("--max-connections", "3") as s:
        held = [s.connect() for _ in range(3)]
        for h in held:  # each is served
            h.sendall(frame({"id": 1, "op": "health"}))
            assert read_responses(h, 1)[0].ok
        extra = s.connect()
        (resp,) = read_responses(extra, 1)
        assert resp.error.code == "too_many_connections" and "3" in resp.error.message
        assert closed_by_peer(extra)
        held.pop().close()
        time.sleep(0.2)
        still_serving(s)


def test_request_deadline():
    """Requests that waited in the server past the deadline are answered
    deadline_exceeded, not executed: here the one queued behind a batch."""
    with ServerProc("--deadline-ms", "250", "--max-frame", str(64 << 20)) as s:
        sock = s.connect(timeout=60)
        sock.sendall(frame({"id": 0, "op": "health"}))      # the connection is served before the timed part
        assert read_responses(sock, 1)[0].ok
        # Decoding and deciding 120,000 events takes several times the 250 ms
        # (0.8 s on a quiet machine), and the ingest waits behind it: the
        # batch's last bytes and the ingest go in one small send after a
        # pause, so one read completes both. The batch itself waits only for
        # that read to be split into frames.
        batch = frame({"id": 1, "op": "decide_batch", "events": events(120_000)})
        sock.sendall(batch[:-64])
        time.sleep(0.5)
        sock.sendall(batch[-64:] + frame({"id": 2, "op": "ingest", "event": events(1)[0]}))
        batch, late = read_responses(sock, 2)
        assert batch.ok and len(batch.decisions) == 120_000
        assert late.id == 2 and late.error.code == "deadline_exceeded"


def test_pipelining_without_reading_is_bounded():
    """A client that sends and never reads: the server stops reading it
    (backpressure), its memory stays bounded, and others are served."""
    with ServerProc() as s:
        chunk = b"".join(frame({"id": i, "op": "decide", "event": e}) for i, e in enumerate(events(2000, seed=4)))
        sock = s.connect()
        sock.setblocking(False)
        base = rss_bytes(s.pid)
        sent, stalled_since, deadline = 0, None, time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                sent += sock.send(chunk[sent % len(chunk) :])  # the stream: chunk after chunk
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 1.0:
                    break  # the server no longer takes our bytes
                time.sleep(0.01)
        assert stalled_since is not None, f"still accepting after {sent} bytes"
        assert sent < 64 << 20
        assert rss_bytes(s.pid) - base < 64 << 20
        still_serving(s)
        sock.close()
        still_serving(s)


def test_workers_share_a_reload_of_counterless_rules(tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    text = readme.split("```yaml\n", 1)[1].split("```", 1)[0]  # the README's rules: no counters
    assert "counters:" not in text
    rules = tmp_path / "rules.yaml"
    rules.write_text(text)
    with ServerProc("--workers", "2", rules=rules) as s:
        clients, pids = [], set()
        while len(pids) < 2 and len(clients) < 64:
            c = fraudcore.Client(port=s.port)
            pids.add(c.stats()["server"]["pid"])
            clients.append(c)
        assert len(pids) == 2
        version = clients[0].reload(text.replace("version: 2026-12-04.1", "version: second"))
        assert version == "second"
        event = {"type": "withdrawal", "user_id": "u", "amount": 1.0, "country": "KP", "account_age_days": 1, "ts": 1}
        for c in clients:
            d = c.decide(event)
            assert (d.version, d.rules) == ("second", ["sanctioned_country"])
            c.close()


def test_a_response_larger_than_the_request_limit(server):
    """Responses are not bound by --max-frame: 1,000 empty events make a
    small request and a large answer (every rule reports its missing fields)."""
    with fraudcore.Client(port=server.port) as c:
        ds = c.decide_batch([{}] * 1000)
        assert len(ds) == 1000 and all(d.errors for d in ds)
        assert len(msgspec.msgpack.encode(ds)) > 1 << 20
        assert c.health() == "ok"


def test_tuned_file_sets_defaults_and_flags_win(tmp_path):
    tuned = tmp_path / "tuned.json"
    tuned.write_text('{"serve": {"gc_mode": "off", "gc_thresholds": [5000, 20, 20], "max_connections": 2, "capacity": 4096},'
                     ' "evidence": {"ignored": true}}')
    with ServerProc("--tuned", str(tuned), "--max-connections", "7") as s, fraudcore.Client(port=s.port) as c:
        server = c.stats()["server"]
    cfg = server["config"]
    assert (cfg["gc_mode"], cfg["capacity"], cfg["max_connections"]) == ("off", 4096, 7)
    assert server["gc"]["enabled"] is False and server["gc"]["thresholds"] == [5000, 20, 20]


@pytest.mark.parametrize(
    "content, says",
    [("not json", "--tuned"), ('{"serve": {"port": 1}}', "not tunable here: port"), ('{"serve": {"gc_mode": "sometimes"}}', "gc_mode")],
)
def test_bad_tuned_file(tmp_path, content, says):
    import subprocess

    tuned = tmp_path / "tuned.json"
    tuned.write_text(content)
    r = subprocess.run([sys.executable, "-m", "fraudcore.cli", "serve", "--rules", str(RULES), "--tuned", str(tuned)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr


def test_binds_loopback_unless_told_otherwise(server):
    """The listening socket is 127.0.0.1:port, not 0.0.0.0 (from /proc/net/tcp)."""
    listening = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        addr, port = local.split(":")
        if state == "0A" and int(port, 16) == server.port:  # 0A: LISTEN
            listening.append(addr)
    assert listening == ["0100007F"]  # 127.0.0.1, little-endian hex


def test_workers_exit_when_the_supervisor_is_killed(tmp_path):
    """SIGKILL on the supervisor: its workers get SIGTERM from the kernel,
    drain and exit, and the port is free again."""
    s = ServerProc("--workers", "2", "--state", str(tmp_path / "state"))
    children = [int(p) for p in Path(f"/proc/{s.pid}/task/{s.pid}/children").read_text().split()]
    workers = [p for p in children if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
    assert len(workers) == 2
    with fraudcore.Client(port=s.port) as c:
        assert c.health() == "ok"
    s.stop(signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() and "Z" not in _state(p) for p in workers):
        time.sleep(0.1)
    assert not any(Path(f"/proc/{p}").exists() and "Z" not in _state(p) for p in workers)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", s.port), timeout=2).close()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "Z"
