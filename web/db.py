"""Brief access to the DuckDB file for the web app, retried while another process holds it.

DuckDB lets one process write a file; while the nightly run writes, opening it fails with a
lock error. The app never keeps the file open: each request attaches it, reads, and lets go;
a lock error is retried with short back-off for a few seconds before the page says "busy".

Opening a new DuckDB instance per request costs ~100 ms on a loaded 2-core machine, attaching
a file to one long-lived in-memory instance ~10-20 ms, so the app keeps one empty in-memory
instance and ATTACHes the file (READ_ONLY for reads) for each use. Concurrent readers in this
process share one attachment; a write waits for them and attaches the file read-write.
"""
from __future__ import annotations

import random
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

RETRY_SECONDS = 15.0  # a batch writer holds the file for one call's transaction at a time


class DatabaseBusy(RuntimeError):
    pass


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text or "already attached" in text or "different configuration" in text


class _Attachments:
    """One in-memory DuckDB instance; the file is attached while anyone in this process uses it."""

    def __init__(self) -> None:
        self._base: duckdb.DuckDBPyConnection | None = None
        self._cond = threading.Condition()
        self._readers: dict[Path, tuple[str, int]] = {}  # path -> (alias, readers)
        self._writing: set[Path] = set()

    def base(self) -> duckdb.DuckDBPyConnection:
        if self._base is None:
            self._base = duckdb.connect(":memory:")
        return self._base

    def _attach(self, path: Path, read_only: bool, budget: float) -> str:
        alias = f"cb_{uuid.uuid4().hex[:12]}"
        mode = " (READ_ONLY)" if read_only else ""
        deadline, delay = time.monotonic() + budget, 0.02
        while True:
            try:
                self.base().execute(f"ATTACH '{str(path).replace(chr(39), chr(39) * 2)}' AS {alias}{mode}")
                return alias
            except (duckdb.IOException, duckdb.BinderException, duckdb.InvalidInputException) as exc:
                if not _is_lock_error(exc):
                    raise
                if time.monotonic() > deadline:
                    raise DatabaseBusy(f"database {path.name} is busy (another process is writing); "
                                       "try again in a moment") from exc
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.1)  # short polls: a batch frees the file between calls

    def _detach(self, alias: str) -> None:
        self.base().execute(f"DETACH {alias}")

    @contextmanager
    def read(self, path: Path, budget: float) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._cond:
            self._cond.wait_for(lambda: path not in self._writing)
            if path in self._readers:
                alias, n = self._readers[path]
                self._readers[path] = (alias, n + 1)
            else:
                alias = self._attach(path, True, budget)  # under the lock: one attachment per file
                self._readers[path] = (alias, 1)
        cursor = self.base().cursor()
        try:
            cursor.execute(f"USE {alias}")
            yield cursor
        finally:
            cursor.close()
            with self._cond:
                alias, n = self._readers[path]
                if n == 1:
                    del self._readers[path]
                    self._detach(alias)
                else:
                    self._readers[path] = (alias, n - 1)
                self._cond.notify_all()

    @contextmanager
    def write(self, path: Path, budget: float) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._cond:
            self._cond.wait_for(lambda: path not in self._writing and path not in self._readers)
            self._writing.add(path)
        try:
            alias = self._attach(path, False, budget)
            cursor = self.base().cursor()
            try:
                cursor.execute(f"USE {alias}")
                cursor.execute("BEGIN TRANSACTION")
                try:
                    yield cursor
                    cursor.execute("COMMIT")
                except Exception:
                    cursor.execute("ROLLBACK")
                    raise
            finally:
                cursor.close()
                self._detach(alias)
        finally:
            with self._cond:
                self._writing.discard(path)
                self._cond.notify_all()


_FILES = _Attachments()


@contextmanager
def reading(path: Path, budget: float = RETRY_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    with _FILES.read(Path(path).resolve(), budget) as conn:
        yield conn


@contextmanager
def writing(path: Path, budget: float = RETRY_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    """One short read-write transaction."""
    with _FILES.write(Path(path).resolve(), budget) as conn:
        yield conn


def rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list | dict | None = None) -> list[dict]:
    cur = conn.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def has_table(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(conn.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ? "
                             "AND table_catalog = current_database()", [name]).fetchone())
