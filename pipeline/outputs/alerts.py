"""Alerts: risk on a processed call reaches people within minutes, not at the nightly run.

A call carrying a regulator, media or legal threat (escalation flags), or a customer's deadline
about to pass, becomes one `alerts` row whose id is derived from what it is about (call + kind,
plus the due time for deadlines), so a rerun never duplicates it. Each alert gets one outbox
row per configured channel (`alert_deliveries`), and `deliver_due` works the outbox:

- claim a due row (pending, or a stale claim of a process that died) in one short transaction;
  no database connection is held while a receiver is contacted;
- send it, carrying the row's `delivery_id` as the idempotency key (JSON field and HTTP header,
  e-mail Message-ID and header), so a receiver can drop the rare duplicate after a crash;
- on success mark the row delivered at once, before anything else; on failure put it back as
  pending with the next attempt after a doubling backoff. Nothing is ever dropped: pending rows
  are tried again on every intake or nightly pass until they go through.
"""
from __future__ import annotations

import hashlib
import json
import smtplib
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from functools import lru_cache
from typing import Protocol

import pandas as pd

from pipeline.analysis.facts import extract_facts, stored_utterance
from pipeline.analysis.redact import redact
from pipeline.config.datafiles import read_json
from pipeline.config.policy import default_policy
from pipeline.records import Role
from pipeline.store import Store, utcnow

DEADLINE_KIND = "deadline_due"
PROMISE_KIND = "promise_due"  # a follow-up the bank promised, by a channel and a time
BACKOFF_CAP = timedelta(hours=1)
STALE_CLAIM = timedelta(minutes=10)  # a 'sending' row older than this belongs to a process that died


@lru_cache(maxsize=1)
def alert_rules() -> dict:
    return read_json("alert_rules.json")


def kind_label(kind: str, language: str = "en") -> str:
    rules = alert_rules()
    rule = rules[kind] if kind in (DEADLINE_KIND, PROMISE_KIND) else rules["flags"].get(kind, {})
    return rule.get("label", {}).get(language, kind)


def alert_label(kind: str, sources: tuple[str, ...] = (), language: str = "en") -> str:
    """What the receiver reads: the authority or channel named ("客户扬言拨打12363向人民银行投诉"), each
    one the threat named, in the order said; the kind's label when none is known (a call stored
    before sources were, or a source without a label)."""
    labels = [alert_rules()["sources"].get(s, {}).get("label", {}).get(language) for s in sources]
    labels = [x for x in labels if x]
    return ("；" if language == "zh" else "; ").join(labels) if labels else kind_label(kind, language)


def promise_label(channel: str | None, language: str = "en") -> str:
    """A promise alert's label with its channel ("坐席承诺的回复即将到期（电话）")."""
    rule = alert_rules()[PROMISE_KIND]
    label = rule["label"][language]
    how = rule["channels"].get(channel or "", {}).get(language)
    return f"{label}（{how}）" if how and language == "zh" else f"{label} ({how})" if how else label


@dataclass(frozen=True)
class Alert:
    alert_id: str
    kind: str
    customer_id: str | None
    call_id: str
    case_id: str | None
    agent_id: str | None
    call_started_at: datetime | None
    evidence_time: float | None  # seconds into the call
    evidence: str  # masked quote the alert rests on
    due_at: datetime | None  # deadline alerts: when it passes (UTC)
    raised_at: datetime  # UTC
    sources: tuple[str, ...] = ()  # threat alerts: the authorities and channels named (threat_sources.json ids)
    contact_channel: str | None = None  # promise alerts: how the bank said it would get back (phone, sms...)

    def payload(self, delivery_id: str) -> dict:
        data = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}
        data["sources"] = list(self.sources)
        return {"idempotency_key": delivery_id, "label": self.label(), "label_zh": self.label("zh"), **data}

    def label(self, language: str = "en") -> str:
        """What a receiver reads: the promise's channel, the threat's authority, or the kind's label."""
        if self.kind == PROMISE_KIND:
            return promise_label(self.contact_channel, language)
        return alert_label(self.kind, self.sources, language)


def alert_id(call_id: str, kind: str, *extra: str) -> str:
    return hashlib.sha256("\x1f".join((call_id, kind, *extra)).encode()).hexdigest()[:20]


# --- raising -----------------------------------------------------------------------------

def alerts_for_call(store: Store, call_id: str, now: datetime | None = None,
                    threats: frozenset[str] | tuple[str, ...] | None = None) -> list[Alert]:
    """Threat alerts for one stored call, each quoting the customer turn that carried the threat.
    `threats`: the flags that alert (the policy's threat flags unless given); their labels are
    in alert_rules.json (a flag without one is named as it is)."""
    threats = default_policy().threat_flags if threats is None else threats
    call = store.threat_call(call_id)
    if call is None:
        return []
    kinds = [k for k in json.loads(call["flags"] or "[]") if k in threats]
    named = json.loads(_none(call["sources"]) or "[]")
    turns = store.customer_turns(call_id)
    alerts = []
    for kind in kinds:
        # The first customer turn whose words put it in this category is the evidence.
        turn = next((t for t in turns if kind in json.loads(t["signals"] or "{}").get("categories", [])), None)
        # One alert per kind as before (its id unchanged, so calls alerted before are not alerted
        # again); it names every authority or channel of that kind the customer named.
        alerts.append(Alert(
            alert_id=alert_id(call_id, kind), kind=kind, customer_id=_none(call["customer_id"]), call_id=call_id,
            case_id=_none(call["case_id"]), agent_id=_none(call["agent_id"]),
            call_started_at=_none(call["started_at"]), evidence_time=round(turn["start"], 2) if turn else None,
            evidence=redact(turn["redacted_text"] or "") if turn else "", due_at=None, raised_at=now or utcnow(),
            sources=tuple(s["source"] for s in named if s["category"] == kind)))
    return alerts


def deadline_alert(customer_id: str, call_id: str, due: datetime, text: str, now: datetime | None = None,
                   lead: timedelta | None = None, case_id: str | None = None, kind: str = DEADLINE_KIND) -> Alert | None:
    """An alert when a deadline the customer set is due within `lead` (or already passed), else None.

    For `pipeline.analysis.facts` deadlines: `due` is timezone-aware (naive is read as UTC); `text` is
    the customer's words, masked here."""
    lead = lead if lead is not None else timedelta(minutes=alert_rules()[kind]["lead_minutes"])
    due_utc = (due.astimezone(timezone.utc) if due.tzinfo else due.replace(tzinfo=timezone.utc)).replace(tzinfo=None)
    now = now or utcnow()
    # From `lead` before it passes to `lead` after (one missed while the intake was down still
    # alerts); long-passed deadlines are the briefing's business, not an alert's.
    if not due_utc - lead <= now <= due_utc + lead:
        return None
    return Alert(alert_id=alert_id(call_id, kind, due_utc.isoformat()), kind=kind,
                 customer_id=customer_id, call_id=call_id, case_id=case_id, agent_id=None, call_started_at=None,
                 evidence_time=None, evidence=redact(text), due_at=due_utc, raised_at=now)


def _recent_deadlines(store: Store, settings, now: datetime, days: int):
    """(call row, Deadline) for every deadline said in the calls of the last `days` (+1) days:
    pipeline.analysis.facts reads them from the turns, against the call's start in the centre's zone."""
    calls = store.calls_started_since(now - timedelta(days=days + 1))
    if not calls:
        return []
    by_call: dict[str, list] = {}
    for t in store.masked_turns([c["call_id"] for c in calls]):
        by_call.setdefault(t["call_id"], []).append(stored_utterance(t))
    found = []
    for c in calls:
        start = _none(c["started_at"]).replace(tzinfo=settings.tz)  # stored in the centre's zone
        _, deadlines = extract_facts(c["call_id"], by_call.get(c["call_id"], []), c["language"] or "zh", start)
        found += [(c, d) for d in deadlines]
    return found


def deadline_alerts(store: Store, settings, now: datetime | None = None) -> list[Alert]:
    """Deadline alerts due now for the customers' deadlines in recent calls."""
    now = now or utcnow()
    alerts = []
    for c, d in _recent_deadlines(store, settings, now, alert_rules()["deadline_due"]["window_days"]):
        if d.role == Role.CUSTOMER and d.due is not None:
            alert = deadline_alert(_none(c["customer_id"]), c["call_id"], d.due, d.text, now, case_id=_none(c["case_id"]))
            if alert:
                alerts.append(replace(alert, evidence_time=d.time, call_started_at=_none(c["started_at"])))
    return alerts


def promise_alerts(store: Store, settings, now: datetime | None = None) -> list[Alert]:
    """Alerts for the follow-ups the bank promised by a channel and a time ("我们明天下午给您回电话",
    "we'll text you by Friday": an agent's deadline naming a channel, pipeline.analysis.facts), from
    `lead_minutes` before they are due to as long after, unless a callback reached the customer
    between the promise and its time (a handler's, or a recorded callback call)."""
    now = now or utcnow()
    rule = alert_rules()[PROMISE_KIND]
    promised = [(c, d) for c, d in _recent_deadlines(store, settings, now, rule["window_days"])
                if d.role == Role.AGENT and d.channel is not None and d.due is not None]
    if not promised:
        return []
    reached = store.reached_since(now - timedelta(days=rule["window_days"] + 1), settings.tz.key)
    alerts = []
    for c, d in promised:
        start = _none(c["started_at"]).replace(tzinfo=settings.tz)
        said = (start + timedelta(seconds=d.time)).astimezone(timezone.utc).replace(tzinfo=None)
        due = d.due.astimezone(timezone.utc).replace(tzinfo=None)
        if any(said <= at <= due for at in reached.get(_none(c["customer_id"]), [])):
            continue  # kept: the customer was reached in time
        alert = deadline_alert(_none(c["customer_id"]), c["call_id"], d.due, d.text, now,
                               lead=timedelta(minutes=rule["lead_minutes"]), case_id=_none(c["case_id"]), kind=PROMISE_KIND)
        if alert:
            alerts.append(replace(alert, evidence_time=d.time, call_started_at=_none(c["started_at"]),
                                  contact_channel=d.channel))
    return alerts


def record_alerts(store: Store, alerts: list[Alert], channels: list["Channel"]) -> list[Alert]:
    """Store new alerts and their outbox rows in one short transaction; returns those that were new."""
    new = store.record_alerts([{**asdict(alert), "sources": list(alert.sources)} for alert in alerts],
                              [channel.name for channel in channels])
    by_id = {alert.alert_id: alert for alert in alerts}
    return [by_id[i] for i in new]


# --- channels ------------------------------------------------------------------------------

class DeliveryFailed(Exception):
    pass


class Channel(Protocol):
    name: str

    def send(self, alert: Alert, delivery_id: str) -> None:
        """Deliver or raise DeliveryFailed."""


@dataclass(frozen=True)
class WebhookChannel:
    url: str
    timeout: float = 10.0
    name: str = "webhook"

    def send(self, alert: Alert, delivery_id: str) -> None:
        body = json.dumps(alert.payload(delivery_id), ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json; charset=utf-8", "Idempotency-Key": delivery_id})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:  # a non-2xx answer
            raise DeliveryFailed(f"HTTP {exc.code} from {self.url}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DeliveryFailed(f"{self.url}: {getattr(exc, 'reason', exc)}") from None


@dataclass(frozen=True)
class EmailChannel:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    timeout: float = 10.0
    name: str = "email"

    def send(self, alert: Alert, delivery_id: str) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"] = self.sender, ", ".join(self.recipients)
        msg["Subject"] = f"[callbrief] {alert.label()}: customer {alert.customer_id}, call {alert.call_id}"
        msg["Message-ID"] = f"<{delivery_id}@callbrief>"
        msg["X-Idempotency-Key"] = delivery_id
        msg.set_content("\n".join(f"{k}: {v}" for k, v in alert.payload(delivery_id).items() if v not in (None, "")))
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                smtp.send_message(msg)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"smtp {self.host}:{self.port}: {exc}") from None


def channels_from_settings(settings) -> list[Channel]:
    channels: list[Channel] = []
    if settings.alert_webhook_url:
        channels.append(WebhookChannel(settings.alert_webhook_url))
    recipients = tuple(r.strip() for r in settings.smtp_to.split(",") if r.strip())
    if settings.smtp_host and recipients:
        channels.append(EmailChannel(settings.smtp_host, settings.smtp_port, settings.smtp_from, recipients))
    return channels


# --- the outbox ------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeliveryReport:
    delivered: int
    failed: int  # attempts that failed this pass (the rows stay pending)
    pending: int  # rows still waiting after this pass
    errors: tuple[str, ...]


def backoff(attempts: int, base_seconds: float) -> timedelta:
    return min(BACKOFF_CAP, timedelta(seconds=base_seconds * 2 ** max(0, attempts - 1)))


def deliver_due(store: Store, channels: list[Channel], now: datetime | None = None,
                retry_seconds: float = 30.0) -> DeliveryReport:
    """One attempt at every outbox row that is due, on the channels configured now."""
    now = now or utcnow()
    by_name = {c.name: c for c in channels}
    due = store.due_deliveries(now, STALE_CLAIM)
    delivered, failed, errors = 0, 0, []
    for row in due:
        channel = by_name.get(row["channel"])
        if channel is None or not store.claim_delivery(row["delivery_id"], now, STALE_CLAIM):
            continue
        alert = Alert(**{f: _none(row[f]) for f in Alert.__dataclass_fields__})
        alert = replace(alert, sources=tuple(alert.sources if alert.sources is not None else ()))  # a list back as a tuple
        try:
            channel.send(alert, row["delivery_id"])
        except Exception as exc:  # DeliveryFailed, or anything unforeseen: this row waits, the others go on
            attempts = int(row["attempts"]) + 1
            store.delivery_failed(row["delivery_id"], attempts, now + backoff(attempts, retry_seconds), str(exc))
            failed += 1
            errors.append(f"{row['delivery_id']}: {exc}")
            continue
        # Sent: mark it before anything else, so no later failure can make it go out again.
        store.delivery_done(row["delivery_id"], utcnow())
        delivered += 1
    return DeliveryReport(delivered, failed, store.undelivered(), tuple(errors))


def raise_and_deliver(store: Store, call_ids: list[str], settings, now: datetime | None = None) -> DeliveryReport:
    """After a pass (intake or nightly): alerts for the calls it processed, then the whole outbox."""
    channels = channels_from_settings(settings)
    for call_id in call_ids:
        record_alerts(store, alerts_for_call(store, call_id, now, settings.policy.threat_flags), channels)
    # Deadlines come due with the clock, not with new calls: checked on every pass.
    record_alerts(store, deadline_alerts(store, settings, now), channels)
    record_alerts(store, promise_alerts(store, settings, now), channels)
    return deliver_due(store, channels, now, settings.alert_retry_seconds)


def _none(value):
    """pandas NaN/NaT (missing values read back from DuckDB) as None; timestamps as datetime."""
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
        if isinstance(value, pd.Timestamp):
            return value.to_pydatetime()
    except (TypeError, ValueError):
        pass
    return value
