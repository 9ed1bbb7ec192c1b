"""One recording is one call, at the store: writing a call replaces the derived-id call it
supersedes, keeps that call's other paths and alerts, and never replaces a manifest's call.
Replayed sample calls (stored recognition, no Whisper), a real DuckDB file."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from evaluation.recognition import replay_call
from pipeline.outputs.alerts import alerts_for_call, record_alerts
from pipeline.run.execute import write_result
from pipeline.store import Store


@pytest.fixture(scope="module")
def threat_call():
    return replay_call("zh-1001-b")  # carries media and regulator threats


def _as(result, call_id: str, derived: bool, path: Path | None = None, sha: str | None = None):
    rec = replace(result.recording, call_id=call_id, derived_id=derived, path=path or result.recording.path,
                  sha256=sha or result.recording.sha256)
    return replace(result, recording=rec)


def _calls(store: Store) -> list[tuple]:
    return [tuple(r) for r in store.query("SELECT call_id, path, sha256 FROM calls ORDER BY call_id").itertuples(
        index=False)]


def test_a_manifest_id_that_arrives_later_takes_over_the_derived_call_and_its_alerts(tmp_path, threat_call):
    store = Store(tmp_path / "db.duckdb")
    derived = _as(threat_call, "zh-1001-b-1a2b3c4d", derived=True)
    write_result(store, derived)
    raised = record_alerts(store, alerts_for_call(store, derived.call_id), [])
    assert raised, "the sample threat call raises alerts"
    store.add_call_path(derived.call_id, "/elsewhere/copy.flac", derived.recording.sha256)

    write_result(store, _as(threat_call, "K-1001", derived=False))
    assert [c[0] for c in _calls(store)] == ["K-1001"]
    for table in ("words", "turns", "escalation", "summaries"):
        assert set(store.query(f"SELECT DISTINCT call_id FROM {table}").call_id) == {"K-1001"}, table
    assert set(store.query("SELECT path FROM call_paths WHERE call_id = 'K-1001'").path) == {"/elsewhere/copy.flac"}
    # The same threats under the manifest's id are the alerts raised already, not new ones.
    assert record_alerts(store, alerts_for_call(store, "K-1001"), []) == []
    alerts = store.query("SELECT call_id FROM alerts")
    assert len(alerts) == len(raised) and set(alerts.call_id) == {"K-1001"}


def test_a_manifests_call_is_never_replaced_by_another_id(tmp_path, threat_call):
    store = Store(tmp_path / "db.duckdb")
    write_result(store, _as(threat_call, "K-1", derived=False))
    write_result(store, _as(threat_call, "K-2", derived=False))  # the manifest names the audio twice
    assert [c[0] for c in _calls(store)] == ["K-1", "K-2"]
    write_result(store, _as(threat_call, "derived-1", derived=True))  # a derived id never replaces them
    assert [c[0] for c in _calls(store)] == ["K-1", "K-2", "derived-1"]


def test_a_path_that_now_holds_other_audio_moves_its_old_call_to_a_surviving_copy(tmp_path, threat_call):
    """d1 was found at /in/a.flac and, as a copy, at /in/b.flac. a.flac is re-exported with other
    audio: the new call takes a.flac, and d1 moves to b.flac instead of being deleted."""
    store = Store(tmp_path / "db.duckdb")
    old = _as(threat_call, "a-11111111", derived=True, path=Path("/in/a.flac"), sha="1" * 64)
    write_result(store, old)
    store.add_call_path("a-11111111", "/in/b.flac", "1" * 64)
    write_result(store, _as(threat_call, "a-22222222", derived=True, path=Path("/in/a.flac"), sha="2" * 64))
    assert _calls(store) == [("a-11111111", "/in/b.flac", "1" * 64), ("a-22222222", "/in/a.flac", "2" * 64)]
    # Without a copy, the changed file replaces the call of its path.
    write_result(store, _as(threat_call, "a-33333333", derived=True, path=Path("/in/a.flac"), sha="3" * 64))
    assert _calls(store) == [("a-11111111", "/in/b.flac", "1" * 64), ("a-33333333", "/in/a.flac", "3" * 64)]
