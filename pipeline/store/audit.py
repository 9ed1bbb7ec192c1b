"""The audit log: append-only and chained.

Each row of `audit_log` gets the next `id` (1, 2, 3 ...) and a `hash`: SHA-256 over the previous
row's hash and the row's own content (id, time, user, role, action, target, detail, client). The
last row's id and hash are also kept in `audit_head`. So a row that is edited breaks its own hash
(or, if its hash was recomputed, the next row's), a row deleted from the middle leaves a gap in
the ids, and rows deleted from the end leave the head pointing past the last row: `verify_audit`
(`callbrief audit verify`) finds each, naming the first broken row.

Rows are only ever added here, in one transaction that reads the head and appends after it
(nothing in the product updates or deletes an audit row; a unit test checks the code for it).
Rows written before the chain existed are chained once, in the order they were logged, when a
writer first opens the file (`chain_legacy_rows`, from pipeline.store.schema.migrate).

A chain shows edits made by anyone who cannot also recompute every hash after the edit; someone
who can write the file can do that too. `verify_audit` returns the last hash: kept somewhere else
(a ticket, the nightly run's log), it pins the log up to that row.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

import duckdb

from pipeline.store.calls import utcnow

GENESIS = "0" * 64  # the "previous hash" of row 1
CONTENT = ("id", "logged_at", "username", "role", "action", "target", "detail", "client")


def row_hash(previous: str, row: dict) -> str:
    """SHA-256 (hex) of the previous row's hash and this row's content, in a fixed form."""
    content = [row[c].isoformat() if isinstance(row[c], datetime) else row[c] for c in CONTENT]
    text = previous + "\n" + json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditCheck:
    """What `verify_audit` found: `ok`, how many rows, the last hash; or the first broken row and why."""
    ok: bool
    rows: int
    last_hash: str | None = None
    broken_id: int | None = None
    reason: str = ""


def chain_legacy_rows(conn: duckdb.DuckDBPyConnection) -> int:
    """Chain the rows of a log written before the chain existed (none has a hash and there is no
    head yet), in the order they were logged; returns how many. Once a head exists, a row without
    a hash was not written by the store, and is left for `verify_audit` to report."""
    if conn.execute("SELECT 1 FROM audit_head").fetchone() or \
            conn.execute("SELECT 1 FROM audit_log WHERE hash IS NOT NULL OR id IS NOT NULL LIMIT 1").fetchone():
        return 0
    cur = conn.execute("SELECT rowid, logged_at, username, role, action, target, detail, client FROM audit_log "
                       "ORDER BY logged_at, rowid")
    names = [d[0] for d in cur.description]
    found = [dict(zip(names, r)) for r in cur.fetchall()]
    if not found:
        return 0
    previous, hashes = GENESIS, []
    for number, row in enumerate(found, start=1):
        row["id"] = number
        previous = row_hash(previous, row)
        hashes.append(previous)
    conn.execute("UPDATE audit_log SET id = d.id, hash = d.hash FROM (SELECT unnest(?::BIGINT[]) AS rid, "
                 "unnest(?::BIGINT[]) AS id, unnest(?::VARCHAR[]) AS hash) d WHERE audit_log.rowid = d.rid",
                 [[r["rowid"] for r in found], [r["id"] for r in found], hashes])
    conn.execute("INSERT INTO audit_head VALUES (?, ?)", [len(found), previous])
    return len(found)


def append_audit(conn: duckdb.DuckDBPyConnection, username: str | None, role: str | None, action: str,
                 target: str, detail: str = "", client: str | None = None) -> None:
    """Append one chained row inside the caller's transaction (so a change and its audit row
    are committed together, or neither is)."""
    head = conn.execute("SELECT id, hash FROM audit_head").fetchone() or \
        conn.execute("SELECT id, hash FROM audit_log WHERE id IS NOT NULL ORDER BY id DESC LIMIT 1").fetchone()
    last_id, previous = head if head else (0, GENESIS)
    row = {"id": last_id + 1, "logged_at": utcnow(), "username": username, "role": role, "action": action,
           "target": target, "detail": detail, "client": client}
    digest = row_hash(previous, row)
    conn.execute(f"INSERT INTO audit_log ({', '.join(CONTENT)}, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 [row[c] for c in CONTENT] + [digest])
    conn.execute("DELETE FROM audit_head")  # one row: the chain's last id and hash
    conn.execute("INSERT INTO audit_head VALUES (?, ?)", [row["id"], digest])


class AuditTable:
    """Mixed into `Store`: the audit log."""

    def audit(self, username: str | None, role: str | None, action: str, target: str, detail: str = "",
              client: str | None = None) -> None:
        """Append one row: who did what to which record, and from where; chained to the row before."""
        with self.transaction() as conn:
            append_audit(conn, username, role, action, target, detail, client)

    def verify_audit(self) -> AuditCheck:
        """Recompute the chain from row 1: OK with the row count and last hash, or the first broken
        row (edited, deleted, added outside the store, or missing from the end) and why."""
        with self.reading() as conn:
            head = conn.execute("SELECT id, hash FROM audit_head").fetchall()
            cur = conn.execute(f"SELECT {', '.join(CONTENT)}, hash FROM audit_log "
                               "ORDER BY id NULLS LAST, logged_at, rowid")
            names = [d[0] for d in cur.description]
            previous, expected, count = GENESIS, 1, 0
            while batch := cur.fetchmany(10_000):
                for values in batch:
                    row = dict(zip(names, values))
                    if row["id"] is None or row["hash"] is None:
                        return AuditCheck(False, count, broken_id=row["id"], reason=(
                            f"a row without a chain id or hash (logged at {row['logged_at']}, action "
                            f"{row['action']!r}) was added outside the store"))
                    if row["id"] < expected:
                        return AuditCheck(False, count, broken_id=row["id"], reason=f"row {row['id']} appears twice")
                    if row["id"] > expected:
                        return AuditCheck(False, count, broken_id=expected, reason=(
                            f"row {expected} is missing (deleted): the ids jump from {expected - 1} to {row['id']}"))
                    if row_hash(previous, row) != row["hash"]:
                        return AuditCheck(False, count, broken_id=row["id"], reason=(
                            f"row {row['id']} does not match its hash: it, or the row before it, was changed"))
                    previous, expected, count = row["hash"], expected + 1, count + 1
        if len(head) > 1:
            return AuditCheck(False, count, broken_id=count + 1, reason="the chain's head was written twice")
        if count and not head:
            return AuditCheck(False, count, broken_id=count + 1, reason="the chain's head record is missing")
        if head and head[0][0] > count:
            return AuditCheck(False, count, broken_id=count + 1, reason=(
                f"rows {count + 1} to {head[0][0]} are missing (deleted from the end of the log)"))
        if head and tuple(head[0]) != (count, previous):
            return AuditCheck(False, count, broken_id=count, reason="the chain's head does not match the last row")
        return AuditCheck(True, count, None if not count else previous)
