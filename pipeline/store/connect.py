"""One DuckDB file, opened briefly for each operation: the one connection and lock layer of
everything that reads or writes the database (pipeline, flows, CLI, web app).

DuckDB lets one process write a file, and while it has the file open no other process can open
it at all, not even to read. So nobody holds the file between operations: each operation (one
call's transaction, one briefing's reads, one page's reads) attaches the file and lets it go,
and attaching retries with jittered backoff while another process holds the lock. A handler's
briefing, a QA sample or a page therefore waits at most for one call's write (tens of
milliseconds), never for the nightly batch.

Within a process there is one empty in-memory DuckDB instance, and the file is ATTACHed to it
for each use (~10-20 ms, against ~100 ms for a new instance on a loaded 2-core machine).
Readers in the process share one read-only attachment; a writer waits for them and attaches the
file read-write, alone. A thread that is already using the file (any `Database` on that path)
reuses its attachment, so nested operations never wait for themselves.
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
import pandas as pd

# Another process (or a concurrent attachment) holding the file shows as one of these.
_LOCK_MESSAGES = ("lock", "already attached", "different configuration", "unique file handle")


class StoreBusy(RuntimeError):
    """Another process held the database for longer than we were willing to wait."""


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(m in text for m in _LOCK_MESSAGES)


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class _Attachments:
    """The process's in-memory instance; a file is attached while anyone in the process uses it."""

    def __init__(self) -> None:
        self._base: duckdb.DuckDBPyConnection | None = None
        self._cond = threading.Condition()
        self._readers: dict[Path, tuple[str, int]] = {}  # path -> (alias, readers)
        self._writing: set[Path] = set()

    def _base_connection(self) -> duckdb.DuckDBPyConnection:
        with self._cond:
            if self._base is None:
                self._base = duckdb.connect(":memory:")
            return self._base

    def _attach(self, path: Path, read_only: bool, wait_seconds: float) -> str:
        alias = f"cb_{uuid.uuid4().hex[:12]}"
        mode = " (READ_ONLY)" if read_only else ""
        deadline, delay = time.monotonic() + wait_seconds, 0.01
        while True:
            try:
                self._execute(f"ATTACH {_quoted(path)} AS {alias}{mode}")
                return alias
            except duckdb.Error as exc:
                if not _is_lock_error(exc):
                    raise
                if time.monotonic() > deadline:
                    raise StoreBusy(f"database {path.name} is busy: another process held it for more than "
                                    f"{wait_seconds:g} s; try again in a moment") from None
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.1)  # short polls: a batch frees the file between calls

    def _detach(self, alias: str) -> None:
        self._execute(f"DETACH {alias}")

    def _execute(self, sql: str) -> None:
        """On a cursor of its own: threads attach and detach at once, and one connection object
        must not be used by two threads."""
        cursor = self._base_connection().cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()

    @contextmanager
    def attached(self, path: Path, read_only: bool, wait_seconds: float) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on `path` (its own connection to the process's instance, for this thread)."""
        if read_only:
            with self._cond:
                self._cond.wait_for(lambda: path not in self._writing)
                if path in self._readers:
                    alias, n = self._readers[path]
                    self._readers[path] = (alias, n + 1)
                else:
                    alias = self._attach(path, True, wait_seconds)  # under the lock: one attachment per file
                    self._readers[path] = (alias, 1)
        else:
            with self._cond:
                self._cond.wait_for(lambda: path not in self._writing and path not in self._readers)
                self._writing.add(path)
            try:
                alias = self._attach(path, False, wait_seconds)
            except BaseException:
                self._release_writer(path)
                raise
        cursor = self._base_connection().cursor()
        try:
            cursor.execute(f"USE {alias}")
            yield cursor
        finally:
            cursor.close()
            if read_only:
                with self._cond:
                    alias, n = self._readers[path]
                    if n == 1:
                        del self._readers[path]
                        self._detach(alias)
                    else:
                        self._readers[path] = (alias, n - 1)
                    self._cond.notify_all()
            else:
                try:
                    self._detach(alias)
                finally:
                    self._release_writer(path)

    def _release_writer(self, path: Path) -> None:
        with self._cond:
            self._writing.discard(path)
            self._cond.notify_all()


_FILES = _Attachments()
_IN_USE = threading.local()  # path -> (cursor, read_only) for the sessions this thread has open


class Database:
    """One DuckDB file. `session()` and `reading()` nest within a thread; `transaction()` is one
    short read-write transaction."""

    def __init__(self, path: Path | str, read_only: bool = False, wait_seconds: float = 60.0):
        self.path = Path(path).resolve()
        self.read_only = read_only
        self.wait_seconds = wait_seconds
        if read_only and not self.path.exists():
            raise FileNotFoundError(f"no database at {self.path}: run `callbrief run` first")

    @contextmanager
    def _use(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        held = getattr(_IN_USE, "paths", None)
        if held is None:
            held = _IN_USE.paths = {}
        if self.path in held:
            cursor, held_read_only = held[self.path]
            if held_read_only and not read_only:
                raise RuntimeError(f"{self.path.name}: a write inside a read-only session of the same thread")
            yield cursor
            return
        with _FILES.attached(self.path, read_only, self.wait_seconds) as cursor:
            held[self.path] = (cursor, read_only)
            try:
                yield cursor
            finally:
                del held[self.path]

    @contextmanager
    def session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One attachment for a group of operations in this thread (read-write unless the
        database was opened read-only)."""
        with self._use(self.read_only) as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only attachment, shared with this process's other readers (the web app's pages)."""
        with self._use(True) as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.session() as conn:
            conn.execute("BEGIN TRANSACTION")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def query(self, sql: str, params: list | dict | None = None) -> pd.DataFrame:
        with self.session() as conn:
            return conn.execute(sql, params or []).df()

    def rows(self, sql: str, params: list | dict | None = None) -> list[dict]:
        with self.session() as conn:
            return rows(conn, sql, params)

    def execute(self, sql: str, params: list | None = None) -> None:
        with self.session() as conn:
            conn.execute(sql, params or [])

    def close(self) -> None:
        """Nothing is held between operations; kept so `with Store(...)` reads naturally."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def rows(conn: duckdb.DuckDBPyConnection, sql: str, params: list | dict | None = None) -> list[dict]:
    """The result of `sql` as a list of dicts (column -> value)."""
    cur = conn.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def has_table(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(conn.execute("SELECT 1 FROM information_schema.tables WHERE table_name = ? "
                             "AND table_catalog = current_database()", [name]).fetchone())
