"""The ``fraudcore`` command line (SPEC §3)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from .errors import FraudcoreError, RuleError

__all__ = ["main"]

EXAMPLES = Path(__file__).resolve().parent / "examples"


def _check(args: argparse.Namespace) -> int:
    from .rules.policy import load_policy

    try:
        policy = load_policy(args.rules)
    except RuleError as e:
        for d in e.diagnostics:
            print(d.render(), file=sys.stderr)
        n = len(e.diagnostics)
        print(f"\n{n} error{'s' if n != 1 else ''} in {args.rules}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{args.rules}: {e.strerror or e}", file=sys.stderr)
        return 1
    rf = policy.rules_file
    native = [r for r in policy.rules if r.native]
    print(f"{args.rules}: OK (version {policy.version})")
    print(f"  rules:    {len(policy.rules)} ({len(native)} native, {len(policy.rules) - len(native)} on the reference path)")
    print(f"  fields:   {len(rf.fields)} declared; read by rules: {', '.join(sorted(policy.reads & set(rf.fields))) or '-'}")
    print(f"  counters: {len(rf.counters)}; read by rules: {', '.join(sorted(policy.reads & set(rf.counters))) or '-'}")
    print(f"  lists:    {', '.join(f'{n} ({len(l.values)})' for n, l in rf.lists.items()) or '-'}")
    width = max((len(r.id) for r in policy.rules), default=0)
    for r in policy.rules:
        path = "native" if r.native else "reference: " + "; ".join(r.native_blockers)
        print(f"    {r.id:<{width}}  {r.action:<7} {r.score:>4}  {path}")
        if args.verbose:
            print("      " + r.bytecode.disassemble().replace("\n", "\n      "))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


# `fraudcore serve` flags that map one to one onto ServerConfig fields.
SERVE_FIELDS = ("host", "port", "workers", "state", "max_frame", "max_connections", "idle_timeout", "frame_timeout",
                "deadline_ms", "drain_timeout", "capacity", "prefault", "loop", "nodelay", "sndbuf", "rcvbuf",
                "gc_mode", "gc_thresholds")


def _serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from fraudcore.server import ServerConfig, serve
    from fraudcore.server.config import load_tuned

    try:
        # A --tuned file sets the defaults; flags given on the command line win.
        tuned = load_tuned(args.tuned) if args.tuned else {}
        given = {f: getattr(args, f) for f in SERVE_FIELDS if getattr(args, f) != parser.get_default(f)}
        token = args.token if args.token is not None else os.environ.get("FRAUDCORE_TOKEN")
        config = ServerConfig(rules=args.rules, token=token, **{**tuned, **given})
    except (ValueError, TypeError) as e:
        print(f"fraudcore serve: {e}", file=sys.stderr)
        return 2
    try:
        return serve(config)
    except OSError as e:
        print(f"fraudcore serve: cannot listen on {config.host}:{config.port}: {e.strerror or e}", file=sys.stderr)
        return 1


def _bench(argv: list[str]) -> int:
    try:
        from fraudcore.bench.__main__ import main as bench_main
    except ImportError as e:
        print(f"fraudcore bench: the benchmark harness is not installed ({e}); run it from a source checkout", file=sys.stderr)
        return 1
    return bench_main(argv, prog="fraudcore bench")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fraudcore", description="Real-time fraud decisions from CEL rules.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check", help="compile a rules file, report every error or a summary")
    p.add_argument("rules", help="the rules file (YAML)")
    p.add_argument("-v", "--verbose", action="store_true", help="also print each rule's bytecode")
    p.set_defaults(func=_check)

    p = sub.add_parser("demo", help="run a synthetic exchange event stream through the example rules")
    p.add_argument("--rules", default=str(EXAMPLES / "rules.yaml"), help="rules file (default: the bundled example)")
    p.add_argument("--events", type=_positive, default=200_000, help="number of events (default 200000)")
    p.add_argument("--seed", type=int, default=7, help="generator seed")
    p.set_defaults(func=_demo)

    p = sub.add_parser("serve", help="serve decisions over the binary TCP protocol (docs/protocol.md)")
    serve_parser = p
    p.add_argument("--rules", required=True, help="the rules file (YAML)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: loopback only)")
    p.add_argument("--port", type=int, default=7878, help="TCP port (default 7878; 0: any free port)")
    p.add_argument("--workers", type=_positive, default=1, help="worker processes sharing the port and the state (default 1)")
    p.add_argument("--state", help="state region file shared by the workers; counters survive restarts")
    p.add_argument("--token", help="admin token required by stats and reload (default: $FRAUDCORE_TOKEN, else none)")
    p.add_argument("--tuned", metavar="FILE", help="start with the settings a `fraudcore bench sweep` recommends")
    p.add_argument("--max-frame", type=_positive, default=1 << 20, help="largest frame payload in bytes (default 1 MiB)")
    p.add_argument("--max-connections", type=_positive, default=1024, help="connections per worker (default 1024)")
    p.add_argument("--idle-timeout", type=float, default=300.0, help="seconds before an idle connection is closed")
    p.add_argument("--frame-timeout", type=float, default=10.0, help="seconds to complete a started frame")
    p.add_argument("--deadline-ms", type=float, default=1000.0, help="requests older than this are not executed")
    p.add_argument("--drain-timeout", type=float, default=10.0, help="seconds SIGTERM waits for connections")
    p.add_argument("--capacity", type=_positive, default=65536, help="keys per counter table")
    p.add_argument("--prefault", action="store_true", default=False, help="fault the state region in at start")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop", help="event loop (default uvloop)")
    p.add_argument("--no-nodelay", dest="nodelay", action="store_false", default=True, help="leave Nagle's algorithm on")
    p.add_argument("--sndbuf", type=int, default=0, help="SO_SNDBUF of each connection in bytes (0: the kernel's)")
    p.add_argument("--rcvbuf", type=int, default=0, help="SO_RCVBUF of each connection in bytes (0: the kernel's)")
    p.add_argument("--gc-mode", choices=("freeze", "off", "default"), default="freeze",
                   help="freeze: gc.freeze() after start (default); off: also gc.disable(); default: untouched")
    p.add_argument("--gc-thresholds", type=_thresholds, default=None, metavar="G0,G1,G2", help="gc.set_threshold")
    p.set_defaults(func=lambda a: _serve(a, serve_parser))

    # `bench` hands its arguments to the harness's own parser (see main).
    sub.add_parser("bench", help="the benchmark and tuning harness: `fraudcore bench --help`", add_help=False)

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        return _bench(argv[1:])
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # `fraudcore check ... | head`: the reader left
        sys.stderr.close()
        return 0
    except RuleError as e:
        for d in e.diagnostics:
            print(d.render(), file=sys.stderr)
        return 1
    except FraudcoreError as e:
        print(f"fraudcore: {e}", file=sys.stderr)
        return 1


def _thresholds(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected three non-negative ints G0,G1,G2, got {text!r}")
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
