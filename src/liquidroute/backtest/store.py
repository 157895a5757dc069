"""Backtest results on disk, written as the run goes, so a long run never holds its rows.

A run is cut into windows of consecutive parent orders. Each finished window is written
atomically to `OUT/parts/window-NNNNNN.parquet` (one Parquet file per window); `run.json`
beside them records what was run (files with their size and mtime, every option), so
`--resume` continues an interrupted run from the windows that are missing, and refuses
when anything differs. `finish()` then streams the parts, in order, into
`results.parquet` (one row group per window) and `results.csv`, and computes the summary
and the plot from that file, one strategy at a time.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from liquidroute.errors import InvalidInputError

COLUMNS = (
    "t_us",
    "strategy",
    "side",
    "amount",
    "mid",
    "filled",
    "cost",
    "planned_cost",
    "avg_price",
    "slippage_bps",
    "shortfall_bps",
    "venues",
)


def _schema() -> Any:
    import pyarrow as pa

    text, num = pa.string(), pa.float64()
    types = {"t_us": pa.int64(), "strategy": text, "side": text, "venues": text}
    return pa.schema([(c, types.get(c, num)) for c in COLUMNS])


def rows_table(rows: Sequence[dict[str, Any]]) -> Any:
    """Result rows as a pyarrow Table in the results schema (cheap to send and write)."""
    return columns_table({c: [r[c] for r in rows] for c in COLUMNS})


def columns_table(columns: dict[str, Any]) -> Any:
    """Result columns (`COLUMNS` -> numpy arrays, or pyarrow arrays for text, dictionary
    encoded or not, whole or in chunks) as a pyarrow Table in the results schema."""
    import pyarrow as pa

    schema = _schema()
    arrays = []
    for c in COLUMNS:
        values, kind = columns[c], schema.field(c).type
        if isinstance(values, pa.Array | pa.ChunkedArray):
            arrays.append(values.cast(kind) if values.type != kind else values)
        else:
            arrays.append(pa.array(values, type=kind))
    return pa.Table.from_arrays(arrays, schema=schema)


def concat_columns(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Several column sets as one, rows in order (text columns as chunked arrays)."""
    import numpy as np
    import pyarrow as pa

    out: dict[str, Any] = {}
    for c in COLUMNS:
        values = [p[c] for p in parts]
        if values and isinstance(values[0], pa.Array | pa.ChunkedArray):
            out[c] = pa.chunked_array(values)
        else:
            out[c] = np.concatenate(values) if values else np.empty(0)
    return out


def slice_columns(columns: dict[str, Any], start: int, stop: int) -> dict[str, Any]:
    """Rows start..stop-1 of a column set."""
    out: dict[str, Any] = {}
    for c in COLUMNS:
        values = columns[c]
        out[c] = (
            values[start:stop] if hasattr(values, "shape") else values.slice(start, stop - start)
        )
    return out


def write_part(target: Path, table: Any) -> None:
    """A window's table as `target` (Parquet), atomically: written beside it, then renamed,
    so a part that exists is complete (what `--resume` relies on)."""
    import pyarrow.parquet as pq

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(target)


def fingerprint(files: Sequence[Path], options: dict[str, Any]) -> dict[str, Any]:
    """What a run depends on: each file's path, size and mtime, and the options."""
    out = []
    for f in files:
        st = Path(f).stat()
        out.append({"path": str(Path(f).resolve()), "size": st.st_size, "mtime": st.st_mtime})
    return {"files": out, "options": options}


class ResultsStore:
    """Window parts under `out/parts`, the final files in `out` (module doc)."""

    def __init__(self, out: Path, run: dict[str, Any], *, resume: bool = False) -> None:
        self.out = Path(out)
        self.parts = self.out / "parts"
        if self.out.exists() and not self.out.is_dir():
            raise InvalidInputError(f"--out {self.out}: is a file; give a directory")
        manifest = self.parts / "run.json"
        if resume:
            if not manifest.is_file() and (self.out / "results.parquet").is_file():
                raise InvalidInputError(
                    f"--resume: the run in {self.out} already finished (results.parquet); "
                    "nothing to resume (run without --resume to redo it)"
                )
            if not manifest.is_file():
                raise InvalidInputError(
                    f"--resume: {self.out} holds no interrupted run (no parts/run.json); "
                    "run without --resume"
                )
            previous = json.loads(manifest.read_text())
            if previous != json.loads(json.dumps(run)):
                raise InvalidInputError(
                    f"--resume: {self.out} was a different run (files or options changed); "
                    "use another --out or drop --resume"
                )
        else:
            if self.parts.exists():
                shutil.rmtree(self.parts)
            self.parts.mkdir(parents=True)
            tmp = manifest.with_suffix(".tmp")
            tmp.write_text(json.dumps(run, indent=2))
            tmp.replace(manifest)

    def path(self, window: int) -> Path:
        return self.parts / f"window-{window:06d}.parquet"

    def part_files(self) -> list[Path]:
        """The window parts written so far, in window order."""
        return [self.path(w) for w in sorted(self.done())]

    def done(self) -> set[int]:
        return {
            int(p.stem.split("-")[1])
            for p in self.parts.glob("window-*.parquet")
            if p.stem.split("-")[1].isdigit()
        }

    def write(self, window: int, rows: Sequence[dict[str, Any]] | dict[str, Any] | Any) -> None:
        """Window `window`'s rows (dicts, columns, or a table from `rows_table`), atomically."""
        if isinstance(rows, dict):
            rows = columns_table(rows)
        write_part(self.path(window), rows if hasattr(rows, "num_rows") else rows_table(rows))

    def token(self) -> Path:
        """A file only this store's folder holds (made once): a Dask worker that sees it
        shares the client's filesystem and writes its window's part itself."""
        found = sorted(self.parts.glob(".client-*"))
        if found:
            return found[0]
        import uuid

        token = self.parts / f".client-{uuid.uuid4().hex}"
        token.touch()
        return token

    def finish(self, label: str, *, keep_files: bool = True) -> Path:
        """results.parquet (and results.csv, with `keep_files`) from the parts, in window
        order; returns the Parquet. Without `keep_files` the folder is a temporary one
        that only the summary and the plot read, so no CSV is written."""
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        schema = _schema()
        results = self.out / "results.parquet"
        tmp_pq = self.out / ".results.parquet.tmp"
        tmp_csv = self.out / ".results.csv.tmp"
        with contextlib.ExitStack() as stack:
            pw = stack.enter_context(pq.ParquetWriter(tmp_pq, schema))
            cw = stack.enter_context(pcsv.CSVWriter(tmp_csv, schema)) if keep_files else None
            for part in self.part_files():
                table = pq.read_table(part, schema=schema)
                if table.num_rows:
                    pw.write_table(table)
                    if cw is not None:
                        cw.write_table(table)
        tmp_pq.replace(results)
        if keep_files:
            tmp_csv.replace(self.out / "results.csv")
        shutil.rmtree(self.parts)
        return results


#: results up to this many rows are summarised from one read of the file (8 columns of
#: 8 bytes: 64 MB at most); longer ones one strategy at a time
SUMMARY_ONE_READ_ROWS = 1_000_000


def summary_from_file(path: Path | Sequence[Path]) -> Any:
    """The per-strategy summary (`report.summary`) computed from a results file, or from
    window parts in window order (`ResultsStore.part_files`: no merged file needed). A
    short run is read once; a long one one strategy at a time (with the best-venue
    baseline it is compared with), so memory stays a strategy's columns."""
    import pandas as pd
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from liquidroute.backtest.report import summary

    files = [str(path)] if isinstance(path, (str, Path)) else [str(p) for p in path]
    if not files:
        return pd.DataFrame()
    cols = ["t_us", "strategy", "side", "amount", "filled", "cost", "slippage_bps",
            "shortfall_bps"]  # fmt: skip
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    if rows <= SUMMARY_ONE_READ_ROWS:
        whole = pq.read_table(files, columns=cols).to_pandas()
        groups = dict(tuple(whole.groupby("strategy", sort=False)))
        best_df = groups.get("best_venue", whole.iloc[:0])

        def part_of(name: str) -> Any:
            return groups[name]

        names = list(groups)
    else:
        strategy = pq.read_table(files, columns=["strategy"]).column("strategy")
        names = pc.unique(strategy).to_pylist()
        best_df = pq.read_table(
            files, columns=cols, filters=[("strategy", "==", "best_venue")]
        ).to_pandas()

        def part_of(name: str) -> Any:
            if name == "best_venue":
                return best_df
            return pq.read_table(
                files, columns=cols, filters=[("strategy", "==", name)]
            ).to_pandas()

    best_cost = best_df.set_index("t_us")["cost"]
    out = []
    for name in names:
        summ = summary(part_of(name), best_cost)
        out.append(summ[summ["strategy"] == name])
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def plot_from_file(path: Path, png: Path, label: str, max_orders: int = 20_000) -> None:
    """The report's plot from a results file, thinned to about `max_orders` parent orders."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from liquidroute.backtest.report import plot

    table = pq.read_table(path, columns=["t_us", "strategy", "side", "cost", "slippage_bps"])
    times = np.unique(table.column("t_us").to_numpy())
    step = max(1, len(times) // max(1, max_orders))
    if step > 1:  # whole orders (every strategy of one order) are kept or dropped together
        table = table.filter(pc.is_in(table.column("t_us"), value_set=pa.array(times[::step])))
    df = table.to_pandas()
    df["time"] = pd.to_datetime(df["t_us"], unit="us", utc=True)
    plot(df, png, label)
