"""The storage layer: every table of the database and every SQL statement the product runs
(the web app keeps its page reads in web/store.py). One schema (`schema`), one connection and
lock layer (`connect`), one module per table group, gathered in `Store`."""
from __future__ import annotations

import copy
import os
from pathlib import Path

import pandas as pd

from pipeline.config.paths import DEFAULT_DB
from pipeline.store.alerts import AlertsTable
from pipeline.store.audit import AuditCheck, AuditTable
from pipeline.store.briefings import BriefingsTable
from pipeline.store.callbacks import (
    CALLBACK_OUTCOMES,
    CLOSING_OUTCOMES,
    REACHED_OUTCOMES,
    REACHED_SECONDS,
    CallbacksTable,
    attempts_sql,
    complaint_sql,
    outcomes_sql,
)
from pipeline.store.calls import CallsTable, StoredCall, insert, utcnow
from pipeline.store.connect import Database, StoreBusy, StoreError, explained, has_table, rows
from pipeline.store.qa import QATable
from pipeline.store.retention import Cutoff, PurgeCounts, RetentionTable
from pipeline.store.runs import RunsTable
from pipeline.store.schema import migrate
from pipeline.store.search import FTS_SCHEMA as SEARCH_FTS
from pipeline.store.search import SearchIndexTable, has_search_index
from pipeline.store.users import UsersTable
from pipeline.store.voiceprints import VoiceprintsTable

__all__ = ["CALLBACK_OUTCOMES", "CLOSING_OUTCOMES", "DEFAULT_DB", "REACHED_OUTCOMES", "REACHED_SECONDS", "SEARCH_FTS", "AuditCheck", "Cutoff", "PurgeCounts", "Store", "StoreBusy", "StoreError", "StoredCall",
           "attempts_sql", "complaint_sql", "has_search_index", "has_table", "outcomes_sql", "rows", "utcnow"]


class Store(Database, CallsTable, RunsTable, BriefingsTable, AlertsTable, QATable, VoiceprintsTable, UsersTable,
            AuditTable, CallbacksTable, SearchIndexTable, RetentionTable):
    """The database file, opened briefly for each operation (see `connect`). A writer creates
    and extends the schema when it opens the file."""

    def __init__(self, path: Path | str = DEFAULT_DB, read_only: bool = False, wait_seconds: float = 60.0):
        super().__init__(path, read_only, wait_seconds)
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not os.access(self.path.parent, os.W_OK):  # DuckDB would fail later, naming a rollback
                raise explained(PermissionError("Permission denied"), self.path)
            with self.transaction() as conn:
                migrate(conn)

    def waiting(self, seconds: float) -> "Store":
        """The same store, giving up after `seconds` when another process holds the file."""
        other = copy.copy(self)
        other.wait_seconds = seconds
        return other

    def insert_rows(self, table: str, rows: list[dict]) -> None:
        """Append rows to a table in one transaction."""
        with self.transaction() as conn:
            insert(conn, table, pd.DataFrame(rows))
