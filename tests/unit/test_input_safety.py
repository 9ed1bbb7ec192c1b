"""Bad input is caught at the door: manifest rows, paths, call ids, recordings that end early or carry
inf/NaN, a stereo call with no speech. Real files, real ffmpeg/sox output, the real model."""
import os
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.intake.identity import MAX_CALL_ID, safe_name
from pipeline.intake.ingest import discover, sha256_file
from pipeline.intake.manifest import parse_speakers, parse_time
from tests.conftest import SAMPLES

AUDIO = {"a.ogg": "en-2002.ogg", "b.flac": "zh-1001-b.flac", "c.wav": "zh-1001-a.wav", "d.mp3": "en-2001.mp3"}


def _folder(tmp_path: Path, manifest: str | None = None, name: str = "manifest.csv") -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for dst, src in AUDIO.items():
        shutil.copy2(SAMPLES / src, folder / dst)
    if manifest is not None:
        (folder / name).write_text(manifest, encoding="utf-8")
    return folder


def _by_file(found) -> dict[str, str]:
    return {r.path.name: r.call_id for r in found.recordings}


# --- manifest rows ------------------------------------------------------------------------------

def test_each_bad_row_is_reported_with_line_and_field_and_the_rest_is_processed(tmp_path):
    folder = _folder(tmp_path, "call_id,file,customer_id,started_at,agent_channel,colour\n"
                               "k1,a.ogg,C1,2026-11-20T09:00:00,left,blue\n"
                               "k2,b.flac,C2,20/11/2026 09:00,,\n"
                               "k3,c.wav,C3,,agent,\n")
    found = discover(folder)
    assert [str(r) for r in found.rejected if r.source == "manifest.csv"] == [
        "manifest.csv line 3, started_at: '20/11/2026 09:00' is not an ISO 8601 time (day and month order "
        "is not stated; if day first, write 2026-11-20T09:00)",
        "manifest.csv line 4, agent_channel: 'agent' is not one of 0, 1, left, right"]
    # The good row carries its metadata (the unknown column is ignored); the unlisted file gets an id.
    ids = _by_file(found)
    assert ids["a.ogg"] == "k1" and found.recordings[0].metadata.agent_channel == 0
    assert re.fullmatch(r"d-[0-9a-f]{8}", ids["d.mp3"])
    # The recordings of refused rows are held back, not processed without their customer.
    assert "b.flac" not in ids and "c.wav" not in ids
    held = {r.source: str(r) for r in found.rejected if r.source != "manifest.csv"}
    assert set(held) == {"b.flac", "c.wav"} and "line 3" in held["b.flac"]


def test_a_row_with_more_cells_than_the_header_is_refused_and_blank_rows_are_skipped(tmp_path):
    folder = _folder(tmp_path, "call_id,file,customer_id\nk1,a.ogg,Wang, Li\n,,\nk2,b.flac,C2\n")
    found = discover(folder)
    (row, held) = found.rejected
    assert (row.line, row.field) == (2, None) and "more cells than the header" in row.reason
    assert held.source == "a.ogg" and _by_file(found)["b.flac"] == "k2"


def test_duplicate_call_id_refuses_both_rows_and_both_are_reported(tmp_path):
    folder = _folder(tmp_path, "call_id,file,customer_id\nk1,a.ogg,C1\nk1,b.flac,C2\nk2,c.wav,C3\n")
    found = discover(folder)
    rows = [r for r in found.rejected if r.source == "manifest.csv"]
    assert [(r.line, r.field) for r in rows] == [(2, "call_id"), (3, "call_id")]
    assert "line 3" in rows[0].reason and "line 2" in rows[1].reason
    assert "k1" not in _by_file(found).values() and _by_file(found)["c.wav"] == "k2"


def test_two_rows_naming_one_file_are_both_refused_and_the_file_is_held_back(tmp_path):
    folder = _folder(tmp_path, "call_id,file,customer_id\nk1,a.ogg,C1\nk2,./a.ogg,C2\n")
    found = discover(folder)
    assert [(r.line, r.field) for r in found.rejected if r.source == "manifest.csv"] == [(2, "file"), (3, "file")]
    assert "a.ogg" not in _by_file(found) and len(found.recordings) == 3


def test_missing_file_column_reports_every_row_and_processes_the_folder_without_metadata(tmp_path):
    folder = _folder(tmp_path, "call_id,customer_id\nk1,C1\nk2,C2\n")
    found = discover(folder)
    assert [(r.line, r.field) for r in found.rejected] == [(2, "file"), (3, "file")]
    assert "no 'file' column" in found.rejected[0].reason
    assert len(found.recordings) == 4 and all(r.metadata.customer_id is None for r in found.recordings)


@pytest.mark.parametrize("text, says", [
    ('{"call_id": "k1", "file": "a.ogg"}', "must be a list"),
    ('"a.ogg"', "must be a list"),
    ('[{"call_id": "k1", "file": "a.ogg"},', "cannot read the manifest"),
])
def test_a_json_manifest_that_is_not_a_list_or_not_json_is_one_error_and_recordings_are_found(tmp_path, text, says):
    found = discover(_folder(tmp_path, text, "manifest.json"))
    (rejection,) = found.rejected
    assert rejection.source == "manifest.json" and says in rejection.reason and "\n" not in str(rejection)
    assert len(found.recordings) == 4


def test_json_rows_report_the_line_they_start_on(tmp_path):
    text = '[\n  {"call_id": "k1", "file": "a.ogg"},\n  {"call_id": "k2",\n   "file": "b.flac", "speakers": "2-9"},\n  7\n]'
    found = discover(_folder(tmp_path, text, "manifest.json"))
    assert [(r.line, r.field) for r in found.rejected if r.source == "manifest.json"] == [(3, "speakers"), (5, None)]


def test_a_csv_that_is_not_utf8_is_reported_not_raised(tmp_path):
    folder = _folder(tmp_path)
    (folder / "manifest.csv").write_bytes("call_id,file,customer_id\nk1,a.ogg,张三\n".encode("gb18030"))
    found = discover(folder)
    assert len(found.rejected) == 1 and "UTF-8" in found.rejected[0].reason and len(found.recordings) == 4



def test_an_empty_manifest_is_one_line_that_says_so(tmp_path):
    """It was "I/O operation on closed file." (the header was read after the file was closed)."""
    folder = _folder(tmp_path, "")
    found = discover(folder)
    assert len(found.recordings) == 4
    (reason,) = [r.reason for r in found.rejected if r.source == "manifest.csv"]
    assert "empty" in reason and "header" in reason and "closed file" not in reason and "\n" not in reason


def test_a_manifest_that_leads_outside_the_folder_is_refused_and_not_read(tmp_path):
    """Recordings are contained, and so is the manifest: a symlink to a manifest elsewhere (or a
    FIFO that would block) must not give the folder's audio someone else's ids and customers."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "manifest.csv").write_text("call_id,file,customer_id\nplanted,a.ogg,VICTIM\n", encoding="utf-8")
    folder = _folder(tmp_path)
    os.symlink(outside / "manifest.csv", folder / "manifest.csv")
    found = discover(folder)
    assert "planted" not in _by_file(found).values()
    assert all(r.metadata.customer_id != "VICTIM" for r in found.recordings) and len(found.recordings) == 4
    (reason,) = [r.reason for r in found.rejected if r.source == "manifest.csv"]
    assert "outside the input folder" in reason
    # A symlink that stays inside the folder is the manifest it points to.
    (folder / "manifest.csv").unlink()
    (folder / "meta").mkdir()
    (folder / "meta" / "rows.csv").write_text("call_id,file,customer_id\nk1,a.ogg,C1\n", encoding="utf-8")
    os.symlink("meta/rows.csv", folder / "manifest.csv")
    assert _by_file(discover(folder))["a.ogg"] == "k1"

def test_times_accepted_are_unambiguous_only():
    assert parse_time("2026-11-20T09:30:00Z").utcoffset().total_seconds() == 0
    assert parse_time("2026-11-20 09:30").isoformat() == "2026-11-20T09:30:00"
    assert parse_time("2026/11/20 09:30").isoformat() == "2026-11-20T09:30:00"
    assert parse_time("2026年11月20日 9:30").isoformat() == "2026-11-20T09:30:00"
    for ambiguous in ("05/11/2026 09:00", "20/11/2026 09:00", "11/20/2026", "yesterday", "2026/02/30 09:00"):
        with pytest.raises(ValueError, match="ISO 8601|not a valid time"):
            parse_time(ambiguous)


def test_speakers_column_is_a_count_or_a_range():
    assert [parse_speakers(v) for v in ("1", "2", " 3 ", "2-3", 2)] == [(1, 1), (2, 2), (3, 3), (2, 3), (2, 2)]
    for bad in ("0", "3-2", "two", "2-99", True, "2.5"):
        with pytest.raises(ValueError):
            parse_speakers(bad)


# --- paths --------------------------------------------------------------------------------------

def test_paths_outside_the_folder_are_refused_and_never_opened(tmp_path):
    """The outside 'recording' is a FIFO: opening it to hash it would block, so finishing proves
    nothing outside was opened."""
    outside = tmp_path / "outside"
    outside.mkdir()
    os.mkfifo(outside / "secret.wav")
    _folder(tmp_path, "call_id,file,customer_id\n"
                      "k1,/etc/hostname,C1\n"
                      "k2,../outside/secret.wav,C2\n"
                      f"k3,{folder_abs(tmp_path)}/a.ogg,C3\n"
                      "k4,b.flac,C4\n")
    os.symlink(outside / "secret.wav", tmp_path / "in" / "link.wav")
    os.symlink("../outside", tmp_path / "in" / "linked-dir")
    done: list = []
    worker = threading.Thread(target=lambda: done.append(discover(tmp_path / "in")), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert done, "discover opened a path outside the input folder"
    found = done[0]
    reasons = {(r.source, r.line): r.reason for r in found.rejected}
    assert "absolute path" in reasons[("manifest.csv", 2)] and "absolute path" in reasons[("manifest.csv", 4)]
    assert "outside the input folder" in reasons[("manifest.csv", 3)]
    assert "outside the input folder" in reasons[("link.wav", None)]
    assert all(r.path.is_relative_to((tmp_path / "in").resolve()) for r in found.recordings)
    assert _by_file(found)["b.flac"] == "k4" and len(found.recordings) == 3  # a.ogg: its row was refused


def folder_abs(tmp_path: Path) -> str:
    return str((tmp_path / "in").resolve())


def test_a_symlink_inside_the_folder_is_the_recording_it_points_to(tmp_path):
    folder = _folder(tmp_path)
    os.symlink("a.ogg", folder / "alias.ogg")
    found = discover(folder)
    assert len(found.recordings) == 4 and found.rejected == []


def test_refused_files_are_not_hashed(tmp_path):
    """A bad call_id in a row: its file is held back and not hashed (discover stays fast)."""
    folder = _folder(tmp_path, "call_id,file\n../outside/pwned,d.mp3\n")
    found = discover(folder)
    assert found.rejected[0].field == "call_id" and "d.mp3" not in _by_file(found)
    assert sha256_file(folder / "d.mp3") not in {r.sha256 for r in found.recordings}


# --- call ids -----------------------------------------------------------------------------------

def test_safe_name_keeps_valid_ids_and_confines_the_rest(tmp_path):
    assert safe_name("zh-1001-a") == "zh-1001-a" and safe_name(1001) == "1001"
    for hostile in ("../outside/pwned", "..", ".hidden", "a/b", "-rf", "x" * 200, "", "投诉 1"):
        name = safe_name(hostile)
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) and len(name) <= MAX_CALL_ID
        assert (tmp_path / f"{name}.svg").resolve().parent == tmp_path.resolve()


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80))
def test_safe_name_is_a_plain_file_name_and_different_ids_get_different_names(a, b):
    for text in (a, b):
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", safe_name(text)) and len(safe_name(text)) <= MAX_CALL_ID
    if a != b:
        assert safe_name(a) != safe_name(b)


# --- recordings ---------------------------------------------------------------------------------



def test_a_float_wav_that_is_mostly_not_finite_fails_with_a_reason(tmp_path):
    from pipeline.intake.audio import BadRecording, decode

    samples, rate = sf.read(SAMPLES / "zh-1001-b.flac", dtype="float32")
    samples[::50] = np.nan  # 2 %
    sf.write(tmp_path / "nan.wav", samples, rate, subtype="FLOAT")
    with pytest.raises(BadRecording, match="not finite"):
        decode(tmp_path / "nan.wav")




def test_language_takes_a_whisper_code_or_name_and_refuses_the_rest():
    from pipeline.intake.manifest import parse_row

    assert [parse_row({"file": "a.wav", "language": v})[0].metadata.language
            for v in ("zh", "Mandarin", "zh-CN", "EN")] == ["zh", "zh", "zh", "en"]
    assert parse_row({"file": "a.wav", "language": "klingon"})[1][0][0] == "language"


def test_manifest_times_with_a_zone_are_stored_in_the_centre_zone(tmp_path):
    """Handlers read naive times as the centre's wall clock: 08:40Z is 16:40 in Beijing."""
    from datetime import datetime

    from pipeline.config.settings import Settings
    from pipeline.run.plan import plan_batch
    from pipeline.speech.asr import EngineSpec
    from pipeline.store import Store

    (tmp_path / "a.wav").write_bytes((SAMPLES / "zh-1001-a.wav").read_bytes())
    (tmp_path / "manifest.csv").write_text("call_id,file,started_at\nz1,a.wav,2026-11-20T08:40:00Z\n")
    store = Store(tmp_path / "db.duckdb")
    beijing = plan_batch(tmp_path, store, EngineSpec(), settings=Settings(timezone="Asia/Shanghai")).todo[0]
    london = plan_batch(tmp_path, store, EngineSpec(), settings=Settings(timezone="Europe/London")).todo[0]
    assert beijing.metadata.started_at == datetime(2026, 11, 20, 16, 40)
    assert london.metadata.started_at == datetime(2026, 11, 20, 8, 40)


def test_nan_samples_are_counted_at_the_files_own_rate_before_resampling(tmp_path):
    """A 22.05 kHz float recording with 0.02 % NaN samples is a glitch to zero, not damage: counted
    after resampling, each NaN spread over its neighbours and the file failed as 1 % not finite."""
    from pipeline.intake.audio import MAX_NONFINITE_SHARE, decode

    samples, rate = sf.read(SAMPLES / "zh-1001-b.flac", dtype="float32")
    at_22k = np.interp(np.arange(0, len(samples), rate / 22050), np.arange(len(samples)), samples).astype(np.float32)
    bad = np.random.default_rng(0).choice(len(at_22k), size=int(len(at_22k) * 0.0002), replace=False)
    at_22k[bad] = np.nan
    assert len(bad) < MAX_NONFINITE_SHARE * at_22k.size
    sf.write(tmp_path / "glitch.wav", at_22k, 22050, subtype="FLOAT")
    audio = decode(tmp_path / "glitch.wav")
    assert audio.sample_rate == 16_000 and np.isfinite(audio.samples).all()
    assert abs(audio.duration - len(at_22k) / 22050) < 0.05
