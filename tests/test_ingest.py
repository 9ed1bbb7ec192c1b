"""Manifest reading, ids for unlisted files, hashing, missing files."""
import json
import logging
import shutil

import pytest

from pipeline.ingest import ManifestError, discover, read_manifest, sha256_file
from tests.conftest import SAMPLES


def test_sample_manifest_gives_metadata_for_every_sample():
    found = discover(SAMPLES)
    by_id = {r.call_id: r for r in found.recordings}
    assert set(by_id) == {"zh-1001-a", "zh-1001-b", "en-2001", "en-2002"}
    a = by_id["zh-1001-a"].metadata
    assert (a.customer_id, a.agent_id, a.case_id, a.channel_layout, a.agent_channel) == (
        "C1001", "A017", "K-2026-1101", "stereo", 0)
    assert a.started_at.isoformat() == "2026-11-19T10:12:00"
    assert by_id["en-2001"].metadata.agent_channel is None  # left out on purpose
    assert found.missing == []


def test_unlisted_recording_gets_id_from_file_name_and_a_real_hash(tmp_path):
    shutil.copy2(SAMPLES / "en-2002.ogg", tmp_path / "Call 2026-11-20 #7.ogg")
    (rec,) = discover(tmp_path).recordings
    assert rec.call_id == "Call_2026-11-20_7"
    assert rec.sha256 == sha256_file(SAMPLES / "en-2002.ogg")
    assert rec.metadata.customer_id is None


def test_same_stem_in_two_folders_gets_distinct_ids(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copy2(SAMPLES / "en-2002.ogg", tmp_path / "a" / "call.ogg")
    shutil.copy2(SAMPLES / "zh-1001-b.flac", tmp_path / "b" / "call.flac")
    ids = [r.call_id for r in discover(tmp_path).recordings]
    assert len(set(ids)) == 2 and "call" in ids


def test_json_manifest_and_missing_file_is_warned_not_fatal(tmp_path, caplog):
    shutil.copy2(SAMPLES / "en-2002.ogg", tmp_path / "x.ogg")
    (tmp_path / "manifest.json").write_text(json.dumps({"calls": [
        {"call_id": "c1", "file": "x.ogg", "customer_id": "C1", "agent_channel": "right"},
        {"call_id": "c2", "file": "gone.wav", "customer_id": "C2"}]}))
    with caplog.at_level(logging.WARNING):
        found = discover(tmp_path)
    assert [r.call_id for r in found.recordings] == ["c1"]
    assert found.recordings[0].metadata.agent_channel == 1
    assert [m.metadata.call_id for m in found.missing] == ["c2"]
    assert "gone.wav" in caplog.text


def test_bad_manifests_are_refused_with_a_reason(tmp_path):
    (tmp_path / "m.csv").write_text("call_id,file,started_at\nc1,a.wav,yesterday\n")
    with pytest.raises(ManifestError, match="bad start time"):
        read_manifest(tmp_path / "m.csv")
    (tmp_path / "m2.csv").write_text("call_id,file\nc1,a.wav\nc1,b.wav\n")
    with pytest.raises(ManifestError, match="duplicate call ids"):
        read_manifest(tmp_path / "m2.csv")
