"""Tables the web app owns: users, audit_log, callbacks, and the search token index.

Kept apart from pipeline/store.py SCHEMA so the pipeline never depends on the web app; created
with a short read-write connection when the app starts or a user is added.
"""
from __future__ import annotations

WEB_SCHEMA = """
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
CREATE TABLE IF NOT EXISTS callbacks (
    customer_id VARCHAR NOT NULL, done_at TIMESTAMP NOT NULL, handler VARCHAR NOT NULL,
    outcome VARCHAR NOT NULL, note VARCHAR, PRIMARY KEY (customer_id, done_at)
);
CREATE TABLE IF NOT EXISTS search_tokens (
    call_id VARCHAR, seq INTEGER, token VARCHAR
);
CREATE TABLE IF NOT EXISTS search_indexed (
    call_id VARCHAR PRIMARY KEY, processed_at TIMESTAMP
);
"""

ROLES = ("handler", "qa", "lead", "admin")
CALLBACK_OUTCOMES = ("resolved", "follow_up", "no_answer", "escalated")
