"""The ``fraudcore`` command line (SPEC §3)."""

from __future__ import annotations

import argparse
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
