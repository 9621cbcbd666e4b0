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


def _serve(args: argparse.Namespace) -> int:
    from fraudcore.server import ServerConfig, serve

    try:
        config = ServerConfig(
            rules=args.rules,
            host=args.host,
            port=args.port,
            workers=args.workers,
            state=args.state,
            token=args.token if args.token is not None else os.environ.get("FRAUDCORE_TOKEN"),
            max_frame=args.max_frame,
            max_connections=args.max_connections,
            idle_timeout=args.idle_timeout,
            frame_timeout=args.frame_timeout,
            deadline_ms=args.deadline_ms,
            drain_timeout=args.drain_timeout,
            capacity=args.capacity,
            prefault=args.prefault,
            loop=args.loop,
        )
    except ValueError as e:
        print(f"fraudcore serve: {e}", file=sys.stderr)
        return 2
    try:
        return serve(config)
    except OSError as e:
        print(f"fraudcore serve: cannot listen on {config.host}:{config.port}: {e.strerror or e}", file=sys.stderr)
        return 1


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
    p.add_argument("--rules", required=True, help="the rules file (YAML)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: loopback only)")
    p.add_argument("--port", type=int, default=7878, help="TCP port (default 7878; 0: any free port)")
    p.add_argument("--workers", type=_positive, default=1, help="worker processes sharing the port and the state (default 1)")
    p.add_argument("--state", help="state region file shared by the workers; counters survive restarts")
    p.add_argument("--token", help="admin token required by stats and reload (default: $FRAUDCORE_TOKEN, else none)")
    p.add_argument("--max-frame", type=_positive, default=1 << 20, help="largest frame payload in bytes (default 1 MiB)")
    p.add_argument("--max-connections", type=_positive, default=1024, help="connections per worker (default 1024)")
    p.add_argument("--idle-timeout", type=float, default=300.0, help="seconds before an idle connection is closed")
    p.add_argument("--frame-timeout", type=float, default=10.0, help="seconds to complete a started frame")
    p.add_argument("--deadline-ms", type=float, default=1000.0, help="requests older than this are not executed")
    p.add_argument("--drain-timeout", type=float, default=10.0, help="seconds SIGTERM waits for connections")
    p.add_argument("--capacity", type=_positive, default=65536, help="keys per counter table")
    p.add_argument("--prefault", action="store_true", help="fault the state region in at start")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop", help="event loop (default uvloop)")
    p.set_defaults(func=_serve)

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


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
