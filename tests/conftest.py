"""Suite-wide test configuration.

* Hypothesis profiles, chosen with ``FRAUDCORE_HYPOTHESIS_PROFILE`` (default
  ``ci``): ``ci`` (no deadline, 200 examples), ``dev`` (quick, 50 examples) and
  ``thorough`` (2,000 examples). None is derandomized: CI explores new inputs
  on every run; a failure prints the blob that reproduces it.
* ``rng``: a seeded ``random.Random`` whose repr shows its seed. A failing test
  that used it reports the seed; ``FRAUDCORE_SEED=<seed>`` replays it.
* ``terminal_report``: a session-wide registry of extra sections printed at
  the end of the run (the CEL conformance table uses it).

The strict settings (``filterwarnings = error``, ``--strict-markers``) live in
pyproject.toml.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", deadline=None, max_examples=200, derandomize=False, print_blob=True)
settings.register_profile("dev", deadline=None, max_examples=50, derandomize=False, print_blob=True)
settings.register_profile(
    "thorough",
    deadline=None,
    max_examples=2_000,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
HYPOTHESIS_PROFILE = os.environ.get("FRAUDCORE_HYPOTHESIS_PROFILE", "ci")
settings.load_profile(HYPOTHESIS_PROFILE)


def pytest_report_header(config: pytest.Config) -> list[str]:
    seed = os.environ.get("FRAUDCORE_SEED")
    return [
        f"hypothesis profile: {HYPOTHESIS_PROFILE} (FRAUDCORE_HYPOTHESIS_PROFILE=ci|dev|thorough)",
        f"rng seed: {seed if seed else 'random per test (set FRAUDCORE_SEED to fix)'}",
    ]


class Rand(random.Random):
    """A ``random.Random`` that remembers its seed and shows it in its repr,
    so a failing assertion or traceback names the seed that reproduces it."""

    def __init__(self, seed: int | None = None):
        self.seed_value = random.SystemRandom().randrange(2**32) if seed is None else seed
        super().__init__(self.seed_value)

    def numpy(self):
        """A NumPy ``Generator`` seeded from the same seed."""
        import numpy as np

        return np.random.default_rng(self.seed_value)

    def __repr__(self) -> str:
        return f"Rand(seed={self.seed_value})"


_SEED_KEY = pytest.StashKey[int]()


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> Rand:
    env = os.environ.get("FRAUDCORE_SEED")
    r = Rand(int(env) if env else None)
    request.node.stash[_SEED_KEY] = r.seed_value
    return r


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    seed = item.stash.get(_SEED_KEY, None)
    if seed is not None and report.failed:
        report.sections.append(("rng", f"seed {seed}: reproduce with FRAUDCORE_SEED={seed}"))
    return report


# --- end-of-run report sections ---------------------------------------------

_REPORT_KEY = pytest.StashKey[dict[str, Callable[[], list[str]]]]()


@pytest.fixture(scope="session")
def terminal_report(pytestconfig: pytest.Config) -> dict[str, Callable[[], list[str]]]:
    """Register ``title -> render()`` (returning lines); each is printed in the
    terminal summary after the run."""
    return pytestconfig.stash.setdefault(_REPORT_KEY, {})


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    for title, render in config.stash.get(_REPORT_KEY, {}).items():
        lines = render()
        if not lines:
            continue
        terminalreporter.write_sep("=", title)
        for line in lines:
            terminalreporter.write_line(line)
