"""A description of the machine and software a benchmark ran on."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["describe", "load_average", "summary"]

# What the measured code runs on (the native build, the server's loop and
# wire format) and what measures it (pytest-benchmark drives the micro suite).
_PACKAGES = ("fraudcore", "numpy", "Cython", "msgspec", "uvloop", "PyYAML", "pytest-benchmark")
_ROOT = Path(__file__).resolve().parent.parent


def _cpuinfo() -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"model": platform.processor() or platform.machine()}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and "model" not in out:
            out["model"] = value
        elif key == "cpu MHz" and "mhz" not in out:
            out["mhz"] = float(value)
        elif key == "flags" and "flags" not in out:
            flags = set(value.split())
            out["flags"] = sorted(flags & {"avx", "avx2", "avx512f", "sse4_2", "bmi2", "popcnt", "hypervisor"})
    return out


def _memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _git() -> dict[str, Any]:
    """The checkout's commit, and whether tracked files differ from it
    (None when unknown). GIT_OPTIONAL_LOCKS=0: describing a run must never
    take the index lock from under a commit."""

    def run(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", *args], cwd=_ROOT, capture_output=True, text=True, timeout=5,
                               env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"})
        except (OSError, subprocess.TimeoutExpired):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    status = run("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": run("rev-parse", "HEAD"), "git_dirty": None if status is None else bool(status)}


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def describe() -> dict[str, Any]:
    """CPU, cores, memory, load, OS, Python, package versions, git commit (and
    whether tracked files differ from it: ``git_dirty``, None when unknown), date."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        from fraudcore import _native

        native = _native.vm is not None
    except Exception:  # noqa: BLE001 - describing, not failing
        native = None
    return {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": _cpuinfo(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "memory_bytes": _memory_bytes(),
        "load_average": load_average(),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "python_build": " ".join((*platform.python_build(), platform.python_compiler())),
        "python_executable": sys.executable,
        "packages": {name: _version(name) for name in _PACKAGES},
        "native_extension": native,
        "no_extensions_env": os.environ.get("FRAUDCORE_NO_EXTENSIONS"),
        **_git(),
    }


if __name__ == "__main__":
    import json

    print(json.dumps(describe(), indent=2))


def summary(machine: dict[str, Any]) -> str:
    """One line for a Markdown result: when, on what, at which commit."""
    cpu = machine.get("cpu", {})
    return (
        f"{machine['date']} · {cpu.get('model', '?')} · {machine['cores']} cores · "
        f"{(machine['memory_bytes'] or 0) / 2**30:.1f} GiB · load {machine['load_average']} → "
        f"{machine.get('load_average_after')} · {machine['python']} · fraudcore {machine['packages'].get('fraudcore')} · "
        f"commit {str(machine.get('git_commit'))[:12]}{' (dirty)' if machine.get('git_dirty') else ''}"
    )
