"""DuckDB schema and I/O. One writer per database file; each call is written in one transaction.

Re-processing a call replaces its rows (delete + insert inside the transaction), so a rerun
never duplicates or loses rows. Bulk rows go in from pandas frames BY NAME.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd

from . import __version__ as PIPELINE_VERSION
from .redact import redact
from .types import CallResult

DEFAULT_DB = Path(__file__).resolve().parent.parent / "data" / "callbrief.duckdb"

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
    processed_at TIMESTAMP, run_id VARCHAR
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
    sample_id VARCHAR, call_id VARCHAR, reviewer VARCHAR, reviewed_at TIMESTAMP, scores JSON, comment VARCHAR
);
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY, flow VARCHAR, input_dir VARCHAR, engine VARCHAR, model_id VARCHAR,
    started_at TIMESTAMP, finished_at TIMESTAMP,
    n_found INTEGER, n_processed INTEGER, n_skipped INTEGER, n_failed INTEGER, n_missing INTEGER,
    audio_seconds DOUBLE, wall_seconds DOUBLE, pipeline_version VARCHAR
);
-- What the vocabulary correction changed in Whisper's text (pipeline/vocabulary.py), for review.
CREATE TABLE IF NOT EXISTS corrections (
    call_id VARCHAR, seq INTEGER, start DOUBLE, "end" DOUBLE, original VARCHAR, corrected VARCHAR, kind VARCHAR,
    PRIMARY KEY (call_id, seq)
);
"""

PER_CALL_TABLES = ("words", "turns", "dynamics", "escalation", "summaries", "corrections")


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    flow: str
    input_dir: str
    engine: str
    model_id: str
    started_at: datetime
    finished_at: datetime
    n_found: int
    n_processed: int
    n_skipped: int
    n_failed: int
    n_missing: int
    audio_seconds: float
    wall_seconds: float


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Store:
    """The single writer of one DuckDB file."""

    def __init__(self, path: Path | str = DEFAULT_DB, read_only: bool = False):
        self.path = Path(path)
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = duckdb.connect(str(self.path), read_only=read_only)
        if not read_only:
            self.conn.execute(SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- idempotency -------------------------------------------------------------------

    def processed_keys(self) -> dict[str, tuple[str, str, str | None]]:
        """call_id -> (sha256, pipeline_version, model_id) of what is already stored."""
        rows = self.conn.execute("SELECT call_id, sha256, pipeline_version, model_id FROM calls").fetchall()
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    # --- writes ------------------------------------------------------------------------

    def write_call(self, result: CallResult, run_id: str | None = None) -> None:
        """Replace everything stored for this call, in one transaction."""
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
            "processed_at": utcnow(), "run_id": run_id,
        }
        words = self._word_rows(result)
        turns = self._turn_rows(result)
        self.conn.execute("BEGIN TRANSACTION")
        try:
            for table in ("calls", *PER_CALL_TABLES):
                self.conn.execute(f"DELETE FROM {table} WHERE call_id = ?", [rec.call_id])
            self._insert("calls", pd.DataFrame([call_row]))
            if words:
                self._insert("words", pd.DataFrame(words))
            if turns:
                self._insert("turns", pd.DataFrame(turns))
            if result.dynamics:
                self._insert("dynamics", pd.DataFrame([{"call_id": rec.call_id, **asdict(result.dynamics)}]))
            if result.escalation:
                self._insert("escalation", pd.DataFrame([self._escalation_row(result)]))
            if result.summary:
                self._insert("summaries", pd.DataFrame([self._summary_row(result)]))
            if result.corrections:
                self._insert("corrections", pd.DataFrame([
                    {"call_id": rec.call_id, "seq": c.seq, "start": c.start, "end": c.end, "original": c.original,
                     "corrected": c.corrected, "kind": c.kind} for c in result.corrections]))
            self.conn.execute("COMMIT")
        except Exception:
            self.conn.execute("ROLLBACK")
            raise

    def record_run(self, run: RunRecord) -> None:
        row = {**run.__dict__, "pipeline_version": PIPELINE_VERSION}
        self.conn.execute("BEGIN TRANSACTION")
        self.conn.execute("DELETE FROM runs WHERE run_id = ?", [run.run_id])
        self._insert("runs", pd.DataFrame([row]))
        self.conn.execute("COMMIT")

    def _insert(self, table: str, frame: pd.DataFrame) -> None:
        self.conn.register("_frame", frame)
        try:
            self.conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _frame")
        finally:
            self.conn.unregister("_frame")

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
        for i, t in enumerate(result.turns):
            scored = scores.get(i)
            signals = None
            if scored:
                f = scored.features
                signals = json.dumps({"z_loudness": round(f.z_loudness, 2), "z_pitch": round(f.z_pitch, 2),
                                      "z_rate": round(f.z_rate, 2), "loudness_delta_db": round(f.loudness_delta_db, 1),
                                      "pitch_delta_st": round(f.pitch_delta_st, 1), "terms": list(f.terms),
                                      "categories": list(f.categories), "interrupted": f.interrupted,
                                      "repeat_of": f.repeat_of}, ensure_ascii=False)
            rows.append({"call_id": result.call_id, "seq": i, "role": t.role, "speaker": t.speaker, "start": t.start,
                         "end": t.end, "text": t.text, "redacted_text": redact(t.text), "n_words": len(t.words),
                         "score": scored.score if scored else None,
                         "score_parts": json.dumps(scored.parts) if scored else None, "signals": signals})
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
        self.conn.execute("BEGIN TRANSACTION")
        try:
            self._insert(table, pd.DataFrame(rows))
            self.conn.execute("COMMIT")
        except Exception:
            self.conn.execute("ROLLBACK")
            raise

    def _escalation_row(self, result: CallResult) -> dict:
        from .escalation import plot_svg

        esc = result.escalation
        plots = self.path.parent / "plots"
        plots.mkdir(parents=True, exist_ok=True)
        plot_path = plots / f"{result.call_id}.svg"
        plot_path.write_text(plot_svg(esc, result.recording.duration or 0, result.call_id), encoding="utf-8")
        return {"call_id": result.call_id, "call_score": esc.call_score, "trend": esc.trend,
                "quarter_scores": json.dumps(esc.quarter_scores), "peak_time": esc.peak_time,
                "flags": json.dumps(esc.flags),
                "evidence": json.dumps([asdict(e) for e in esc.evidence], ensure_ascii=False),
                "de_escalation": json.dumps(esc.de_escalation, ensure_ascii=False), "plot_path": str(plot_path)}

    # --- reads -------------------------------------------------------------------------

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        return self.conn.execute(sql, params or []).df()
