"""Property-based fuzzing of the frame splitting and the request decoding of
the server, in process: whatever the bytes, one well-formed response per
frame, never an exception."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudcore.engine import Engine
from fraudcore.server.config import ServerConfig
from fraudcore.server.worker import Worker
from fraudcore.wire import OPS, Code, FrameReader, Response, append_frame

RULES = Path(__file__).resolve().parents[2] / "examples" / "rules.yaml"
CODES = {v for k, v in vars(Code).items() if k.isupper()}
DEC = msgspec.msgpack.Decoder(Response)


@given(
    payloads=st.lists(st.binary(max_size=300), max_size=20),
    cuts=st.lists(st.integers(0, 10_000), max_size=30),
)
def test_frames_survive_any_split_of_the_stream(payloads, cuts):
    stream = b"".join(len(p).to_bytes(4, "big") + p for p in payloads)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    reader = FrameReader(max_frame=300)
    got = []
    for a, b in zip(points, points[1:]):
        got += reader.feed(stream[a:b])  # views, kept: later feeds must not overwrite them
    assert [bytes(f) for f in got] == payloads
    assert reader.pending == 0


@given(size=st.integers(301, (1 << 32) - 1), split=st.integers(0, 4), before=st.lists(st.binary(max_size=50), max_size=3))
def test_a_length_over_the_limit_ends_the_stream(size, split, before):
    """The frames before it are returned (to be answered); nothing of its
    payload is buffered; nothing after it is read."""
    reader = FrameReader(max_frame=300)
    head = b"".join(len(p).to_bytes(4, "big") + p for p in before) + size.to_bytes(4, "big")
    cut = len(head) - 4 + split
    got = [bytes(f) for f in reader.feed(head[:cut])]
    got += [bytes(f) for f in reader.feed(head[cut:] + b"x" * 10)]
    assert got == before
    assert reader.error is not None and reader.error.size == size and reader.error.limit == 300
    assert reader.pending <= 4
    assert reader.feed(b"\0\0\0\0") == []


@pytest.fixture(scope="module")
def worker():
    return Worker(ServerConfig(rules=str(RULES), token="t"), Engine.from_file(RULES))


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(1 << 63), (1 << 64) - 1), st.floats(), st.text(max_size=20), st.binary(max_size=20)
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
event_like = st.dictionaries(st.sampled_from(["type", "user_id", "amount", "ts", "ip", "device_id", "x"]), values, max_size=6)
requests = st.fixed_dictionaries(
    {"id": values | st.integers(0, (1 << 64) - 1), "op": st.sampled_from(OPS) | values},
    optional={"event": event_like | values, "events": st.lists(event_like, max_size=3) | values, "rules": values, "token": values},
)


def one_response(worker: Worker, payload: bytes) -> Response:
    out = bytearray()
    worker.handle(memoryview(payload), out, received=float("inf"))  # never past its deadline
    frames = FrameReader(1 << 30).feed(bytes(out))
    assert len(frames) == 1 and sum(4 + len(f) for f in frames) == len(out)
    resp = DEC.decode(frames[0])
    if not resp.ok:
        assert resp.error.code in CODES and resp.error.message
    return resp


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=200))
def test_any_bytes_get_one_response(worker, payload):
    one_response(worker, payload)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(req=requests)
def test_any_request_shaped_map_gets_one_response(worker, req):
    if req.get("op") == "reload":
        req["token"] = "wrong"  # keep the rules: a reload is not what this fuzzes
    resp = one_response(worker, msgspec.msgpack.encode(req))
    rid = req["id"]
    if type(rid) is int and 0 <= rid < 1 << 64:
        assert resp.id == rid
    else:
        assert resp.id == 0 and resp.error.code in ("bad_request", "unknown_op")
    if req.get("op") not in OPS:
        assert not resp.ok


def test_deadline_is_checked_before_executing(worker):
    out = bytearray()
    append_frame(out, msgspec.msgpack.Encoder(), {"id": 3, "op": "health"})
    mv = memoryview(bytes(out))[4:]
    res = bytearray()
    worker.handle(mv, res, received=0.0)  # read "at boot": long past any deadline
    resp = DEC.decode(FrameReader().feed(bytes(res))[0])
    assert resp.id == 3 and resp.error.code == "deadline_exceeded"
