"""The load generator's HDR histogram keeps every sample within its
significant digits: counts add up, and quantiles read back from it are the
exact ones to within the bucket's relative width."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from fraudcore.bench.loadgen import hdr_histogram


@given(st.lists(st.integers(1, 10**10), min_size=1, max_size=300), st.sampled_from([50.0, 90.0, 99.0, 99.9]))
def test_quantiles_read_back_within_the_digits(samples, pct):
    lat = np.array(samples, dtype=np.int64)
    h = hdr_histogram(lat, digits=3)
    lower = np.array([b[0] for b in h["buckets"]])
    counts = np.array([b[1] for b in h["buckets"]])
    assert counts.sum() == len(samples) and np.all(np.diff(lower) > 0)
    rank = int(np.ceil(pct / 100 * len(samples)))  # nearest-rank quantile
    exact = np.sort(lat)[rank - 1]
    from_hist = lower[np.searchsorted(np.cumsum(counts), rank)]
    assert from_hist <= exact < from_hist * 1.01 + 1
