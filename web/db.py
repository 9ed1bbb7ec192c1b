"""Brief DuckDB connections for the web app, retried while another process holds the file.

DuckDB lets one process write a file; while the nightly run writes, a reader's connect fails
with a lock error. The app never keeps a connection: each request opens one, reads, closes,
and a lock error is retried with back-off for a few seconds before the page gives up.
"""
from __future__ import annotations

import random
import time
from contextlib import contextmanager
from pathlib import Path
from threading import Condition
from typing import Iterator

import duckdb

RETRY_SECONDS = 15.0  # a batch writer holds the file for one call's transaction at a time


class DatabaseBusy(RuntimeError):
    pass


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text or "different configuration" in text


class _ReadersWriter:
    """In one process DuckDB refuses a read-write and a read-only connection to the same file at
    once, so the app's own threads share reads and take turns for writes."""

    def __init__(self) -> None:
        self._cond = Condition()
        self._readers = 0
        self._writer = False

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writer)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writer and self._readers == 0)
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


_LOCAL = _ReadersWriter()


def _connect(path: Path, read_only: bool, budget: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + budget
    delay = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                if _is_lock_error(exc):
                    raise DatabaseBusy(f"database {path.name} is busy (another process is writing); try again") from exc
                raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.1)  # short polls: a batch frees the file between calls


@contextmanager
def reading(path: Path, budget: float = RETRY_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    with _LOCAL.read():
        conn = _connect(Path(path), True, budget)
        try:
            yield conn
        finally:
            conn.close()


@contextmanager
def writing(path: Path, budget: float = RETRY_SECONDS) -> Iterator[duckdb.DuckDBPyConnection]:
    """One short read-write transaction."""
    with _LOCAL.write():
        conn = _connect(Path(path), False, budget)
        try:
            conn.execute("BEGIN TRANSACTION")
            try:
                yield conn
                conn.execute("COMMIT")
            except Exception:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()


def rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list | dict | None = None) -> list[dict]:
    cur = conn.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def has_table(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(conn.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ?", [name]).fetchone())
