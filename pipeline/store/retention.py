"""Retention's SQL (pipeline/run/retention.py decides and reports): which calls are past a
period, which of them an open case or an open QA sample still needs, and the purge itself, in
one transaction with its audit row.

A call's age is its start (calls.started_at, the centre's wall-clock time as the manifest gave
it); a call without one is aged by processed_at (naive UTC). Purged calls are marked
(calls.audio_purged_at, calls.text_purged_at), so a second purge finds nothing more to do.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb

from pipeline.store.audit import append_audit
from pipeline.store.callbacks import CLOSING_OUTCOMES, attempts_sql, complaint_sql, outcomes_sql
from pipeline.store.calls import utcnow

# What each kind of raw data is, in the database: (count, change) per table, over the calls in _ids.
AUDIO_PATHS = (
    ("calls.path", "SELECT count(*) FROM calls WHERE call_id IN (SELECT id FROM _ids) AND path IS NOT NULL",
     "UPDATE calls SET path = NULL WHERE call_id IN (SELECT id FROM _ids) AND path IS NOT NULL"),
    ("call_paths", "SELECT count(*) FROM call_paths WHERE call_id IN (SELECT id FROM _ids)",
     "DELETE FROM call_paths WHERE call_id IN (SELECT id FROM _ids)"),
)
RAW_TEXT = (
    ("words", "SELECT count(*) FROM words WHERE call_id IN (SELECT id FROM _ids)",
     "DELETE FROM words WHERE call_id IN (SELECT id FROM _ids)"),
    ("turns.text", "SELECT count(*) FROM turns WHERE call_id IN (SELECT id FROM _ids) AND text IS NOT NULL",
     "UPDATE turns SET text = NULL WHERE call_id IN (SELECT id FROM _ids) AND text IS NOT NULL"),
    # What the vocabulary correction changed: Whisper's own words, before and after.
    ("corrections", "SELECT count(*) FROM corrections WHERE call_id IN (SELECT id FROM _ids)",
     "DELETE FROM corrections WHERE call_id IN (SELECT id FROM _ids)"),
)
MARKS = {"audio": "audio_purged_at", "text": "text_purged_at"}

# A call is past a period when it started before the cutoff (local) or, without a start, was
# processed before it (UTC).
_OLD = "((started_at IS NOT NULL AND started_at < ?) OR (started_at IS NULL AND processed_at < ?))"


@dataclass(frozen=True)
class Cutoff:
    local: datetime  # naive, the centre's wall-clock time: compared with calls.started_at
    utc: datetime  # naive UTC: compared with calls.processed_at


@dataclass
class PurgeCounts:
    """What a purge removed (or, in a dry run, would remove): call ids and table counts per kind,
    and the calls it kept because a case or QA sample still needs them."""
    calls: dict[str, list[str]] = field(default_factory=dict)  # kind -> call ids
    tables: dict[str, int] = field(default_factory=dict)  # "words" -> rows, "turns.text" -> texts, ...
    kept: list[str] = field(default_factory=list)
    kept_qa: list[str] = field(default_factory=list)
    kept_cases: list[str] = field(default_factory=list)
    recording_files: list[tuple[str, str]] = field(default_factory=list)  # (path, sha256) of purged calls


def protected_calls(conn: duckdb.DuckDBPyConnection, complaint_level: float, timezone: str) -> tuple[set, set]:
    """(calls in a QA sample not every call of which has a review yet, calls of a customer whose
    complaint is open). An open complaint is as on the handlers' worklist (web/store.py): a
    complaint call (not a callback call, at or above the complaint level, or flagged) with no callback
    that closed it (resolved, escalated; through the form, or a recorded callback call of its case found
    resolved) after the customer's latest one; every call of that customer is kept (their briefing reads them all)."""
    in_samples = {r[0] for r in conn.execute(
        "SELECT call_id FROM qa_samples WHERE sample_id IN (SELECT s.sample_id FROM qa_samples s "
        "WHERE NOT EXISTS (SELECT 1 FROM qa_reviews r WHERE r.sample_id = s.sample_id AND r.call_id = s.call_id))"
    ).fetchall()}
    in_cases = {r[0] for r in conn.execute(f"""
        WITH complaint AS (
            SELECT c.customer_id, max(c.started_at) AS last_complaint, arg_max(c.case_id, c.started_at) AS case_id
            FROM calls c LEFT JOIN escalation e USING (call_id)
            WHERE c.status = 'ok' AND c.customer_id IS NOT NULL AND {complaint_sql(complaint_level)}
            GROUP BY c.customer_id),
        done AS (SELECT a.customer_id, max(a.done_at) AS done_at FROM {attempts_sql("$tz")} a
                 JOIN complaint p USING (customer_id)
                 WHERE a.outcome IN ({outcomes_sql(CLOSING_OUTCOMES)})
                   AND (a.case_id IS NULL OR p.case_id IS NULL OR a.case_id = p.case_id) GROUP BY a.customer_id),
        open_case AS (
            SELECT p.customer_id FROM complaint p LEFT JOIN done d USING (customer_id)
            WHERE d.done_at IS NULL OR timezone('UTC', d.done_at) < timezone($tz, p.last_complaint))
        SELECT call_id FROM calls WHERE customer_id IN (SELECT customer_id FROM open_case)""",
        {"tz": timezone}).fetchall()}
    return in_samples, in_cases


def _old_calls(conn: duckdb.DuckDBPyConnection, cutoff: Cutoff, mark: str | None = None) -> list[str]:
    """Calls past the cutoff (and, with `mark`, not purged of that kind yet)."""
    unmarked = f" AND {mark} IS NULL" if mark else ""
    return [r[0] for r in conn.execute(f"SELECT call_id FROM calls WHERE {_OLD}{unmarked} ORDER BY call_id",
                                       [cutoff.local, cutoff.utc]).fetchall()]


def _apply(conn: duckdb.DuckDBPyConnection, ids: list[str], statements, mark: str, now: datetime,
           dry_run: bool) -> dict[str, int]:
    counts = {}
    conn.execute("CREATE OR REPLACE TEMP TABLE _ids AS SELECT unnest(?::VARCHAR[]) AS id", [ids])
    try:
        for name, count, change in statements:
            counts[name] = int(conn.execute(count).fetchone()[0])
            if not dry_run and counts[name]:
                conn.execute(change)
        if not dry_run:
            conn.execute(f"UPDATE calls SET {mark} = ? WHERE call_id IN (SELECT id FROM _ids)", [now])
    finally:
        conn.execute("DROP TABLE IF EXISTS _ids")
    return counts


class RetentionTable:
    """Mixed into `Store`: the purge of raw data past its period."""

    def purge_raw_data(self, audio: Cutoff, text: Cutoff, redacted: Cutoff, complaint_level: float,
                       timezone: str, dry_run: bool = False, audit_detail=None) -> tuple[PurgeCounts, list[str]]:
        """Forget the recording paths of calls past `audio`, delete the raw words and turn texts
        of calls past `text`, but of calls a case or a QA sample still needs; in one transaction
        with its audit row (`audit_detail(counts)` -> the row's detail; none in a dry run). Also
        returns the calls past `redacted` (not protected) whose redacted audio files may go."""
        found = PurgeCounts()
        with self.transaction() as conn:
            in_samples, in_cases = protected_calls(conn, complaint_level, timezone)
            protected = in_samples | in_cases
            now = utcnow()
            due = {"audio": _old_calls(conn, audio, MARKS["audio"]), "text": _old_calls(conn, text, MARKS["text"])}
            redacted_due = _old_calls(conn, redacted)
            kept = sorted({c for ids in due.values() for c in ids} & protected)
            found.kept, found.kept_qa, found.kept_cases = kept, sorted(set(kept) & in_samples), sorted(set(kept) & in_cases)
            for kind, statements in (("audio", AUDIO_PATHS), ("text", RAW_TEXT)):
                ids = [c for c in due[kind] if c not in protected]
                found.calls[kind] = ids
                if kind == "audio" and ids:  # read before they are forgotten: the files may be deleted too
                    found.recording_files = [tuple(r) for r in conn.execute(
                        "SELECT path, sha256 FROM calls WHERE call_id IN (SELECT unnest(?)) AND path IS NOT NULL "
                        "UNION SELECT path, sha256 FROM call_paths WHERE call_id IN (SELECT unnest(?)) ORDER BY 1",
                        [ids, ids]).fetchall()]
                found.tables.update(_apply(conn, ids, statements, MARKS[kind], now, dry_run))
            if not dry_run and audit_detail is not None and (found.calls["audio"] or found.calls["text"]):
                append_audit(conn, None, "system", "purge_raw_data", "retention", audit_detail(found))
        return found, [c for c in redacted_due if c not in protected]

    def forget_file_hashes(self, paths: list[str]) -> int:
        """Planning's cached hashes of files that were deleted."""
        if not paths:
            return 0
        with self.transaction() as conn:
            return len(conn.execute("DELETE FROM file_hashes WHERE path IN (SELECT unnest(?)) RETURNING 1",
                                    [paths]).fetchall())

    def purged_files(self) -> set[tuple[str, int, int]]:
        """(path, size, mtime in ns) of files planning hashed whose audio is a purged call's: the
        intake leaves them without reading them again (the paths are planning's cache of what the
        folder holds, pipeline/intake/ingest.py, not a call's)."""
        return {(r[0], int(r[1]), int(r[2])) for r in self.query(
            "SELECT path, size, mtime_ns FROM file_hashes WHERE sha256 IN (SELECT sha256 FROM calls "
            "WHERE audio_purged_at IS NOT NULL OR text_purged_at IS NOT NULL)").itertuples(index=False)}
