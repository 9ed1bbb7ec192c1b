"""Alerts and their outbox (pipeline.outputs.alerts decides what alerts and delivers them): an
alert row per call + kind (+ due time), one delivery row per alert and channel, claimed in one
short transaction so no connection is held while a receiver is contacted."""
from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd


class AlertsTable:
    """Mixed into `Store`: alerts, alert_deliveries, and what raising them reads."""

    def threat_call(self, call_id: str) -> dict | None:
        """A processed call's customer, case, agent, start, escalation flags and the sources its threats
        named; None if not ok."""
        found = self.query("SELECT c.customer_id, c.case_id, c.agent_id, c.started_at, e.flags, e.sources FROM calls c "
                           "JOIN escalation e USING (call_id) WHERE c.call_id = ? AND c.status = 'ok'", [call_id])
        return None if found.empty else found.iloc[0].to_dict()

    def customer_turns(self, call_id: str) -> list[dict]:
        """The customer's turns of a call in time order: start, masked text, signals."""
        return self.query("SELECT start, redacted_text, signals FROM turns WHERE call_id = ? AND role = 'customer' "
                          "ORDER BY start", [call_id]).to_dict("records")

    def calls_started_since(self, since: datetime) -> list[dict]:
        return self.query(
            "SELECT call_id, customer_id, case_id, language, started_at FROM calls WHERE status = 'ok' "
            "AND started_at IS NOT NULL AND started_at >= ?", [since]).to_dict("records")

    def record_alerts(self, alerts: list[dict], channels: list[str]) -> list[str]:
        """Store the alerts not stored yet, each with a pending delivery per channel, in one short
        transaction; returns the ids of those that were new."""
        if not alerts:
            return []
        new = []
        with self.transaction() as conn:
            for row in alerts:
                # Raised already: this alert, or the same kind on the same call (a call that took over
                # another's alerts when it replaced it, see calls._supersede).
                if conn.execute("SELECT 1 FROM alerts WHERE alert_id = ? OR (call_id = ? AND kind = ? AND "
                                "due_at IS NOT DISTINCT FROM ?)", [row["alert_id"], row.get("call_id"), row.get("kind"),
                                                                    row.get("due_at")]).fetchone():
                    continue
                conn.execute(f"INSERT INTO alerts ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                             list(row.values()))
                for channel in channels:
                    conn.execute(
                        "INSERT INTO alert_deliveries (delivery_id, alert_id, channel, status, attempts, "
                        "next_attempt_at, created_at) VALUES (?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT DO NOTHING",
                        [f"{row['alert_id']}.{channel}", row["alert_id"], channel, row["raised_at"], row["raised_at"]])
                new.append(row["alert_id"])
        return new

    def due_deliveries(self, now: datetime, stale: timedelta) -> list[dict]:
        """Deliveries to attempt now (pending and due, or claimed by a process that died), with their alert."""
        return self.query(
            "SELECT d.delivery_id, d.channel, d.attempts, a.* EXCLUDE (alert_id), a.alert_id FROM alert_deliveries d "
            "JOIN alerts a USING (alert_id) WHERE (d.status = 'pending' AND d.next_attempt_at <= ?) "
            "OR (d.status = 'sending' AND d.claimed_at < ?) ORDER BY d.created_at, d.delivery_id",
            [now, now - stale]).to_dict("records")

    def claim_delivery(self, delivery_id: str, now: datetime, stale: timedelta) -> bool:
        """Take a delivery for sending; False when another pass took it or it went out meanwhile."""
        with self.transaction() as conn:
            taken = conn.execute(
                "UPDATE alert_deliveries SET status = 'sending', claimed_at = ? WHERE delivery_id = ? AND "
                "(status = 'pending' OR (status = 'sending' AND claimed_at < ?)) RETURNING delivery_id",
                [now, delivery_id, now - stale]).fetchall()
        return bool(taken)

    def delivery_failed(self, delivery_id: str, attempts: int, next_attempt_at: datetime, error: str) -> None:
        self.execute("UPDATE alert_deliveries SET status = 'pending', attempts = ?, next_attempt_at = ?, "
                     "last_error = ?, claimed_at = NULL WHERE delivery_id = ?",
                     [attempts, next_attempt_at, error[:500], delivery_id])

    def delivery_done(self, delivery_id: str, at: datetime) -> None:
        self.execute("UPDATE alert_deliveries SET status = 'delivered', attempts = attempts + 1, "
                     "delivered_at = ?, last_error = NULL WHERE delivery_id = ?", [at, delivery_id])

    def undelivered(self) -> int:
        return int(self.query("SELECT count(*) AS n FROM alert_deliveries WHERE status <> 'delivered'").n[0])

    def next_delivery_due(self) -> datetime | None:
        found = self.query("SELECT min(next_attempt_at) AS t FROM alert_deliveries WHERE status = 'pending'").t[0]
        return None if pd.isna(found) else found

    def latest_alerts(self, limit: int) -> list[dict]:
        """The newest alerts with each channel's delivery status ("webhook:delivered email:pending")."""
        return self.query(
            "SELECT a.raised_at, a.kind, a.customer_id, a.call_id, a.evidence, "
            "string_agg(d.channel || ':' || d.status, ' ' ORDER BY d.channel) AS deliveries "
            "FROM alerts a LEFT JOIN alert_deliveries d USING (alert_id) GROUP BY ALL ORDER BY a.raised_at DESC "
            "LIMIT ?", [limit]).to_dict("records")
