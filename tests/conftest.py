"""Shared fixtures: real audio, the real offline model, a real DuckDB file, flows run by Prefect.

The nightly flow runs once per session over the sample calls plus a set of bad inputs; many
tests then assert on what it stored, so Whisper runs over each sample call only once.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
SHARED_AUDIO = ROOT.parent / "shared" / "audio"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no telemetry from test servers
# A loaded 2-core machine can take a minute to start Prefect's temporary server.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


def sample_truth(call_id: str) -> dict:
    return json.loads((SAMPLES / "truth" / f"{call_id}.json").read_text(encoding="utf-8"))


def sample_ids() -> list[str]:
    return sorted(p.stem for p in (SAMPLES / "truth").glob("*.json"))


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def engine():
    from pipeline.speech.asr import EngineSpec
    from pipeline.speech.transcribe import load_engine

    return load_engine(EngineSpec())


def write_bad_inputs(folder: Path) -> dict[str, str]:
    """Unusable recordings of every kind; returns call id -> words its failure reason must contain."""
    (folder / "empty.wav").write_bytes(b"")
    (folder / "not-audio.mp3").write_text("this is a text file pretending to be an mp3\n" * 50)
    sf.write(folder / "silence.wav", np.zeros(16_000 * 5, dtype=np.float32), 16_000, subtype="PCM_16")
    whole = (SAMPLES / "zh-1001-a.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(whole[: len(whole) // 3])
    (folder / "voicemail.wma").write_bytes(b"0" * 2048)
    return {"empty": "empty", "not-audio": "not a readable audio", "silence": "silent",
            "truncated": "truncated", "voicemail": "unsupported format"}


@pytest.fixture(scope="session")
def batch_dir(tmp_path_factory) -> Path:
    """The sample calls, bad inputs, and a manifest row naming a file that does not exist."""
    folder = tmp_path_factory.mktemp("recordings")
    for path in SAMPLES.iterdir():
        if path.is_file():
            shutil.copy2(path, folder / path.name)
    write_bad_inputs(folder)
    with (folder / "manifest.csv").open("a", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerow(["zh-9999", "lost-upload.wav", "C9999", "A017", "K-0", "2026-11-20T08:00:00", "mono", ""])
    return folder


@pytest.fixture(scope="session")
def nightly_db(prefect_harness, batch_dir, tmp_path_factory):
    """Run the nightly flow once over batch_dir; yields (db path, flow return value)."""
    from flows.nightly import nightly

    db_path = tmp_path_factory.mktemp("db") / "callbrief.duckdb"
    summary = nightly(input_dir=str(batch_dir), db_path=str(db_path))
    return db_path, summary


@pytest.fixture
def read_db(nightly_db):
    import duckdb

    conn = duckdb.connect(str(nightly_db[0]), read_only=True)
    yield conn
    conn.close()


def ffmpeg_convert(src: Path, dst: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-i", str(src), *args, str(dst)], check=True)
    return dst
