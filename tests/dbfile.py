"""A test's own reads and writes of a database file, through the store's one connection layer
(the file is encrypted: a bare duckdb.connect cannot open it)."""
from __future__ import annotations

from pathlib import Path

from pipeline.store.connect import Database


def query(db: Path, sql: str, params=None) -> list[tuple]:
    with Database(db, read_only=True).reading() as conn:
        return conn.execute(sql, params or []).fetchall()


def execute(db: Path, *statements: str | tuple[str, list]) -> None:
    """Each statement (SQL, or SQL and its parameters) in one transaction."""
    with Database(db).transaction() as conn:
        for statement in statements:
            sql, params = statement if isinstance(statement, tuple) else (statement, [])
            conn.execute(sql, params)


# A process holding the file: `python -c HOLD <db> <seconds> [write]` prints "held" once it has it.
HOLD = """
import sys, time
from pipeline.store.connect import Database
db = Database(sys.argv[1], read_only=len(sys.argv) < 4, wait_seconds=120)
with (db.reading() if db.read_only else db.session()):  # retries while the batch writes a call
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""
