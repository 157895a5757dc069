"""The streaming replay equals the in-memory replay it replaced, and route() + walk_book."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liquidroute.backtest import replay as rp
from tests.backtest.make_reference import CASES, STRATEGIES
from tests.conftest import BOOK_FILES

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "backtest_reference.parquet"


def run_case(case: str, **kw) -> pd.DataFrame:
    names, align, side, size, every, lat, depth = CASES[case]
    data = rp.load([BOOK_FILES[n] for n in names], align=align, **kw)
    parents = rp.schedule(data, every, side, size)
    rows = rp.run(data, parents, strategies=STRATEGIES, latency_ms=lat, depth=depth)
    return pd.DataFrame(rows)


def assert_rows_equal(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert len(got) == len(want)
    for col in want.columns:
        a, b = got[col].to_numpy(), want[col].to_numpy()
        if want[col].dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=0, equal_nan=True, err_msg=col)
        else:
            assert (a == b).all(), col


@pytest.mark.parametrize("case", sorted(CASES))
def test_streaming_equals_the_in_memory_replay(case):
    ref = pd.read_parquet(REFERENCE)
    want = ref[ref["case"] == case].drop(columns="case").reset_index(drop=True)
    assert len(want) > 0
    assert_rows_equal(run_case(case), want)
