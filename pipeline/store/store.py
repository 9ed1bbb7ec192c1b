"""DuckDB schema and I/O. Each call is written in one transaction.

Re-processing a call replaces its rows (delete + insert inside the transaction), so a rerun
never duplicates or loses rows. Bulk rows go in from pandas frames BY NAME.

Many users, one file: DuckDB lets one process write a file, and while it has the file open no
other process can open it at all, not even to read. So nobody holds the file between
operations: a `Store` opens a connection for each short operation (one call's transaction, one
briefing's reads) and closes it, and opening retries with backoff while another process holds
the lock. A handler's briefing or a QA sample therefore runs while the nightly batch writes,
waiting at most for one call's write (tens of milliseconds), never for the batch.
"""
from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import duckdb
import pandas as pd

from pipeline.config.paths import DEFAULT_DB  # noqa: F401 - the default file
from pipeline.version import __version__ as PIPELINE_VERSION
from pipeline.analysis.redact import redact_turns
from pipeline.records import CallResult, RunRecord


SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    call_id VARCHAR PRIMARY KEY,
    customer_id VARCHAR, agent_id VARCHAR, case_id VARCHAR, started_at TIMESTAMP,
    path VARCHAR, sha256 VARCHAR, size_bytes BIGINT,
    duration DOUBLE, channels INTEGER, sample_rate INTEGER, channel_layout VARCHAR,
    language VARCHAR, language_probability DOUBLE,
    status VARCHAR NOT NULL CHECK (status IN ('ok', 'failed')), error VARCHAR,
    engine VARCHAR, model_id VARCHAR, pipeline_version VARCHAR,
    dropped_hallucinations INTEGER, stage_seconds JSON,
    diarization_method VARCHAR, n_speakers INTEGER, roles JSON,
    processed_at TIMESTAMP, run_id VARCHAR,
    error_stage VARCHAR, error_class VARCHAR, attempts INTEGER, settings_hash VARCHAR
);
CREATE TABLE IF NOT EXISTS words (
    call_id VARCHAR, seq INTEGER, segment INTEGER, channel INTEGER,
    start DOUBLE, "end" DOUBLE, text VARCHAR, probability DOUBLE, speaker VARCHAR, role VARCHAR,
    PRIMARY KEY (call_id, seq)
);
CREATE TABLE IF NOT EXISTS turns (
    call_id VARCHAR, seq INTEGER, role VARCHAR, speaker VARCHAR,
    start DOUBLE, "end" DOUBLE, text VARCHAR, redacted_text VARCHAR, n_words INTEGER, score DOUBLE,
    score_parts JSON, signals JSON,
    PRIMARY KEY (call_id, seq)
);
CREATE TABLE IF NOT EXISTS escalation (
    call_id VARCHAR PRIMARY KEY, call_score DOUBLE, trend VARCHAR, quarter_scores JSON,
    peak_time DOUBLE, flags JSON, evidence JSON, de_escalation JSON, plot_path VARCHAR
);
CREATE TABLE IF NOT EXISTS dynamics (
    call_id VARCHAR PRIMARY KEY,
    agent_talk_s DOUBLE, customer_talk_s DOUBLE, silence_s DOUBLE,
    longest_silence_s DOUBLE, longest_silence_at DOUBLE, overlap_s DOUBLE,
    agent_interruptions INTEGER, customer_interruptions INTEGER,
    agent_rate DOUBLE, customer_rate DOUBLE, rate_unit VARCHAR
);
CREATE TABLE IF NOT EXISTS summaries (
    call_id VARCHAR PRIMARY KEY, language VARCHAR, category VARCHAR, outcome VARCHAR,
    demands JSON, promises JSON, deadline_promises JSON, open_items JSON, key_quotes JSON, summary VARCHAR
);
CREATE TABLE IF NOT EXISTS briefings (
    customer_id VARCHAR, created_at TIMESTAMP, language VARCHAR, n_calls INTEGER,
    markdown VARCHAR, json JSON, PRIMARY KEY (customer_id, created_at)
);
CREATE TABLE IF NOT EXISTS qa_samples (
    sample_id VARCHAR, call_id VARCHAR, agent_id VARCHAR, stratum VARCHAR, reason VARCHAR, seed BIGINT,
    plan JSON, drawn_at TIMESTAMP, scorecard JSON, PRIMARY KEY (call_id)  -- a call is sampled once, ever
);
CREATE TABLE IF NOT EXISTS qa_reviews (
    sample_id VARCHAR, call_id VARCHAR, reviewer VARCHAR, reviewed_at TIMESTAMP, scores JSON, comment VARCHAR,
    PRIMARY KEY (call_id, reviewer)  -- one review per reviewer per call; a second one replaces it
);
CREATE TABLE IF NOT EXISTS file_hashes (  -- planning reads a file again only if its size or mtime changed
    path VARCHAR PRIMARY KEY, size BIGINT, mtime_ns BIGINT, sha256 VARCHAR
);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, flow VARCHAR, input_dir VARCHAR, engine VARCHAR, model_id VARCHAR,
    started_at TIMESTAMP, finished_at TIMESTAMP,
    n_found INTEGER, n_processed INTEGER, n_skipped INTEGER, n_failed INTEGER, n_missing INTEGER,
    audio_seconds DOUBLE, wall_seconds DOUBLE, pipeline_version VARCHAR,
    status VARCHAR, message VARCHAR, n_rejected INTEGER, pid INTEGER, host VARCHAR,
    heartbeat_at TIMESTAMP, briefings_refreshed BOOLEAN
);
-- Alerts (pipeline/alerts.py): alert_id is derived from call + kind, so a rerun never duplicates.
CREATE TABLE IF NOT EXISTS alerts (
    alert_id VARCHAR PRIMARY KEY, kind VARCHAR, customer_id VARCHAR, call_id VARCHAR, case_id VARCHAR,
    agent_id VARCHAR, call_started_at TIMESTAMP, evidence_time DOUBLE, evidence VARCHAR, due_at TIMESTAMP,
    raised_at TIMESTAMP
);
-- The outbox: one row per alert and channel; delivery_id is the idempotency key receivers see.
CREATE TABLE IF NOT EXISTS alert_deliveries (
    delivery_id VARCHAR PRIMARY KEY, alert_id VARCHAR, channel VARCHAR,
    status VARCHAR NOT NULL CHECK (status IN ('pending', 'sending', 'delivered')),
    attempts INTEGER, next_attempt_at TIMESTAMP, claimed_at TIMESTAMP, delivered_at TIMESTAMP,
    last_error VARCHAR, created_at TIMESTAMP
);
-- Agent voiceprints (biometric: deletable with `callbrief agents forget`, never exported).
-- One row per source (an enrolment file, or one stereo call's agent channel).
CREATE TABLE IF NOT EXISTS voiceprints (
    agent_id VARCHAR, source VARCHAR, embedding FLOAT[], seconds DOUBLE, added_at TIMESTAMP,
    PRIMARY KEY (agent_id, source)
);
-- What the vocabulary correction changed in Whisper's text (pipeline/vocabulary.py), for review.
CREATE TABLE IF NOT EXISTS corrections (
    call_id VARCHAR, seq INTEGER, start DOUBLE, "end" DOUBLE, original VARCHAR, corrected VARCHAR, kind VARCHAR,
    PRIMARY KEY (call_id, seq)
);
"""

# Columns added after a table was first released: added to existing databases on open.
ADDED_COLUMNS = (
    ("calls", "error_stage", "VARCHAR"), ("calls", "error_class", "VARCHAR"), ("calls", "attempts", "INTEGER"),
    ("calls", "settings_hash", "VARCHAR"),
    ("runs", "status", "VARCHAR"), ("runs", "message", "VARCHAR"), ("runs", "n_rejected", "INTEGER"),
    ("runs", "pid", "INTEGER"), ("runs", "host", "VARCHAR"), ("runs", "heartbeat_at", "TIMESTAMP"),
    ("runs", "briefings_refreshed", "BOOLEAN"),
    # How many speakers were chosen and why, how roles were decided (confidence, voiceprint similarity).
    ("calls", "speaker_evidence", "JSON"),
    # The language each turn was transcribed in (a call may switch language; calls.language is the main one).
    ("turns", "language", "VARCHAR"),
    # How sure a correction was: phonetic similarity with bonuses (homophone), 1.0 (hotline), or the log
    # probability Whisper gained with the term (rescored).
    ("corrections", "score", "DOUBLE"),
)

PER_CALL_TABLES = ("words", "turns", "dynamics", "escalation", "summaries", "corrections")
# Another process holding the file shows as one of these; anything else is a real error.
_LOCK_MESSAGES = ("Could not set lock", "Conflicting lock", "different configuration")


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class StoreBusy(RuntimeError):
    """Another process held the database for longer than we were willing to wait."""


class Store:
    """One DuckDB file, opened briefly for each operation (see the module docstring)."""

    def __init__(self, path: Path | str = DEFAULT_DB, read_only: bool = False, wait_seconds: float = 60.0):
        self.path = Path(path)
        self.read_only = read_only
        self.wait_seconds = wait_seconds
        self._local = threading.local()
        if read_only:
            if not self.path.exists():
                raise FileNotFoundError(f"no database at {self.path}: run `callbrief run` first")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.session() as conn:
                conn.execute(SCHEMA)
                for table, column, kind in ADDED_COLUMNS:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")

    def _open(self) -> duckdb.DuckDBPyConnection:
        """Connect, retrying with jittered backoff while another process holds the file."""
        deadline, delay = time.monotonic() + self.wait_seconds, 0.01
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=self.read_only)
            except (duckdb.IOException, duckdb.ConnectionException) as exc:
                if not any(m in str(exc) for m in _LOCK_MESSAGES):
                    raise
                if time.monotonic() > deadline:
                    raise StoreBusy(f"database {self.path} is busy: another process held it for more than "
                                    f"{self.wait_seconds:.0f} s") from None
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.2)

    @contextmanager
    def session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One connection for a group of operations in this thread (nested sessions share it)."""
        held = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        conn = self._local.conn = self._open()
        try:
            yield conn
        finally:
            self._local.conn = None
            conn.close()

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

    def close(self) -> None:
        """Nothing is held between operations; kept so `with Store(...)` reads naturally."""

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- idempotency -------------------------------------------------------------------

    def processed_keys(self) -> dict[str, "StoredCall"]:
        """call_id -> what is stored for it: the skip key, its status and how often it was tried."""
        rows = self.query("SELECT call_id, sha256, settings_hash, status, coalesce(attempts, 1) "
                          "FROM calls").itertuples(index=False)
        return {r[0]: StoredCall((r[1], r[2]), r[3], int(r[4])) for r in rows}

    # --- writes ------------------------------------------------------------------------

    def write_call(self, result: CallResult, run_id: str | None = None, attempts: int = 1,
                   settings_hash: str | None = None) -> None:
        """Replace everything stored for this call, in one transaction. `attempts` counts the
        tries of a failed call with the same contents (failed calls are retried up to a limit)."""
        rec, tr = result.recording, result.transcript
        meta = rec.metadata
        call_row = {
            "call_id": rec.call_id, "customer_id": meta.customer_id, "agent_id": meta.agent_id,
            "case_id": meta.case_id, "started_at": meta.started_at, "path": str(rec.path), "sha256": rec.sha256,
            "size_bytes": rec.size_bytes, "duration": rec.duration, "channels": rec.channels,
            "sample_rate": rec.sample_rate, "channel_layout": meta.channel_layout,
            "language": tr.language if tr else None,
            "language_probability": tr.language_probability if tr else None,
            "status": result.status, "error": result.error,
            "engine": tr.engine if tr else None, "model_id": tr.model_id if tr else None,
            "pipeline_version": PIPELINE_VERSION,
            "dropped_hallucinations": len(tr.dropped) if tr else None,
            "stage_seconds": json.dumps({t.stage: round(t.seconds, 3) for t in result.timings}),
            "diarization_method": result.diarization.method if result.diarization else None,
            "n_speakers": result.diarization.n_speakers if result.diarization else None,
            "roles": json.dumps(result.roles) if result.roles else None,
            "speaker_evidence": json.dumps(result.speaker_evidence) if result.speaker_evidence else None,
            "processed_at": utcnow(), "run_id": run_id,
            "error_stage": result.error_stage, "error_class": result.error_class, "attempts": attempts,
            "settings_hash": settings_hash,
        }
        words = self._word_rows(result)
        turns = self._turn_rows(result)
        escalation = self._escalation_row(result) if result.escalation else None
        with self.transaction() as conn:
            for table in ("calls", *PER_CALL_TABLES):
                conn.execute(f"DELETE FROM {table} WHERE call_id = ?", [rec.call_id])
            self._insert(conn, "calls", pd.DataFrame([call_row]))
            if words:
                self._insert(conn, "words", pd.DataFrame(words))
            if turns:
                self._insert(conn, "turns", pd.DataFrame(turns))
            if result.dynamics:
                self._insert(conn, "dynamics", pd.DataFrame([{"call_id": rec.call_id, **asdict(result.dynamics)}]))
            if escalation:
                self._insert(conn, "escalation", pd.DataFrame([escalation]))
            if result.summary:
                self._insert(conn, "summaries", pd.DataFrame([self._summary_row(result)]))
            if result.corrections:
                self._insert(conn, "corrections", pd.DataFrame([
                    {"call_id": rec.call_id, "seq": c.seq, "start": c.start, "end": c.end, "original": c.original,
                     "corrected": c.corrected, "kind": c.kind, "score": c.score} for c in result.corrections]))
            if result.agent_voice and meta.agent_id:  # the agent channel of a stereo call
                from pipeline.speakers.voiceprints import add_source

                add_source(conn, meta.agent_id, f"call:{rec.call_id}", *result.agent_voice)

    def known_hashes(self) -> dict[tuple[str, int, int], str]:
        rows = self.query("SELECT path, size, mtime_ns, sha256 FROM file_hashes").itertuples(index=False)
        return {(r[0], int(r[1]), int(r[2])): r[3] for r in rows}

    def remember_hashes(self, hashed: list[tuple[str, int, int, str]]) -> None:
        if hashed:
            frame = pd.DataFrame(hashed, columns=["path", "size", "mtime_ns", "sha256"])
            with self.transaction() as conn:
                conn.register("_hashes", frame)
                conn.execute("INSERT OR REPLACE INTO file_hashes SELECT * FROM _hashes")
                conn.unregister("_hashes")

    # --- runs: a row when a run starts, completed at its end; a killed run is found later ---

    def start_run(self, run: RunRecord) -> None:
        self.record_run(run, status="running")

    def record_run(self, run: RunRecord, status: str | None = None) -> None:
        row = {**run.__dict__, "status": status or run.status, "pipeline_version": PIPELINE_VERSION,
               "pid": os.getpid(), "host": socket.gethostname(), "heartbeat_at": utcnow()}
        with self.transaction() as conn:
            refreshed = conn.execute("SELECT briefings_refreshed FROM runs WHERE run_id = ?", [run.run_id]).fetchone()
            conn.execute("DELETE FROM runs WHERE run_id = ?", [run.run_id])
            row["briefings_refreshed"] = bool(refreshed and refreshed[0])
            self._insert(conn, "runs", pd.DataFrame([row]))

    def heartbeat(self, run_id: str) -> None:
        with self.session() as conn:
            conn.execute("UPDATE runs SET heartbeat_at = ? WHERE run_id = ?", [utcnow(), run_id])

    def mark_briefings_refreshed(self, run_ids: list[str]) -> None:
        if run_ids:
            with self.session() as conn:
                conn.execute("UPDATE runs SET briefings_refreshed = true WHERE run_id IN (SELECT unnest(?))", [run_ids])

    def mark_interrupted(self, stale_after_s: float = 1800.0) -> list[str]:
        """Runs left 'running' by a process that is gone (killed, machine restarted) become
        'interrupted'. Same host: the process id tells; another host: no heartbeat for
        `stale_after_s`. Returns their run ids."""
        host, now = socket.gethostname(), utcnow()
        running = self.query("SELECT run_id, pid, host, heartbeat_at FROM runs WHERE status = 'running'")
        dead = [r.run_id for r in running.itertuples()
                if (r.host == host and not _alive(r.pid) and r.pid != os.getpid())
                or (r.host != host and (pd.isna(r.heartbeat_at) or (now - r.heartbeat_at).total_seconds() > stale_after_s))]
        if dead:
            with self.session() as conn:
                conn.execute("UPDATE runs SET status = 'interrupted', message = 'the process running it stopped "
                             "before it finished (found by a later run)' WHERE run_id IN (SELECT unnest(?))", [dead])
        return dead

    def customers_to_refresh(self) -> tuple[list[str], list[str]]:
        """Customers with calls written by interrupted runs whose briefings were never refreshed,
        and those runs' ids."""
        runs = self.query("SELECT run_id FROM runs WHERE status = 'interrupted' "
                          "AND NOT coalesce(briefings_refreshed, false)")["run_id"].tolist()
        if not runs:
            return [], []
        customers = self.query("SELECT DISTINCT customer_id FROM calls WHERE status = 'ok' AND customer_id IS NOT NULL "
                               "AND run_id IN (SELECT unnest(?)) ORDER BY 1", [runs])["customer_id"].tolist()
        return customers, runs

    @staticmethod
    def _insert(conn: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
        conn.register("_frame", frame)
        try:
            conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _frame")
        finally:
            conn.unregister("_frame")

    @staticmethod
    def _word_rows(result: CallResult) -> list[dict]:
        if not result.transcript:
            return []
        speakers = result.word_speakers
        flat = []
        for seg_index, seg in enumerate(result.transcript.segments):
            for word in seg.words:
                speaker = speakers[len(flat)] if speakers else None
                flat.append((word, seg_index, seg.channel, speaker))
        flat.sort(key=lambda item: item[0].start)  # stored in time order, whichever stream it came from
        return [{"call_id": result.call_id, "seq": seq, "segment": seg_index, "channel": channel,
                 "start": word.start, "end": word.end, "text": word.text, "probability": word.probability,
                 "speaker": speaker, "role": result.roles.get(speaker) if speaker else None}
                for seq, (word, seg_index, channel, speaker) in enumerate(flat)]

    @staticmethod
    def _turn_rows(result: CallResult) -> list[dict]:
        scores = {t.turn_index: t for t in result.escalation.turns} if result.escalation else {}
        rows = []
        masked = redact_turns(result.turns)  # a number read across two turns is masked in both
        for i, t in enumerate(result.turns):
            scored = scores.get(i)
            signals = None
            if scored:
                f = scored.features
                signals = json.dumps({"z_loudness": round(f.z_loudness, 2), "z_pitch": round(f.z_pitch, 2),
                                      "z_rate": round(f.z_rate, 2), "z_tilt": round(f.z_tilt, 2), "loudness_delta_db": round(f.loudness_delta_db, 1),
                                      "pitch_delta_st": round(f.pitch_delta_st, 1), "terms": list(f.terms),
                                      "categories": list(f.categories), "interrupted": f.interrupted,
                                      "repeat_of": f.repeat_of}, ensure_ascii=False)
            rows.append({"call_id": result.call_id, "seq": i, "role": t.role, "speaker": t.speaker, "start": t.start,
                         "end": t.end, "text": t.text, "redacted_text": masked[i], "n_words": len(t.words),
                         "score": scored.score if scored else None,
                         "score_parts": json.dumps(scored.parts) if scored else None, "signals": signals,
                         "language": t.language})
        return rows

    @staticmethod
    def _summary_row(result: CallResult) -> dict:
        s = result.summary
        dump = lambda quotes: json.dumps([asdict(q) for q in quotes], ensure_ascii=False)  # noqa: E731
        return {"call_id": result.call_id, "language": s.language, "category": s.category, "outcome": s.outcome,
                "demands": dump(s.demands), "promises": dump(s.promises),
                "deadline_promises": dump(s.deadline_promises), "open_items": dump(s.open_items),
                "key_quotes": dump(s.key_quotes), "summary": s.summary}

    def write_briefing(self, customer_id: str, language: str, n_calls: int, markdown: str, payload: str) -> None:
        self.insert_rows("briefings", [{"customer_id": customer_id, "created_at": utcnow(), "language": language,
                                        "n_calls": n_calls, "markdown": markdown, "json": payload}])

    def insert_rows(self, table: str, rows: list[dict]) -> None:
        """Append rows to a table in one transaction."""
        with self.transaction() as conn:
            self._insert(conn, table, pd.DataFrame(rows))

    def _escalation_row(self, result: CallResult) -> dict:
        from pipeline.analysis.escalation import plot_svg

        esc = result.escalation
        plots = self.path.parent / "plots"
        plots.mkdir(parents=True, exist_ok=True)
        plot_path = plots / f"{plot_name(result.call_id)}.svg"
        plot_path.write_text(plot_svg(esc, result.recording.duration or 0, result.call_id), encoding="utf-8")
        return {"call_id": result.call_id, "call_score": esc.call_score, "trend": esc.trend,
                "quarter_scores": json.dumps(esc.quarter_scores), "peak_time": esc.peak_time,
                "flags": json.dumps(esc.flags),
                "evidence": json.dumps([asdict(e) for e in esc.evidence], ensure_ascii=False),
                "de_escalation": json.dumps(esc.de_escalation, ensure_ascii=False), "plot_path": str(plot_path)}

    # --- reads -------------------------------------------------------------------------

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        with self.session() as conn:
            return conn.execute(sql, params or []).df()

    def execute(self, sql: str, params: list | None = None) -> None:
        with self.session() as conn:
            conn.execute(sql, params or [])


@dataclass(frozen=True)
class StoredCall:
    key: tuple[str, str | None]  # (sha256 of the audio, fingerprint of the settings that produced the rows)
    status: str
    attempts: int


def plot_name(call_id: str) -> str:
    """A file name made from a call id that cannot leave the plots folder, unique per id."""
    import hashlib
    import re

    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", str(call_id)).strip("_")[:80] or "call"
    return f"{safe}-{hashlib.sha256(str(call_id).encode()).hexdigest()[:8]}"


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, TypeError, ValueError):
        return False
    except PermissionError:
        return True
    return True
