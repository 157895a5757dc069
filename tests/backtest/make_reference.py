"""Writes tests/data/backtest_reference.parquet: the backtest results of the in-memory
replay (commit 10e940d, before streaming) on the shared recorded books.

    PYTHONPATH=src python tests/backtest/make_reference.py

It was run once on that commit; test_streaming.py checks that today's streaming replay
gives the same rows (every order, every strategy) to 1e-12. The cases are listed in
CASES (files, align, side, size, every_s, latency_ms, depth).
"""

from __future__ import annotations

from pathlib import Path

CASES = {
    "spot3_buy": (["binance", "bybit-spot", "okex"], "start", "buy", 3.0, 1.0, 0.0, 200),
    "spot3_sell_lat900": (["binance", "bybit-spot", "okex"], "start", "sell", 2.0, 1.0, 900.0, 200),
    "spot3_buy_big_depth40": (
        ["binance", "bybit-spot", "okex"],
        "start",
        "buy",
        25.0,
        0.5,
        0.0,
        40,
    ),
    "binance_buy_lat1500": (["binance"], None, "buy", 2.0, 1.0, 1500.0, 200),
    "bybit2_sell": (["bybit-spot", "okex"], "start", "sell", 5.0, 0.7, 250.0, 100),
    "perp_buy": (["bybit"], None, "buy", 1.0, 0.5, 0.0, 200),
}
STRATEGIES = ["optimal", "optimal_exact", "best_venue", "equal_split", "pro_rata", "percent_grid"]


def main() -> None:
    import pandas as pd

    from liquidroute.backtest import replay as rp
    from tests.conftest import BOOK_FILES

    frames = []
    for case, (names, align, side, size, every, lat, depth) in CASES.items():
        data = rp.load([BOOK_FILES[n] for n in names], align=align)
        parents = rp.schedule(data, every, side, size)
        rows = rp.run(data, parents, strategies=STRATEGIES, latency_ms=lat, depth=depth)
        df = pd.DataFrame(rows)
        df.insert(0, "case", case)
        frames.append(df)
        print(case, len(parents), "orders")
    out = Path(__file__).resolve().parents[1] / "data" / "backtest_reference.parquet"
    pd.concat(frames, ignore_index=True).to_parquet(out, index=False)
    print("wrote", out)


if __name__ == "__main__":
    main()
