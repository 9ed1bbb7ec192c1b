"""Encrypting a plain database once (`callbrief keys encrypt-db`), losing nothing.

DuckDB cannot encrypt a file in place: the plain file is copied, every table with its data,
keys, indexes and sequences (`COPY FROM DATABASE`), into a new file attached with the key; the
row counts of every table are compared; only then does the new file take the old one's name.
The plain file is deleted, or kept beside it as `<name>.plain` when asked.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.config import keys
from pipeline.store.connect import StoreError, _is_lock_error, _quoted, check_free_space, explained, offline_instance


@dataclass(frozen=True)
class Encrypted:
    path: Path
    tables: dict[str, int]  # rows per table, the same in the plain and the encrypted file
    kept_plain: Path | None


def _tables(conn: duckdb.DuckDBPyConnection, catalog: str) -> dict[str, int]:
    names = [r[0] for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = ? AND table_type = 'BASE TABLE' "
        "ORDER BY table_name", [catalog]).fetchall()]
    return {name: conn.execute(f'SELECT count(*) FROM {catalog}."{name}"').fetchone()[0] for name in names}


def encrypt_database(path: Path | str, keep_plain: bool = False) -> Encrypted:
    """Encrypt the plain database at `path` with this process's database key (see `keys`)."""
    path = Path(path).resolve()
    if not path.exists():
        raise StoreError(f"no database at {path}")
    try:
        key = keys.database_key()
    except keys.KeyProblem as exc:
        raise StoreError(str(exc)) from None
    if key.key is None:
        raise StoreError("encrypt_database is false: set it to true (and give a key) to encrypt the database")
    check_free_space(path)
    target = path.with_name(path.name + ".encrypting")
    backup = path.with_name(path.name + ".plain")
    for stale in (target, target.with_name(target.name + ".wal")):  # a copy an earlier attempt left
        stale.unlink(missing_ok=True)
    conn = offline_instance()
    try:
        try:  # read-write: the plain file's log is folded in first, and no other process is using it
            conn.execute(f"ATTACH {_quoted(path)} AS plain")
        except duckdb.Error as exc:
            text = str(exc)
            if "encrypted" in text.lower():
                raise StoreError(f"{path} is encrypted already") from None
            if _is_lock_error(exc):
                raise StoreError(f"{path} is in use by another process (a run or the web app): stop it and "
                                 "run this again") from None
            raise explained(exc, path) or exc
        conn.execute("CHECKPOINT plain")
        conn.execute(f"ATTACH {_quoted(target)} AS sealed (ENCRYPTION_KEY ?)", [key.key])
        conn.execute("COPY FROM DATABASE plain TO sealed")
        before, after = _tables(conn, "plain"), _tables(conn, "sealed")
        if before != after:
            raise StoreError(f"the encrypted copy of {path.name} differs from it ({before} rows, copied {after}); "
                             "the plain database is unchanged")
        conn.execute("DETACH sealed")
        conn.execute("DETACH plain")
    except BaseException:
        conn.close()
        target.unlink(missing_ok=True)
        raise
    conn.close()
    os.replace(path, backup)
    os.replace(target, path)
    if not keep_plain:
        backup.unlink()
    return Encrypted(path, after, backup if keep_plain else None)
