"""Huge pages for the counter region: which mount holds a state file,
when `fraudcore serve` tells the operator, and what stats() reports, on
real tmpfs mounts where this process may make them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fraudcore import Engine
from fraudcore.server.hugepages import huge_page_hint, mount_of

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from serverproc import ServerProc  # noqa: E402

MOUNTS = """\
/dev/vda1 / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /dev/shm tmpfs rw,nosuid,nodev 0 0
tmpfs /run/fc tmpfs rw,relatime,size=8388608k,huge=advise 0 0
tmpfs /run/fc/inner tmpfs rw,relatime,huge=never 0 0
tmpfs /run/fc\\040two tmpfs rw,relatime,huge=within_size 0 0
tmpfs /runaway tmpfs rw 0 0
"""


@pytest.mark.parametrize("path, point, fstype", [
    ("/var/lib/x", "/", "ext4"),
    ("/dev/shm", "/dev/shm", "tmpfs"),
    ("/run/fc/state", "/run/fc", "tmpfs"),            # the longest mount point above it...
    ("/run/fc/inner/a/b", "/run/fc/inner", "tmpfs"),  # ...mounted inside another
    ("/run/fc two/s", "/run/fc two", "tmpfs"),       # an escaped space
    ("/run/fcx", "/", "ext4"),                       # a prefix of the name is not a parent
    ("/runaway/s", "/runaway", "tmpfs"),
])
def test_mount_of_a_path(path, point, fstype):
    found = mount_of(path, MOUNTS)
    assert found is not None and found[:2] == (point, fstype)


def test_the_last_of_two_mounts_on_one_point_holds_it():
    found = mount_of("/m/x", "tmpfs /m tmpfs rw 0 0\ntmpfs /m tmpfs rw,huge=advise 0 0\n")
    assert found == ("/m", "tmpfs", ["rw", "huge=advise"])


def test_hint_only_for_a_tmpfs_without_huge_pages(tmp_path):
    mounts = tmp_path / "mounts"
    root = str(tmp_path.resolve())
    mounts.write_text(f"/dev/vda1 / ext4 rw 0 0\n"
                      f"tmpfs {root}/plain tmpfs rw 0 0\n"
                      f"tmpfs {root}/never tmpfs rw,huge=never 0 0\n"
                      f"tmpfs {root}/huge tmpfs rw,huge=within_size 0 0\n")
    for d in ("plain", "never", "huge", "disk"):
        (tmp_path / d).mkdir()
    plain = huge_page_hint(str(tmp_path / "plain" / "s.state"), str(mounts))
    assert plain is not None and "huge=never" in plain and f"{root}/plain" in plain
    assert huge_page_hint(str(tmp_path / "never" / "s.state"), str(mounts)) is not None
    assert huge_page_hint(str(tmp_path / "huge" / "s.state"), str(mounts)) is None
    assert huge_page_hint(str(tmp_path / "disk" / "s.state"), str(mounts)) is None
    assert huge_page_hint(str(tmp_path / "plain" / "s.state"), str(tmp_path / "missing")) is None


RULES = """
version: hp
time: ts
fields: {user_id: string, ts: int}
counters:
  n: {agg: count, by: user_id, window: 1h}
rules:
  - id: many
    when: n > 3
"""


def thp_enabled() -> bool:
    try:
        return "[never]" not in Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return False


@pytest.fixture
def tmpfs(tmp_path):
    """Mount tmpfs at tmp_path/<name> with the given huge= option (needs
    the right to mount: root in CI; skipped elsewhere)."""
    made = []

    def mount(name: str, huge: str) -> Path:
        point = tmp_path / name
        point.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=256m,huge={huge}", "tmpfs", str(point)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        made.append(point)
        return point

    yield mount
    for point in made:
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.mark.skipif(os.geteuid() != 0 or not thp_enabled(), reason="mounting a tmpfs needs root, and THP on")
def test_a_state_on_a_huge_tmpfs_is_in_huge_pages_and_on_a_plain_one_is_not(tmpfs):
    huge, plain = tmpfs("huge", "advise"), tmpfs("plain", "never")
    sizes = {}
    for point in (huge, plain):
        state = str(point / "s.state")
        e = Engine.from_text(RULES, state=state, capacity=1 << 16, prefault=True)
        try:
            st = e.stats()
            assert e.decide({"user_id": "u", "ts": 1_764_806_400_000}).action == "allow"
            sizes[point.name] = (st["memory_bytes"], st["huge_page_bytes"])
        finally:
            e.close()
        assert (huge_page_hint(state) is None) == (point is huge)
    # 64k keys x 576 bytes: tens of 2 MiB pages; the region's ends may stay small.
    assert sizes["huge"][1] >= sizes["huge"][0] // 2
    assert sizes["plain"][1] == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_tells_when_its_state_lies_on_a_tmpfs_without_huge_pages(tmpfs, workers):
    said = {}
    for point in (tmpfs("huge", "advise"), tmpfs("plain", "never")):
        with ServerProc("--state", str(point / "s.state"), "--workers", workers, "--capacity", "1024") as srv:
            srv.connect().close()
        said[point.name] = srv.errors()
    assert "tmpfs mounted with huge=never" in said["plain"] and "plain" in said["plain"]
    assert "huge=" not in said["huge"]


def test_private_memory_reports_its_huge_pages():
    e = Engine.from_text(RULES, capacity=1 << 16, prefault=False)
    try:
        lazy = e.stats()
        assert lazy["huge_page_bytes"] is not None and 0 <= lazy["huge_page_bytes"] <= lazy["memory_bytes"]
    finally:
        e.close()
