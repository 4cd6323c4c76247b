"""Results store: one SQLite row per finished point, committed in one transaction.

The database runs in WAL mode, so a process killed at any moment (SIGKILL included) leaves every
committed point intact and no half-written row; ``--resume`` asks ``finished_ids()`` and skips
those points. Reports are regenerated from the store alone.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with ResultsStore(d / "store.sqlite") as store:
    ...     store.put(PointRecord("abc", 0, 0, 7, {"ebno_db": 1.0}, {"ber": 0.1}, "cpu", 0.5))
    ...     sorted(store.finished_ids())
    ['abc']
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    point_id    TEXT PRIMARY KEY,
    run_order   INTEGER NOT NULL,
    config_index INTEGER NOT NULL,
    seed        INTEGER NOT NULL,
    config_json TEXT NOT NULL,
    metrics_json TEXT NOT NULL,
    device      TEXT NOT NULL,
    wall_s      REAL NOT NULL,
    status      TEXT NOT NULL,
    finished_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class PointRecord:
    """One finished point: its resolved config, metrics (counts included) and bookkeeping."""

    point_id: str
    order: int
    config_index: int
    seed: int
    config: dict[str, Any]
    metrics: dict[str, Any]
    device: str
    wall_s: float
    status: str = "done"


class ResultsStore:
    """SQLite-backed store of finished points (WAL mode, one transaction per point)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

    def put(self, record: PointRecord) -> None:
        """Insert a finished point atomically; a point already stored is left as it was."""
        row = (record.point_id, record.order, record.config_index, record.seed,
               json.dumps(record.config, sort_keys=True), json.dumps(record.metrics, sort_keys=True),
               record.device, float(record.wall_s), record.status, time.time())
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT OR IGNORE INTO points VALUES (?,?,?,?,?,?,?,?,?,?)", row)

    def finished_ids(self) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT point_id FROM points WHERE status='done'")}

    def records(self) -> Iterator[PointRecord]:
        """Stored points in run order."""
        cur = self._db.execute(
            "SELECT point_id, run_order, config_index, seed, config_json, metrics_json, device,"
            " wall_s, status FROM points ORDER BY run_order")
        for pid, order, cidx, seed, cfg, met, dev, wall, status in cur:
            yield PointRecord(pid, order, cidx, seed, json.loads(cfg), json.loads(met), dev, wall,
                              status)

    def set_meta(self, key: str, value: Any) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def get_meta(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default
