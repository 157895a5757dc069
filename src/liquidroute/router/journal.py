"""Durable execution journal (SQLite, WAL): no order is lost or sent twice after a crash.

Every intent is written (and committed) *before* the order is sent; every ack, fill and
error after. After a crash, `liquidroute resume` reads the children that were not final
and asks each venue about them by client order id before anything else is sent.

Default location: `$LIQUIDROUTE_HOME/journal.sqlite3`, where LIQUIDROUTE_HOME defaults to
`~/.liquidroute`. A folder the journal creates is mode 0700 and its files (the database and
SQLite's -wal/-shm companions) are 0600, even for a dry run. Secrets never reach the
journal: it stores orders, not credentials, and every text written (error column, event
details, request and report) passes through `liquidroute.errors.redact`.

Tables:
    parents(parent_id PK, created, symbol, side, amount, live, state, request JSON, report JSON)
        state: running | filled | stopped | unknown | continued (by a linked parent)
    children(client_id PK, parent_id, round, leg, venue, symbol, side, amount, limit_price,
             state, filled, avg_price, fee, venue_order_id, error, updated, fees JSON)
    events(id PK, parent_id, client_id, ts, kind, detail JSON)
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liquidroute.errors import DataFileError, redact
from liquidroute.model import ChildOrder
from liquidroute.paths import home

SCHEMA = """
CREATE TABLE IF NOT EXISTS parents (
    parent_id TEXT PRIMARY KEY, created REAL NOT NULL, symbol TEXT NOT NULL,
    side TEXT NOT NULL, amount REAL NOT NULL, live INTEGER NOT NULL,
    state TEXT NOT NULL, request TEXT NOT NULL, report TEXT
);
CREATE TABLE IF NOT EXISTS children (
    client_id TEXT PRIMARY KEY, parent_id TEXT NOT NULL REFERENCES parents(parent_id),
    round INTEGER NOT NULL, leg INTEGER NOT NULL, venue TEXT NOT NULL, symbol TEXT NOT NULL,
    side TEXT NOT NULL, amount REAL NOT NULL, limit_price REAL NOT NULL, state TEXT NOT NULL,
    filled REAL NOT NULL, avg_price REAL, fee REAL NOT NULL, venue_order_id TEXT,
    error TEXT, updated REAL NOT NULL, fees TEXT
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, parent_id TEXT NOT NULL, client_id TEXT,
    ts REAL NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS children_parent ON children(parent_id);
"""


def default_journal_path() -> Path:
    return home() / "journal.sqlite3"


def _private_file(path: Path) -> None:
    """Create `path`'s missing folders 0700 and the file itself 0600 (tightened if it exists)."""
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700)
        folder.chmod(0o700)  # mkdir's mode is filtered by the umask
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    path.chmod(0o600)


def _scrub(value: Any) -> Any:
    """`value` with `redact` applied to every string value in it (the keys are ours)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return redact(str(value))


def _dumps(value: Any) -> str:
    """JSON with every string passed through `redact`: no secret reaches the disk."""
    return json.dumps(_scrub(value))


@dataclass(frozen=True, slots=True)
class ParentRecord:
    parent_id: str
    created: float
    symbol: str
    side: str
    amount: float
    live: bool
    state: str
    request: dict[str, Any]
    report: dict[str, Any] | None


class Journal:
    """One SQLite file; each write is its own committed transaction (durable on return)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_journal_path()
        try:
            if str(self.path) != ":memory:":
                _private_file(self.path)
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(children)")}
            if "fees" not in columns:  # a journal written before fees were kept per asset
                self._db.execute("ALTER TABLE children ADD COLUMN fees TEXT")
            if str(self.path) != ":memory:":
                for companion in ("-wal", "-shm"):
                    extra = Path(str(self.path) + companion)
                    if extra.exists():
                        extra.chmod(0o600)
        except (OSError, sqlite3.Error) as exc:
            raise DataFileError(
                f"journal {self.path}: cannot open ({exc}); pass --journal PATH to a writable file"
            ) from None

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def start_parent(
        self,
        parent_id: str,
        symbol: str,
        side: str,
        amount: float,
        live: bool,
        request: Mapping[str, Any],
    ) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO parents VALUES (?, ?, ?, ?, ?, ?, 'running', ?, NULL)",
                (parent_id, time.time(), symbol, side, amount, int(live), _dumps(request)),
            )
            self._event(db, parent_id, None, "parent_started", dict(request))

    def finish_parent(self, parent_id: str, state: str, report: Mapping[str, Any]) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE parents SET state = ?, report = ? WHERE parent_id = ?",
                (state, _dumps(report), parent_id),
            )
            self._event(db, parent_id, None, "parent_" + state, {"stop": report.get("stop_reason")})

    def continued(self, parent_id: str, by: str) -> None:
        """Mark a stopped parent as continued by the parent `by` (atomically: a parent is
        continued once). Raises DataFileError when it is no longer `stopped`."""
        with self._tx() as db:
            changed = db.execute(
                "UPDATE parents SET state = 'continued' WHERE parent_id = ? AND state = 'stopped'",
                (parent_id,),
            ).rowcount
            if changed != 1:
                raise DataFileError(f"parent {parent_id} is no longer stopped; not continued")
            self._event(db, parent_id, None, "parent_continued", {"by": by})

    def note(self, parent_id: str, kind: str, detail: Mapping[str, Any] | None = None) -> None:
        """Append a parent-level event (e.g. `parent_continued`)."""
        with self._tx() as db:
            self._event(db, parent_id, None, kind, dict(detail or {}))

    def record(self, order: ChildOrder, kind: str, detail: Mapping[str, Any] | None = None) -> None:
        """Upsert the child order's current state and append an event, atomically."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO children VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(client_id) DO UPDATE SET state = excluded.state, "
                "filled = excluded.filled, avg_price = excluded.avg_price, fee = excluded.fee, "
                "venue_order_id = excluded.venue_order_id, error = excluded.error, "
                "updated = excluded.updated, fees = excluded.fees",
                (
                    order.client_id,
                    order.parent_id,
                    order.round,
                    order.leg,
                    order.venue,
                    order.symbol,
                    order.side,
                    order.amount,
                    order.limit_price,
                    order.state.value,
                    order.filled,
                    order.avg_price,
                    order.fee,
                    order.venue_order_id,
                    None if order.error is None else redact(order.error),
                    time.time(),
                    json.dumps(dict(order.fees)),
                ),
            )
            self._event(db, order.parent_id, order.client_id, kind, dict(detail or {}))

    @staticmethod
    def _event(
        db: sqlite3.Connection,
        parent_id: str,
        client_id: str | None,
        kind: str,
        detail: Mapping[str, Any],
    ) -> None:
        db.execute(
            "INSERT INTO events (parent_id, client_id, ts, kind, detail) VALUES (?, ?, ?, ?, ?)",
            (parent_id, client_id, time.time(), kind, _dumps(detail)),
        )

    def parents(self, limit: int = 50) -> list[ParentRecord]:
        rows = self._db.execute(
            "SELECT * FROM parents ORDER BY created DESC LIMIT ?", (limit,)
        ).fetchall()
        return [self._parent(r) for r in rows]

    def parent(self, parent_id: str) -> ParentRecord | None:
        row = self._db.execute("SELECT * FROM parents WHERE parent_id = ?", (parent_id,)).fetchone()
        return self._parent(row) if row else None

    @staticmethod
    def _parent(row: tuple[Any, ...]) -> ParentRecord:
        return ParentRecord(
            parent_id=row[0],
            created=row[1],
            symbol=row[2],
            side=row[3],
            amount=row[4],
            live=bool(row[5]),
            state=row[6],
            request=json.loads(row[7]),
            report=json.loads(row[8]) if row[8] else None,
        )

    def children(self, parent_id: str) -> list[ChildOrder]:
        rows = self._db.execute(
            "SELECT client_id, parent_id, round, leg, venue, symbol, side, amount, limit_price, "
            "state, filled, avg_price, fee, venue_order_id, error, fees FROM children "
            "WHERE parent_id = ? ORDER BY round, leg",
            (parent_id,),
        ).fetchall()
        return [
            ChildOrder.restore(
                client_id=r[0],
                parent_id=r[1],
                round=r[2],
                leg=r[3],
                attempt=r[2],
                venue=r[4],
                symbol=r[5],
                side=r[6],
                amount=r[7],
                limit_price=r[8],
                state=r[9],
                filled=r[10],
                avg_price=r[11],
                # journals older than per-asset fees hold the quote-valued fee only
                fees=json.loads(r[15]) if r[15] else {r[5].split(":")[0].split("/")[-1]: r[12]},
                venue_order_id=r[13],
                error=r[14],
            )
            for r in rows
        ]

    def events(self, parent_id: str) -> list[tuple[float, str | None, str, dict[str, Any]]]:
        rows = self._db.execute(
            "SELECT ts, client_id, kind, detail FROM events WHERE parent_id = ? ORDER BY id",
            (parent_id,),
        ).fetchall()
        return [(r[0], r[1], r[2], json.loads(r[3])) for r in rows]

    def close(self) -> None:
        self._db.close()
