"""Times a handler sees, in the centre's time zone.

The pipeline stores manifest start times as written (naive = the centre's local time, as the
manifest is read) and its own timestamps (processed_at, briefings, audit, callbacks) as naive UTC.
"""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo


def call_time(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    """A calls.started_at value as an aware time in the centre's zone."""
    if value is None:
        return None
    return value.astimezone(tz) if value.tzinfo else value.replace(tzinfo=tz)


def utc_time(value: datetime | None, tz: ZoneInfo) -> datetime | None:
    """A naive-UTC timestamp (audit, callbacks, processed_at) in the centre's zone."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(tz)


def parse_iso(text: str | None, tz: ZoneInfo) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value.astimezone(tz) if value.tzinfo else value.replace(tzinfo=tz)

