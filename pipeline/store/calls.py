"""The calls and their rows: one transaction per call (delete + insert), so reprocessing a call
replaces its rows and a rerun never duplicates or loses any. One recording is one call: writing a
call also replaces the derived-id call it supersedes: the call of its path (a changed file, a
complete upload after a cut one), and the call its audio was stored under before its manifest
id arrived. Bulk rows go in from pandas frames BY NAME. Also the planning reads: what is stored per
call (the skip key), per audio and per file."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import duckdb
import pandas as pd

from pipeline.records import CallResult, ComplaintSource
from pipeline.version import __version__ as PIPELINE_VERSION

PER_CALL_TABLES = ("words", "turns", "dynamics", "escalation", "summaries", "corrections")


def utcnow() -> datetime:
    """Naive UTC: how every timestamp the pipeline writes is stored."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass(frozen=True)
class StoredCall:
    key: tuple[str, str | None]  # (sha256 of the audio, fingerprint of the settings that produced the rows)
    status: str
    attempts: int
    call_id: str = ""
    derived_id: bool = False
    path: str = ""
    purged: bool = False  # its retention period ended (pipeline/store/retention.py): never processed again


def insert(conn: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame) -> None:
    """Rows of `frame` into `table`, by column name."""
    conn.register("_frame", frame)
    try:
        conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _frame")
    finally:
        conn.unregister("_frame")


class CallsTable:
    """Mixed into `Store`: the calls, their per-call rows, and the file-hash cache of planning."""

    def processed_keys(self) -> dict[str, StoredCall]:
        """call_id -> what is stored for it: the skip key, its status and how often it was tried."""
        return {c.call_id: c for c in self._stored_calls()}

    def stored_audio(self) -> dict[str, StoredCall]:
        """sha256 -> the call that audio was processed as (an ok one first): a new name for
        known audio is another path of that call, not a second call."""
        out: dict[str, StoredCall] = {}
        for c in self._stored_calls():
            if c.key[0] not in out or (c.status == "ok" and out[c.key[0]].status != "ok"):
                out[c.key[0]] = c
        return out

    def _stored_calls(self) -> list[StoredCall]:
        rows = self.query("SELECT call_id, sha256, settings_hash, status, coalesce(attempts, 1), "
                          "coalesce(derived_id, false), coalesce(path, ''), "
                          "audio_purged_at IS NOT NULL OR text_purged_at IS NOT NULL "
                          "FROM calls ORDER BY call_id").itertuples(index=False)
        return [StoredCall((r[1], r[2]), r[3], int(r[4]), r[0], bool(r[5]), r[6], bool(r[7])) for r in rows]

    def redaction_inputs(self, call_id: str) -> dict | None:
        """What redacting a call's audio needs: its audio's sha256 and paths (any name it was seen
        under), its words (speaker, start, end, text, role, in time order) and its turns' masked text."""
        with self.reading() as conn:
            call = conn.execute("SELECT sha256, path FROM calls WHERE call_id = ? AND status = 'ok'", [call_id]).fetchone()
            if call is None:
                return None
            others = [p for (p,) in conn.execute("SELECT path FROM call_paths WHERE call_id = ? AND sha256 = ? "
                                                   "ORDER BY seen_at DESC", [call_id, call[0]]).fetchall()]
            words = conn.execute('SELECT speaker, start, "end", text, role FROM words WHERE call_id = ? ORDER BY start, seq',
                                 [call_id]).fetchall()
            turns = conn.execute('SELECT speaker, start, "end", redacted_text FROM turns WHERE call_id = ? ORDER BY seq',
                                 [call_id]).fetchall()
        return {"sha256": call[0], "paths": [call[1], *[p for p in others if p != call[1]]], "words": words, "turns": turns}

    def add_call_path(self, call_id: str, path: str, sha256: str) -> None:
        """Record another path the audio of `call_id` was found at."""
        self.execute("INSERT OR REPLACE INTO call_paths VALUES (?, ?, ?, ?)", [call_id, path, sha256, utcnow()])

    def run_counts(self, run_id: str) -> tuple[int, int, float]:
        """(calls stored ok, calls stored failed, seconds of audio) by a run: what its row counts."""
        n_ok, n_failed, seconds = self.query(
            "SELECT count(*) FILTER (WHERE status = 'ok'), count(*) FILTER (WHERE status = 'failed'), "
            "coalesce(sum(duration), 0) FROM calls WHERE run_id = ?", [run_id]).iloc[0].tolist()
        return int(n_ok), int(n_failed), float(seconds)

    def run_failures(self, run_id: str) -> list[str]:
        """One line per call a run stored as failed: its id and its reason."""
        return [f"{r.call_id}: {r.error}" for r in self.query(
            "SELECT call_id, error FROM calls WHERE run_id = ? AND status = 'failed' ORDER BY call_id",
            [run_id]).itertuples()]

    def run_customers(self, run_id: str) -> list[str]:
        """The customers of the calls a run stored ok."""
        return self.query("SELECT DISTINCT customer_id FROM calls WHERE run_id = ? AND status = 'ok' "
                          "AND customer_id IS NOT NULL ORDER BY 1", [run_id])["customer_id"].tolist()

    def processed_paths(self) -> dict[str, tuple[datetime, str]]:
        """path -> (when its newest call was processed, that call's sha256): the intake's look at a folder."""
        return {row.path: (row.processed_at, row.sha256) for row in self.query(
            "SELECT path, max(processed_at) AS processed_at, arg_max(sha256, processed_at) AS sha256 "
            "FROM calls WHERE path IS NOT NULL GROUP BY path").itertuples()}

    def write_call(self, result: CallResult, run_id: str | None = None, attempts: int = 1,
                   settings_hash: str | None = None, plot_path: str | None = None) -> None:
        """Replace everything stored for this call, in one transaction. `attempts` counts the
        tries of a failed call with the same contents (failed calls are retried up to a limit);
        `plot_path`: where the call's escalation plot was drawn (pipeline.outputs.plots)."""
        rec, tr = result.recording, result.transcript
        meta = rec.metadata
        if len(result.redacted) != len(result.turns):
            raise ValueError(f"{rec.call_id}: turns must be masked before they are stored "
                             f"({len(result.redacted)} masked texts for {len(result.turns)} turns)")
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
            "settings_hash": settings_hash, "derived_id": rec.derived_id,
            "complaint_source": meta.complaint_source or ComplaintSource.PHONE,  # a recorded call came in by phone
            **_direction_columns(result),
        }
        words = _word_rows(result)
        turns = _turn_rows(result)
        with self.transaction() as conn:
            superseded = _supersede(conn, rec)
            for table in ("calls", *PER_CALL_TABLES):
                conn.execute(f"DELETE FROM {table} WHERE call_id IN (SELECT unnest(?))", [[rec.call_id, *superseded]])
            conn.execute("DELETE FROM claims WHERE call_id = ?", [rec.call_id])
            insert(conn, "calls", pd.DataFrame([call_row]))
            if words:
                insert(conn, "words", pd.DataFrame(words))
            if turns:
                insert(conn, "turns", pd.DataFrame(turns))
            if result.dynamics:
                insert(conn, "dynamics", pd.DataFrame([{"call_id": rec.call_id, **asdict(result.dynamics)}]))
            if result.escalation:
                insert(conn, "escalation", pd.DataFrame([_escalation_row(result, plot_path)]))
            if result.summary:
                insert(conn, "summaries", pd.DataFrame([_summary_row(result)]))
            if result.corrections:
                insert(conn, "corrections", pd.DataFrame([
                    {"call_id": rec.call_id, "seq": c.seq, "start": c.start, "end": c.end, "original": c.original,
                     "corrected": c.corrected, "kind": c.kind, "score": c.score} for c in result.corrections]))
            if result.agent_voice and meta.agent_id:  # the agent channel of a stereo call: a voiceprint source
                self.add_voiceprint_source(meta.agent_id, f"call:{rec.call_id}", *result.agent_voice)

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


def _direction_columns(result: CallResult) -> dict:
    d = result.direction
    if d is None:  # a failed call: the manifest's word, when it gave one, is still worth keeping
        known = result.recording.metadata.direction
        return {"direction": known, "direction_confidence": 1.0 if known else None,
                "direction_source": "manifest" if known else None, "direction_evidence": None}
    evidence = json.dumps({"quote": d.quote, "time": d.time, "cues": list(d.cues)}, ensure_ascii=False)
    return {"direction": d.direction, "direction_confidence": d.confidence, "direction_source": d.source,
            "direction_evidence": evidence if d.source == "detected" else None}


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


def _turn_rows(result: CallResult) -> list[dict]:
    scores = {t.turn_index: t for t in result.escalation.turns} if result.escalation else {}
    rows = []
    for i, t in enumerate(result.turns):
        scored = scores.get(i)
        signals = None
        if scored:
            f = scored.features
            signals = json.dumps({"z_loudness": round(f.z_loudness, 2), "z_pitch": round(f.z_pitch, 2),
                                  "z_rate": round(f.z_rate, 2), "z_tilt": round(f.z_tilt, 2),
                                  "loudness_delta_db": round(f.loudness_delta_db, 1),
                                  "pitch_delta_st": round(f.pitch_delta_st, 1), "terms": list(f.terms),
                                  "categories": list(f.categories), "interrupted": f.interrupted,
                                  "repeat_of": f.repeat_of}, ensure_ascii=False)
        rows.append({"call_id": result.call_id, "seq": i, "role": t.role, "speaker": t.speaker, "start": t.start,
                     "end": t.end, "text": t.text, "redacted_text": result.redacted[i], "n_words": len(t.words),
                     "score": scored.score if scored else None,
                     "score_parts": json.dumps(scored.parts) if scored else None, "signals": signals,
                     "language": t.language})
    return rows


def _summary_row(result: CallResult) -> dict:
    s = result.summary
    dump = lambda quotes: json.dumps([asdict(q) for q in quotes], ensure_ascii=False)  # noqa: E731
    return {"call_id": result.call_id, "language": s.language, "category": s.category, "outcome": s.outcome,
            "demands": dump(s.demands), "promises": dump(s.promises),
            "deadline_promises": dump(s.deadline_promises), "open_items": dump(s.open_items),
            "key_quotes": dump(s.key_quotes), "summary": s.summary}


def _escalation_row(result: CallResult, plot_path: str | None) -> dict:
    esc = result.escalation
    return {"call_id": result.call_id, "call_score": esc.call_score, "trend": esc.trend,
            "quarter_scores": json.dumps(esc.quarter_scores), "peak_time": esc.peak_time,
            "flags": json.dumps(esc.flags),
            "evidence": json.dumps([asdict(e) for e in esc.evidence], ensure_ascii=False),
            "de_escalation": json.dumps(esc.de_escalation, ensure_ascii=False),
            "sources": json.dumps([asdict(s) for s in esc.sources], ensure_ascii=False),
            "plot_path": str(plot_path) if plot_path else None}


def _supersede(conn: duckdb.DuckDBPyConnection, rec) -> list[str]:
    """The calls that writing `rec` replaces, when their id was derived from path and contents (a
    manifest's id is the manifest's to give): the call of the same path (the file changed, or a
    complete upload follows a cut one), and the call of the same audio when `rec` has the
    manifest's id. Their paths of the same audio become `rec`'s, their alerts too (so a threat
    is not alerted again under the new id). A call whose path now holds other audio but whose
    own audio is still found elsewhere (a copy) is not replaced: it moves to that copy."""
    path, sha = str(rec.path), rec.sha256
    candidates = conn.execute(
        "SELECT call_id, path, sha256 FROM calls WHERE call_id <> ? AND coalesce(derived_id, false) "
        "AND (path = ? OR (sha256 = ? AND ?))", [rec.call_id, path, sha, not rec.derived_id]).fetchall()
    superseded = []
    for call_id, old_path, old_sha in candidates:
        if old_path == path and old_sha != sha:
            other = conn.execute("SELECT path FROM call_paths WHERE call_id = ? AND sha256 = ? AND path <> ? "
                                 "ORDER BY seen_at DESC LIMIT 1", [call_id, old_sha, path]).fetchone()
            if other is not None:
                conn.execute("UPDATE calls SET path = ? WHERE call_id = ?", [other[0], call_id])
                conn.execute("DELETE FROM call_paths WHERE call_id = ? AND path = ?", [call_id, other[0]])
                continue
        superseded.append(call_id)
    if superseded:
        conn.execute("INSERT OR IGNORE INTO call_paths SELECT ?, path, sha256, seen_at FROM call_paths "
                     "WHERE call_id IN (SELECT unnest(?)) AND sha256 = ? AND path <> ?", [rec.call_id, superseded, sha, path])
        conn.execute("INSERT OR IGNORE INTO call_paths SELECT ?, path, sha256, processed_at FROM calls "
                     "WHERE call_id IN (SELECT unnest(?)) AND path <> ? AND sha256 = ?", [rec.call_id, superseded, path, sha])
        conn.execute("DELETE FROM call_paths WHERE call_id IN (SELECT unnest(?))", [superseded])
        conn.execute("UPDATE alerts SET call_id = ? WHERE call_id IN (SELECT unnest(?))", [rec.call_id, superseded])
    return superseded
