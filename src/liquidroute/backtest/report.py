"""Backtest results: a pandas DataFrame, a per-strategy summary, files and a plot.

Per strategy: mean, median and p95 of the all-in slippage against the consolidated mid
(bps; positive = worse than mid), the implementation shortfall (fill at t + latency vs
the plan at t, bps), and the savings against the best single venue, in bps and in quote
currency (summed over parent orders). pandas and matplotlib are imported lazily.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame(list(rows))
    if not df.empty:
        df["time"] = pd.to_datetime(df["t_us"], unit="us", utc=True)
    return df


def summary(df: pd.DataFrame, best: pd.Series | None = None) -> pd.DataFrame:
    """One row per strategy (see the module doc). `best` is the best-venue baseline's cost
    per order time, when `df` does not hold that strategy's rows itself."""
    import numpy as np
    import pandas as pd

    if df.empty:
        return pd.DataFrame()
    sign = pd.Series(np.where(df["side"].to_numpy(dtype=object) == "sell", -1.0, 1.0), df.index)
    if best is None:
        best = df[df["strategy"] == "best_venue"].set_index("t_us")["cost"]
    out = []
    for name, g in df.groupby("strategy", sort=False):
        row: dict[str, Any] = {
            "strategy": name,
            "orders": len(g),
            "fill_ratio": float(g["filled"].sum() / g["amount"].sum()),
            "slippage_bps_mean": g["slippage_bps"].mean(),
            "slippage_bps_median": g["slippage_bps"].median(),
            "slippage_bps_p95": g["slippage_bps"].quantile(0.95),
            "shortfall_bps_mean": g["shortfall_bps"].mean(),
        }
        if len(best):
            base = best.reindex(g["t_us"]).to_numpy()
            s = sign.loc[g.index].to_numpy()
            saved = s * (base - g["cost"].to_numpy())  # > 0: cheaper than best venue
            row["saved_vs_best_venue_quote"] = float(pd.Series(saved).sum(skipna=True))
            row["saved_vs_best_venue_bps_mean"] = float(
                pd.Series(saved / base * 1e4).mean(skipna=True)
            )
        out.append(row)
    return pd.DataFrame(out)


def save(df: pd.DataFrame, summ: pd.DataFrame, out: Path, label: str) -> list[Path]:
    """results.parquet, results.csv, summary.csv, summary.json and plot.png in `out`.

    Files are written to temporary names and renamed, so a failure leaves no partial file.
    """
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def atomic(name: str, write: Any) -> None:
        tmp = out / f".{name}.tmp"
        write(tmp)
        tmp.replace(out / name)
        written.append(out / name)

    atomic("results.parquet", lambda p: df.to_parquet(p, index=False))
    atomic("results.csv", lambda p: df.to_csv(p, index=False))
    atomic("summary.csv", lambda p: summ.to_csv(p, index=False))
    atomic("summary.json", lambda p: p.write_text(summary_json(summ, label)))
    atomic("plot.png", lambda p: plot(df, p, label))
    return written


def summary_json(summ: pd.DataFrame, label: str) -> str:
    records = [
        {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
        for r in summ.to_dict(orient="records")
    ]
    return json.dumps({"data": label, "strategies": records}, indent=2, default=float)


def plot(df: pd.DataFrame, path: Path, label: str) -> None:
    """Slippage per strategy over time, and the distribution of savings vs best venue."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7))
    for name, g in df.groupby("strategy", sort=False):
        top.plot(g["time"], g["slippage_bps"], label=str(name), lw=1)
    top.set_ylabel("all-in slippage vs mid (bps)")
    top.set_title(label, fontsize=9)
    top.legend(fontsize=8)
    best = df[df["strategy"] == "best_venue"].set_index("t_us")["cost"]
    opt = df[df["strategy"] == "optimal"].set_index("t_us")
    if len(best) and len(opt):
        sign = opt["side"].map({"buy": 1.0, "sell": -1.0})
        saved = sign * (best.reindex(opt.index) - opt["cost"]) / best.reindex(opt.index) * 1e4
        bottom.hist(saved.dropna(), bins=40)
        bottom.set_xlabel("optimal saves vs best single venue (bps per parent order)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
