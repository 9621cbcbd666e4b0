"""Whether a state file's file system can give the counter region huge
pages. The region asks for them (madvise), but a tmpfs gives shared memory
huge pages only when mounted with ``huge=within_size``, ``advise`` or
``always``; the usual ``/dev/shm`` is mounted without, and there every
random access to the counters needs a 4 KiB TLB entry of its own."""

from __future__ import annotations

import os

__all__ = ["huge_page_hint", "mount_of"]

_WITH_HUGE = {"within_size", "advise", "always", "force"}


def _unescape(field: str) -> str:
    # /proc/self/mounts writes space, tab, newline and backslash as octal escapes.
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mount_of(path: str, mounts: str) -> tuple[str, str, list[str]] | None:
    """The (mount point, file system type, options) of the mount holding
    ``path`` (an absolute, resolved path), from the text of /proc/self/mounts:
    the last-mounted of the longest mount points above it."""
    best: tuple[str, str, list[str]] | None = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        point = _unescape(fields[1])
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[0])):
            best = (point, fields[2], fields[3].split(","))
    return best


def huge_page_hint(state: str, mounts_file: str = "/proc/self/mounts") -> str | None:
    """A line for the operator when ``state`` lies on a tmpfs mounted
    without huge pages; None otherwise (another file system, or no way to
    tell)."""
    try:
        with open(mounts_file, encoding="utf-8", errors="replace") as f:
            mounts = f.read()
    except OSError:
        return None
    where = os.path.realpath(os.path.dirname(os.path.abspath(state)))
    found = mount_of(where, mounts)
    if found is None or found[1] != "tmpfs":
        return None
    point, _, options = found
    huge = next((o.partition("=")[2] for o in options if o.startswith("huge=")), "never")
    if huge in _WITH_HUGE:
        return None
    return (f"fraudcore serve: the state {state} lies on a tmpfs mounted with huge={huge} ({point}): its counters "
            "sit in 4 KiB pages. A tmpfs mounted with huge=within_size or huge=advise holds them in 2 MiB pages, "
            "with fewer TLB misses per decision (docs/counters.md).")
