"""The nightly flow (run by Prefect) ends with the retention purge (issue 24, part 3). Its
database and periods are those of tests/replay/test_retention.py; it lives here because it
starts Prefect's temporary server, which the fast class does not."""
from __future__ import annotations

from tests.dbfile import query
from tests.replay import test_retention as retention
from tests.replay.test_retention import AUDIO_PURGED, PERIODS, TEXT_PURGED

pristine, copied = retention.pristine, retention.db  # its fixtures (a copy of its database per test)


def test_the_nightly_flow_ends_with_the_purge(copied, tmp_path, prefect_harness, monkeypatch):
    from flows.nightly import nightly

    for name, days in PERIODS.items():
        monkeypatch.setenv(name, days)
    empty = tmp_path / "incoming"
    empty.mkdir()
    db = copied
    nightly(input_dir=str(empty), db_path=str(db), workers=1)
    assert [c for c, p in query(db, "SELECT call_id, path FROM calls ORDER BY call_id") if p is None] == AUDIO_PURGED
    assert query(db, "SELECT count(*) FROM words WHERE call_id IN (SELECT unnest(?))", [TEXT_PURGED])[0][0] == 0
