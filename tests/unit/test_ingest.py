"""Manifest reading, ids for unlisted files, hashing, missing files."""
import json
import logging
import re
import shutil

from pipeline.intake.ingest import discover, sha256_file
from tests.conftest import SAMPLES

HASH8 = r"[0-9a-f]{8}"


def test_sample_manifest_gives_metadata_for_every_sample():
    found = discover(SAMPLES)
    by_id = {r.call_id: r for r in found.recordings}
    assert set(by_id) == {"zh-1001-a", "zh-1001-b", "en-2001", "en-2002"}
    a = by_id["zh-1001-a"].metadata
    assert (a.customer_id, a.agent_id, a.case_id, a.channel_layout, a.agent_channel) == (
        "C1001", "A017", "K-2026-1101", "stereo", 0)
    assert a.started_at.isoformat() == "2026-11-19T10:12:00"
    assert by_id["en-2001"].metadata.agent_channel is None  # left out on purpose
    assert found.missing == [] and found.rejected == []


def test_unlisted_recording_gets_a_readable_id_from_path_and_contents_and_a_real_hash(tmp_path):
    shutil.copy2(SAMPLES / "en-2002.ogg", tmp_path / "Call 2026-11-20 #7.ogg")
    (rec,) = discover(tmp_path).recordings
    assert re.fullmatch(rf"Call_2026-11-20_7-{HASH8}", rec.call_id)
    assert rec.sha256 == sha256_file(SAMPLES / "en-2002.ogg")
    assert rec.metadata.customer_id is None and rec.metadata.call_id == rec.call_id
    assert discover(tmp_path).recordings[0].call_id == rec.call_id  # the same on every rerun


def test_same_name_on_two_days_never_shares_an_id_and_a_new_file_moves_no_id(tmp_path):
    (tmp_path / "day1").mkdir()
    (tmp_path / "day2").mkdir()
    shutil.copy2(SAMPLES / "en-2002.ogg", tmp_path / "day1" / "rec001.ogg")
    first = {r.path.name: r.call_id for r in discover(tmp_path).recordings}
    shutil.copy2(SAMPLES / "en-2002.ogg", tmp_path / "day2" / "rec001.ogg")  # same name, same contents
    shutil.copy2(SAMPLES / "zh-1001-b.flac", tmp_path / "rec001.flac")
    ids = {r.path.relative_to(tmp_path).as_posix(): r.call_id for r in discover(tmp_path).recordings}
    assert len(set(ids.values())) == 3
    assert ids["day1/rec001.ogg"] == first["rec001.ogg"]
    assert re.fullmatch(rf"day1-rec001-{HASH8}", ids["day1/rec001.ogg"])
    assert re.fullmatch(rf"day2-rec001-{HASH8}", ids["day2/rec001.ogg"])


def test_chinese_file_names_get_pinyin_ids_that_differ(tmp_path):
    shutil.copy2(SAMPLES / "zh-1001-b.flac", tmp_path / "投诉录音.flac")
    shutil.copy2(SAMPLES / "zh-1001-a.wav", tmp_path / "投诉录音.wav")
    ids = sorted(r.call_id for r in discover(tmp_path).recordings)
    assert len(set(ids)) == 2 and all(re.fullmatch(rf"tousu-luyin-{HASH8}", i) for i in ids), ids


def test_json_manifest_integer_ids_and_missing_file_is_warned_not_fatal(tmp_path, caplog):
    shutil.copy2(SAMPLES / "en-2002.ogg", tmp_path / "x.ogg")
    (tmp_path / "manifest.json").write_text(json.dumps({"calls": [
        {"call_id": 1001, "file": "x.ogg", "customer_id": 77, "agent_channel": "right", "speakers": 2},
        {"call_id": "c2", "file": "gone.wav", "customer_id": "C2"}]}))
    with caplog.at_level(logging.WARNING):
        found = discover(tmp_path)
    (rec,) = found.recordings
    assert (rec.call_id, rec.metadata.customer_id, rec.metadata.agent_channel) == ("1001", "77", 1)
    assert rec.metadata.speakers == (2, 2)
    assert [m.metadata.call_id for m in found.missing] == ["c2"]
    assert "gone.wav" in caplog.text and found.rejected == []
