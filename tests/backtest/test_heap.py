"""A window in a Dask worker keeps its heap: under Dask's MALLOC_TRIM_THRESHOLD_ every
array above 128 KiB is mapped and unmapped, and its pages fault in again on each use.
Counted in page faults (the kernel's counter), not in time."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = """
import json, resource
import numpy as np
from liquidroute.backtest.distributed import _untrimmed_heap

def faults(n=200):  # a batch's worth of 1 MiB arrays, made, written and freed n times
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        a = np.ones(1 << 17)
        del a
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

outside = faults()
with _untrimmed_heap():
    faults(5)  # the first arrays grow the heap once
    inside = faults()
after = faults()
print(json.dumps({"outside": outside, "inside": inside, "after": after}))
"""


def run(env_extra: dict[str, str]) -> dict[str, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(env_extra)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_a_window_lifts_dasks_trim_threshold_and_puts_it_back():
    got = run({"MALLOC_TRIM_THRESHOLD_": "65536"})  # what Dask's nanny sets
    # each 1 MiB array is mapped afresh: its 256 pages fault in, 200 times
    assert got["outside"] > 200 * 200
    assert got["inside"] < got["outside"] / 20  # the heap keeps the memory
    assert got["after"] > 200 * 200  # Dask's thresholds are back


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_without_a_trim_threshold_nothing_changes():
    got = run({})  # a plain process: glibc's own dynamic thresholds
    assert got["outside"] < 200 * 50 and got["inside"] < 200 * 50 and got["after"] < 200 * 50
