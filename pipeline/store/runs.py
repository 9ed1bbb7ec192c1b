"""Runs: a row when a run starts, completed at its end; a run whose process died is found by the
next one (same host: the process id; elsewhere: a stale heartbeat) and marked interrupted."""
from __future__ import annotations

import os
import socket

import pandas as pd

from pipeline.records import RunRecord
from pipeline.store.calls import insert, utcnow
from pipeline.version import __version__ as PIPELINE_VERSION


class RunsTable:
    """Mixed into `Store`: the runs table."""

    def start_run(self, run: RunRecord) -> None:
        self.record_run(run, status="running")

    def record_run(self, run: RunRecord, status: str | None = None) -> None:
        row = {**run.__dict__, "status": status or run.status, "pipeline_version": PIPELINE_VERSION,
               "pid": os.getpid(), "host": socket.gethostname(), "heartbeat_at": utcnow()}
        with self.transaction() as conn:
            refreshed = conn.execute("SELECT briefings_refreshed FROM runs WHERE run_id = ?", [run.run_id]).fetchone()
            conn.execute("DELETE FROM runs WHERE run_id = ?", [run.run_id])
            row["briefings_refreshed"] = bool(refreshed and refreshed[0])
            insert(conn, "runs", pd.DataFrame([row]))

    def heartbeat(self, run_id: str) -> None:
        self.execute("UPDATE runs SET heartbeat_at = ? WHERE run_id = ?", [utcnow(), run_id])

    def mark_briefings_refreshed(self, run_ids: list[str]) -> None:
        if run_ids:
            self.execute("UPDATE runs SET briefings_refreshed = true WHERE run_id IN (SELECT unnest(?))", [run_ids])

    def mark_interrupted(self, stale_after_s: float = 1800.0) -> list[str]:
        """Runs left 'running' by a process that is gone (killed, machine restarted) become
        'interrupted'. Same host: the process id tells; another host: no heartbeat for
        `stale_after_s`. Returns their run ids."""
        host, now = socket.gethostname(), utcnow()
        running = self.query("SELECT run_id, pid, host, heartbeat_at FROM runs WHERE status = 'running'")
        dead = [r.run_id for r in running.itertuples()
                if (r.host == host and not _alive(r.pid) and r.pid != os.getpid())
                or (r.host != host and (pd.isna(r.heartbeat_at) or (now - r.heartbeat_at).total_seconds() > stale_after_s))]
        if dead:  # its counts, which it could not write itself, are what the calls table holds for it
            self.execute(
                "UPDATE runs SET status = 'interrupted', message = 'the process running it stopped before it "
                "finished (found by a later run)', n_processed = c.ok, n_failed = c.failed, audio_seconds = c.seconds "
                "FROM (SELECT r.run_id, count(*) FILTER (WHERE k.status = 'ok') AS ok, "
                "count(*) FILTER (WHERE k.status = 'failed') AS failed, coalesce(sum(k.duration), 0) AS seconds "
                "FROM (SELECT unnest(?) AS run_id) r LEFT JOIN calls k USING (run_id) GROUP BY r.run_id) c "
                "WHERE runs.run_id = c.run_id", [dead])
        return dead

    def customers_to_refresh(self, current_run: str | None = None) -> tuple[list[str], list[str]]:
        """Customers with calls written by runs that ended without refreshing their briefings
        (interrupted, failed, cancelled, or a refresh that failed), and those runs' ids."""
        runs = self.query("SELECT run_id FROM runs WHERE status <> 'running' AND run_id IS DISTINCT FROM ? "
                          "AND NOT coalesce(briefings_refreshed, false)", [current_run])["run_id"].tolist()
        if not runs:
            return [], []
        customers = self.query("SELECT DISTINCT customer_id FROM calls WHERE status = 'ok' AND customer_id IS NOT NULL "
                               "AND run_id IN (SELECT unnest(?)) ORDER BY 1", [runs])["customer_id"].tolist()
        return customers, runs

    # --- claims: the calls a running run has taken on -------------------------------------------

    def claim_calls(self, run_id: str, calls: list[tuple[str, str, str]]) -> set[str]:
        """Take on (call_id, sha256, path) for `run_id`; returns the ids left to another run: taken
        by a running run, or stored with this audio by another run since this one started (a
        handler's brief that finished between this run's plan and its claim). Claims of runs no longer running lapse first."""
        if not calls:
            return set()
        ids, shas, paths = (list(x) for x in zip(*calls))
        wanted = "(SELECT unnest(?::VARCHAR[]) AS call_id, unnest(?::VARCHAR[]) AS sha256, unnest(?::VARCHAR[]) AS path)"
        with self.transaction() as conn:
            conn.execute("DELETE FROM claims WHERE run_id NOT IN (SELECT run_id FROM runs WHERE status = 'running')")
            done = {r[0] for r in conn.execute(
                f"SELECT w.call_id FROM {wanted} w JOIN calls c USING (call_id) WHERE c.sha256 = w.sha256 "
                "AND c.status = 'ok' AND c.run_id IS DISTINCT FROM ? "
                "AND c.processed_at >= (SELECT started_at FROM runs WHERE run_id = ?)",
                [ids, shas, paths, run_id, run_id]).fetchall()}
            conn.execute(f"INSERT OR IGNORE INTO claims SELECT call_id, ?, sha256, path, ? FROM {wanted} "
                         "WHERE NOT list_contains(?::VARCHAR[], call_id)", [run_id, utcnow(), ids, shas, paths, sorted(done)])
            taken = conn.execute("SELECT call_id FROM claims WHERE run_id <> ? AND list_contains(?::VARCHAR[], call_id)",
                                 [run_id, ids]).fetchall()
        return done | {r[0] for r in taken}

    def release_claims(self, run_id: str) -> None:
        self.execute("DELETE FROM claims WHERE run_id = ?", [run_id])


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, TypeError, ValueError):
        return False
    except PermissionError:
        return True
    return True
