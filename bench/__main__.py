"""``python -m bench [suite ...] [--quick] [--out bench/results]``

Runs the named suites (default: all), prints a table per suite, and writes
``<out>/<suite>-<UTC date>.json`` (machine + results), a copy as
``<out>/latest-<suite>.json`` and a Markdown table ``<out>/<suite>.md``.
``--quick`` runs a smaller version of each suite (a minute or less) whose files carry a
``-quick`` suffix, so a quick run never replaces the record of a full one.
While a suite runs, its progress is one line on stderr (bench/progress.py).
A suite is a module with ``run(quick, log, out) -> dict`` (JSON-serialisable;
``out``: where it may write plots) and ``markdown(result, machine) -> str``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import sys
from pathlib import Path

# One BLAS thread: numpy (imported by fraudcore) must not spin threads on the
# other core while single-core timings run. Set before numpy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from . import cel_suite, engine_suite, load_suite, machine, micro_suite, peers_suite, sweep_suite  # noqa: E402
from .progress import Progress  # noqa: E402

SUITES = {
    "micro": micro_suite,
    "cel": cel_suite,
    "engine": engine_suite,
    "load": load_suite,
    "peers": peers_suite,
    "sweep": sweep_suite,
}
DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None, prog: str = "python -m bench") -> int:
    ap = argparse.ArgumentParser(prog=prog, description="fraudcore benchmarks")
    ap.add_argument("suites", nargs="*", metavar="suite", help=f"suites to run (default: all): {', '.join(SUITES)}")
    ap.add_argument("--quick", action="store_true", help="a smaller run (a minute or less a suite), results suffixed -quick")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"results directory (default: {DEFAULT_OUT})")
    args = ap.parse_args(argv)
    unknown = [s for s in args.suites if s not in SUITES]
    if unknown:
        ap.error(f"unknown suite(s) {', '.join(unknown)}; available: {', '.join(SUITES)}")
    names = args.suites or list(SUITES)
    args.out.mkdir(parents=True, exist_ok=True)

    # SIGTERM unwinds like Ctrl-C, so the suites' finally blocks stop the
    # servers they started and remove their state files.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    log = Progress()
    for k, name in enumerate(names, 1):
        before = machine.describe()
        log.start(name, k, len(names))
        try:
            result = SUITES[name].run(quick=args.quick, log=log, out=args.out)  # out: where a suite writes its plots
        finally:
            log.finish()
        after_load = machine.load_average()
        doc = {"machine": {**before, "load_average_after": after_load}, **result}
        tag = f"{name}-quick" if args.quick else name
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = args.out / f"{tag}-{stamp}.json"
        path.write_text(json.dumps(doc, indent=2) + "\n")
        shutil.copyfile(path, args.out / f"latest-{tag}.json")
        table = SUITES[name].markdown(result, doc["machine"])
        (args.out / f"{tag}.md").write_text(table)
        print(table)
        log(f"wrote {path}, {args.out / f'latest-{tag}.json'}, {args.out / f'{tag}.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
