"""Every table of the database, the pipeline's and the web app's, in one schema; created, and
extended with the columns added since a table was first released, when a writer opens the file.
"""
from __future__ import annotations

from pathlib import Path, PurePath

import duckdb

from pipeline.intake.identity import derived_call_id
from pipeline.store.audit import chain_legacy_rows

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
-- Alerts (pipeline/outputs/alerts.py): alert_id is derived from call + kind, so a rerun never duplicates.
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
-- The web app's: users, the audit log, callbacks marked done, and the search index.
CREATE TABLE IF NOT EXISTS users (
    username VARCHAR PRIMARY KEY, role VARCHAR NOT NULL CHECK (role IN ('handler', 'qa', 'lead', 'admin')),
    password_hash VARCHAR NOT NULL, disabled BOOLEAN NOT NULL DEFAULT FALSE,
    failed_logins INTEGER NOT NULL DEFAULT 0, locked_until TIMESTAMP,
    session_epoch INTEGER NOT NULL DEFAULT 0,  -- bumped by logout/passwd/disable: older cookies stop working
    created_at TIMESTAMP, password_changed_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS audit_log (
    logged_at TIMESTAMP NOT NULL, username VARCHAR, role VARCHAR, action VARCHAR NOT NULL,
    target VARCHAR, detail VARCHAR, client VARCHAR
);
-- The audit log's chain (pipeline/store/audit.py): the id and hash of its last row, one row.
CREATE TABLE IF NOT EXISTS audit_head (id BIGINT NOT NULL, hash VARCHAR NOT NULL);
-- Failed logins counted per client address, and per name that is no user's (a user's own count is
-- in users), so an unknown name is answered and locked exactly as a known one (web/auth.py).
CREATE TABLE IF NOT EXISTS login_failures (
    scope VARCHAR NOT NULL CHECK (scope IN ('address', 'name')), key VARCHAR NOT NULL,
    failures INTEGER NOT NULL, locked_until TIMESTAMP, last_failed_at TIMESTAMP NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS callbacks (
    customer_id VARCHAR NOT NULL, done_at TIMESTAMP NOT NULL, handler VARCHAR NOT NULL,
    outcome VARCHAR NOT NULL, note VARCHAR, PRIMARY KEY (customer_id, done_at)
);
-- One row per turn: its masked text cut into words, joined by spaces; DuckDB's fts index over it
-- (schema fts_main_search_docs) is rebuilt when calls change (pipeline/store/search.py).
CREATE TABLE IF NOT EXISTS search_docs (
    doc VARCHAR NOT NULL, call_id VARCHAR NOT NULL, seq INTEGER NOT NULL, tokens VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS search_indexed (
    call_id VARCHAR PRIMARY KEY, processed_at TIMESTAMP
);
-- Agent voiceprints (biometric: deletable with `callbrief agents forget`, never exported).
-- One row per source (an enrolment file, or one stereo call's agent channel).
CREATE TABLE IF NOT EXISTS voiceprints (
    agent_id VARCHAR, source VARCHAR, embedding FLOAT[], seconds DOUBLE, added_at TIMESTAMP,
    PRIMARY KEY (agent_id, source)
);
-- One recording is one call: other paths the same audio was found at (a renamed or copied file).
CREATE TABLE IF NOT EXISTS call_paths (
    call_id VARCHAR, path VARCHAR, sha256 VARCHAR, seen_at TIMESTAMP, PRIMARY KEY (call_id, path)
);
-- Calls a running run has taken on: another run (a handler's brief, a second batch) leaves them to it.
CREATE TABLE IF NOT EXISTS claims (
    call_id VARCHAR PRIMARY KEY, run_id VARCHAR, sha256 VARCHAR, path VARCHAR, claimed_at TIMESTAMP
);
-- What the vocabulary correction changed in Whisper's text (pipeline/vocabulary/terms.py), for review.
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
    # The call id was made from path and contents, not given by a manifest (a manifest id that
    # arrives later for the same audio replaces the derived call).
    ("calls", "derived_id", "BOOLEAN"),
    # When a user's last failed login was: a name's failures are forgotten a day later, as an unknown name's are.
    ("users", "last_failed_login", "TIMESTAMP"),
    # The audit log is chained: each row's number, and SHA-256 over the row before's hash and its own
    # content (pipeline/store/audit.py; rows written before are chained once, below).
    ("audit_log", "id", "BIGINT"), ("audit_log", "hash", "VARCHAR"),
    # Retention (pipeline/store/retention.py): when the call's recording paths, and its raw words and
    # turn texts, were purged. A purged call is never processed again (pipeline/run/plan.py).
    ("calls", "audio_purged_at", "TIMESTAMP"), ("calls", "text_purged_at", "TIMESTAMP"),
    # Who dialled (pipeline/analysis/direction.py): inbound, outbound or callback; 1.0 and "manifest" when the
    # manifest said so, the posterior and "detected" when read from the opening; the deciding quote and time.
    ("calls", "direction", "VARCHAR"), ("calls", "direction_confidence", "DOUBLE"),
    ("calls", "direction_source", "VARCHAR"), ("calls", "direction_evidence", "JSON"),
    # Which authorities and channels the threats named (pipeline/analysis/escalation.py named_sources): a list
    # of {source, category, term, time, role, quote (masked)}; where the complaint came in (the manifest's
    # `source`: phone, branch, online, regulator_referral, other; phone when it says nothing); the sources an
    # alert names (pipeline/outputs/alerts.py).
    ("escalation", "sources", "JSON"), ("calls", "complaint_source", "VARCHAR"), ("alerts", "sources", "VARCHAR[]"),
    # The language a user reads the web app in (pipeline/data/translations.json has zh and en);
    # a Mandarin centre's users read Chinese unless they choose otherwise.
    ("users", "lang", "VARCHAR DEFAULT 'zh'"),
    # A promise alert's channel: how the bank said it would get back (phone, sms, email...).
    ("alerts", "contact_channel", "VARCHAR"),
)

def migrate(conn: duckdb.DuckDBPyConnection) -> None:
    """Create what is missing; never drops or rewrites a row (but fills a column added since,
    chains an audit log written before the chain existed, and replaces the old search token
    table, an index derived from the turns)."""
    conn.execute(SCHEMA)
    for table, column, kind in ADDED_COLUMNS:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
    _mark_derived_ids(conn)
    chain_legacy_rows(conn)
    _drop_token_table(conn)


def _drop_token_table(conn: duckdb.DuckDBPyConnection) -> None:
    """The hand-written token index (search_tokens) that search_docs and its fts index replace:
    dropped, and every call marked for indexing again (search_indexed said what it held)."""
    if conn.execute("SELECT 1 FROM information_schema.tables WHERE table_name = 'search_tokens' "
                    "AND table_catalog = current_database()").fetchone():
        conn.execute("DROP TABLE search_tokens")
        conn.execute("DELETE FROM search_indexed")


def _mark_derived_ids(conn: duckdb.DuckDBPyConnection) -> None:
    """Calls stored before `derived_id` existed: an id is derived when it is the id the call's
    path inside its run's input folder and its audio make (so such calls are replaced like newer
    ones when their manifest id arrives)."""
    rows = conn.execute("SELECT c.call_id, c.path, c.sha256, r.input_dir FROM calls c LEFT JOIN runs r USING (run_id) "
                        "WHERE c.derived_id IS NULL").fetchall()
    if not rows:
        return
    derived = []
    for call_id, path, sha, input_dir in rows:
        try:
            relative = PurePath(path).relative_to(Path(input_dir).resolve()).as_posix()
        except (TypeError, ValueError):
            relative = None
        derived.append([call_id, relative is not None and sha is not None and derived_call_id(relative, sha) == call_id])
    conn.execute("UPDATE calls SET derived_id = d.v FROM (SELECT unnest(?::VARCHAR[]) AS call_id, "
                 "unnest(?::BOOLEAN[]) AS v) d WHERE calls.call_id = d.call_id",
                 [[c for c, _ in derived], [d for _, d in derived]])
