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

import errno
import importlib.util
import os
import random
import re
import shutil
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import duckdb
import pandas as pd

from pipeline.config import keys

# Another process holding the file (or this process's own attachment of it) shows as one of these.
_LOCK_MESSAGES = ("could not set lock", "conflicting lock", "different configuration", "already attached",
                  "unique file handle")


class StoreError(RuntimeError):
    """The database file cannot be written where it is (its disk is full, its folder read-only):
    a one-line message that names the cause and the fix. Fatal for a run: every later write would
    fail the same way."""


class StoreBusy(StoreError):
    """Another process held the database for longer than we were willing to wait."""


def explained(exc: BaseException, path: Path) -> StoreError | None:
    """What a DuckDB or OS error on the database at `path` (or a file beside it) means for a
    person, when it is one we can name: the file it names, the cause, the fix."""
    text = str(exc)
    code = getattr(exc, "errno", None)
    named = getattr(exc, "filename", None) or next(iter(re.findall(r'"(/[^"]+)"', text)), None)
    where = Path(named) if named else path
    if code == errno.ENOSPC or "No space left on device" in text:
        return StoreError(f"disk full: {where} could not be written; free space on the disk that holds "
                          f"{where.parent} and run again (what was being written was rolled back)")
    if code == errno.EROFS or "Read-only file system" in text:
        return StoreError(f"cannot write {where}: the file system that holds {where.parent} is mounted read-only; "
                          "move the database to a writable disk")
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        if where in (path, path.with_name(path.name + ".wal")) and not os.access(path.parent, os.W_OK):
            return StoreError(f"cannot write {path}: its folder {path.parent} is read-only for this user, and "
                              f"DuckDB must create its log {path.name}.wal beside the database; make the folder "
                              "writable or move the database")
        return StoreError(f"cannot write {where}: permission denied for this user (is it owned by another "
                          "user?); give this user write access to it")
    return None


# DuckDB 1.5.5 aborts the whole process (std::terminate) when the disk fills during a commit and
# the rollback of an indexed table then fails, so a write does not start with less free than this:
# far more than one call's transaction and the checkpoint after it (a few MB).
MIN_FREE_BYTES = 16 * 2**20


def check_free_space(path: Path) -> None:
    """Refuse a write, with the one-line disk-full message, while the database's disk is nearly full."""
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:  # the folder is missing or unreadable: attaching says so more precisely
        return
    if free < MIN_FREE_BYTES:
        raise StoreError(f"disk full: only {free // 2**20} MB free on the disk that holds {path.parent} "
                         f"(a write needs {MIN_FREE_BYTES // 2**20} MB); free space and run again "
                         "(nothing was written)")


# Never download an extension at run time: they come from PyPI wheels (duckdb-extension-*).
OFFLINE = {"autoinstall_known_extensions": False, "autoload_known_extensions": False,
           # What DuckDB spills to disk in a big query is encrypted too (plain by default, even
           # when the database is encrypted); httpfs, loaded below, gives it its OpenSSL.
           "temp_file_encryption": True}
EXTENSIONS = ("httpfs", "fts")  # httpfs: the OpenSSL that writing an encrypted file needs; fts: search


def extension_path(name: str) -> Path:
    """The signed extension binary inside its PyPI wheel (the wheels offer no path API)."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise StoreError(f"the DuckDB extension {name} is not installed: run make setup "
                         f"(pip install duckdb-extension-{name}=={duckdb.__version__})")
    path = Path(list(spec.submodule_search_locations)[0]) / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.is_file():
        raise StoreError(f"the DuckDB extension {name} does not match DuckDB {duckdb.__version__} ({path} is "
                         f"missing): install duckdb-extension-{name}=={duckdb.__version__}")
    return path


def offline_instance() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB instance with the packaged extensions loaded and no downloads."""
    temp = Path(tempfile.gettempdir()) / f"callbrief-duckdb-{os.getuid()}"  # not ./.tmp wherever we run
    conn = duckdb.connect(":memory:", config=OFFLINE | {"temp_directory": str(temp)})
    for name in EXTENSIONS:
        conn.execute(f"LOAD {_quoted(extension_path(name))}")
    return conn


def _database_key(path: Path) -> keys.DatabaseKey:
    try:
        return keys.database_key()
    except keys.KeyProblem as exc:
        raise StoreError(f"cannot open {path.name}: {exc}") from None


def _key_error(exc: Exception, path: Path, key: keys.DatabaseKey) -> StoreError | None:
    """DuckDB's errors about encryption, as what to do about them."""
    text = str(exc)
    if "is not encrypted" in text:
        return StoreError(f"the database {path} is not encrypted: run `callbrief keys encrypt-db --db {path}` to "
                          "encrypt it (or set encrypt_database = false to keep it plain)")
    if "without a key" in text:
        return StoreError(f"the database {path} is encrypted and no key is set (encrypt_database is false): "
                          f"set it to true and give the key ({keys.KEY_ENV} or a key file)")
    if "Wrong encryption key" in text or "AES tag differs" in text:
        return StoreError(f"the key from {key.source} does not open the database {path}: use the key it was "
                          "written with (or the file is damaged: restore it from a backup)")
    if "Could not read enough bytes" in text or "not a valid DuckDB database file" in text:
        return StoreError(f"the database {path} is damaged (cut short or not a database): restore it from a backup")
    return None


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(m in text for m in _LOCK_MESSAGES)


def _quoted(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _busy(path: Path, wait_seconds: float) -> StoreBusy:
    return StoreBusy(f"database {path.name} is busy: another process held it for more than {wait_seconds:g} s; "
                     "try again in a moment")


@dataclass
class _File:
    """What this process is doing with one file."""

    alias: str | None = None  # the read-only attachment the readers share
    readers: int = 0
    attaching: bool = False  # a reader is attaching it (the others wait for that one)
    writer: bool = False
    waiting_writers: int = 0  # readers let a waiting writer go first, so writes are not starved


class _Attachments:
    """The process's in-memory instance; a file is attached while anyone in the process uses it.
    Every wait, in this process or for another one, ends at the caller's deadline with StoreBusy."""

    def __init__(self) -> None:
        self._base: duckdb.DuckDBPyConnection | None = None
        self._cond = threading.Condition()
        self._files: dict[Path, _File] = {}

    def _base_connection(self) -> duckdb.DuckDBPyConnection:
        with self._cond:
            if self._base is None:
                self._base = offline_instance()
            return self._base

    def _execute(self, sql: str, params: list | None = None) -> None:
        """On a cursor of its own: threads attach and detach at once, and one connection object
        must not be used by two threads."""
        cursor = self._base_connection().cursor()
        try:
            cursor.execute(sql, params or [])
        finally:
            cursor.close()

    def _attach(self, path: Path, read_only: bool, deadline: float, wait_seconds: float) -> str:
        """Attach the file, retrying with jittered backoff while another process holds it."""
        alias = f"cb_{uuid.uuid4().hex[:12]}"
        key = _database_key(path)
        options = [*(["ENCRYPTION_KEY ?"] if key.key else []), *(["READ_ONLY"] if read_only else [])]
        mode = f" ({', '.join(options)})" if options else ""
        delay = 0.01
        while True:
            try:
                self._execute(f"ATTACH {_quoted(path)} AS {alias}{mode}", [key.key] if key.key else None)
                return alias
            except duckdb.Error as exc:
                if not _is_lock_error(exc):
                    raise _key_error(exc, path, key) or exc
                if time.monotonic() > deadline:
                    raise _busy(path, wait_seconds) from None
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.1)  # short polls: a batch frees the file between calls

    def _wait(self, ready, deadline: float, path: Path, wait_seconds: float) -> None:
        """Wait (holding the condition) until `ready()`, at most until the deadline."""
        if not self._cond.wait_for(ready, timeout=max(0.0, deadline - time.monotonic())):
            raise _busy(path, wait_seconds)

    def _enter_reader(self, path: Path, deadline: float, wait_seconds: float) -> str:
        with self._cond:
            f = self._files.setdefault(path, _File())
            self._wait(lambda: not f.writer and not f.waiting_writers and not f.attaching, deadline, path, wait_seconds)
            if f.alias is not None:
                f.readers += 1
                return f.alias
            f.attaching = True
        try:  # outside the lock: the other threads go on while another process holds the file
            alias = self._attach(path, True, deadline, wait_seconds)
        except BaseException:
            with self._cond:
                f.attaching = False
                self._cond.notify_all()
            raise
        with self._cond:
            f.attaching, f.alias = False, alias
            f.readers += 1
            self._cond.notify_all()
            return alias

    def _leave_reader(self, path: Path) -> None:
        with self._cond:
            f = self._files[path]
            f.readers -= 1
            if f.readers == 0:
                try:
                    self._execute(f"DETACH {f.alias}")
                    f.alias = None
                except duckdb.Error:  # still attached: the next reader uses it, a writer detaches it
                    pass
            self._cond.notify_all()

    def _enter_writer(self, path: Path, deadline: float, wait_seconds: float) -> str:
        with self._cond:
            f = self._files.setdefault(path, _File())
            f.waiting_writers += 1
            try:
                self._wait(lambda: not f.writer and not f.readers and not f.attaching, deadline, path, wait_seconds)
            finally:
                f.waiting_writers -= 1
            if f.alias is not None:  # a read-only attachment whose detach failed earlier
                self._execute(f"DETACH {f.alias}")
                f.alias = None
            f.writer = True
        try:
            return self._attach(path, False, deadline, wait_seconds)
        except BaseException:
            self._leave_writer(path, None)
            raise

    def _leave_writer(self, path: Path, alias: str | None) -> None:
        try:
            if alias is not None:
                self._execute(f"DETACH {alias}")
        finally:
            with self._cond:
                self._files[path].writer = False
                self._cond.notify_all()

    @contextmanager
    def attached(self, path: Path, read_only: bool, wait_seconds: float) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on `path` (its own connection to the process's instance, for this thread)."""
        deadline = time.monotonic() + wait_seconds
        alias = (self._enter_reader if read_only else self._enter_writer)(path, deadline, wait_seconds)
        try:
            cursor = self._base_connection().cursor()
            try:
                cursor.execute(f"USE {alias}")
                yield cursor
            finally:
                cursor.close()
        finally:
            if read_only:
                self._leave_reader(path)
            else:
                self._leave_writer(path, alias)


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
        if not read_only:
            check_free_space(self.path)
        try:
            with _FILES.attached(self.path, read_only, self.wait_seconds) as cursor:
                held[self.path] = (cursor, read_only)
                try:
                    yield cursor
                finally:
                    del held[self.path]
        except (duckdb.Error, OSError) as exc:
            if (named := explained(exc, self.path)) is not None:
                raise named from exc
            raise

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
                try:
                    conn.execute("ROLLBACK")
                except duckdb.Error:  # the failure already ended the transaction: its own error is the one to tell
                    pass
                raise

    def query(self, sql: str, params: list | dict | None = None) -> pd.DataFrame:
        """A read, on the read-only attachment the process's readers share (or this thread's session)."""
        with self.reading() as conn:
            return conn.execute(sql, params or []).df()

    def rows(self, sql: str, params: list | dict | None = None) -> list[dict]:
        """A read as a list of dicts (see `query`)."""
        with self.reading() as conn:
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
