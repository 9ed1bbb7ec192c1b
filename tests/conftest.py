"""Shared fixtures: real audio, the real offline model, a real DuckDB file, flows run by Prefect.

The suite is four classes by what a test needs (`make test` runs them all, `make test-fast` the
first two): tests/unit (no recognition), tests/replay (later stages on stored recognition runs),
tests/integration (Whisper, flows, processes, servers) and tests/browser (Chromium).

The nightly flow runs once per session over the sample calls plus a set of bad inputs; many
tests then assert on what it stored, so Whisper runs over each sample call only once. A test
that needs the shared data beside the checkout (../shared) says so when it skips, and the
session fails if any process a test started is still running when it ends.
"""
from __future__ import annotations

import atexit
import csv
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
SHARED = ROOT.parent / "shared"
SHARED_AUDIO = SHARED / "audio"
SHARED_DEV = SHARED / "dev"


def needs_shared(*parts: str):
    """Skip, saying what is missing, when the shared data beside the checkout is not there."""
    path = SHARED.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"needs {path} (the shared data beside the checkout)")

def _session_key() -> None:
    """The database key of this test session: a key file of its own (mode 600, outside the
    checkout), named in the environment so every process a test starts inherits it. A key the
    developer set (CALLBRIEF_DB_KEY / _FILE) is left as it is."""
    if os.environ.get("CALLBRIEF_DB_KEY") or os.environ.get("CALLBRIEF_DB_KEY_FILE"):
        return
    folder = Path(tempfile.mkdtemp(prefix="callbrief-test-key-"))
    from pipeline.config.keys import init_key

    path, _ = init_key(folder / "db.key")
    os.environ["CALLBRIEF_DB_KEY_FILE"] = str(path)
    atexit.register(shutil.rmtree, folder, True)


_session_key()
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The tests' recordings carry fixed start times (November 2026): once those are older than the
# default retention periods, every run's purge would delete the raw words the tests read. So the
# periods are long here; retention's own tests (tests/replay/test_retention.py) set theirs.
for _kind in ("AUDIO_PATHS", "RAW_TEXT", "REDACTED_AUDIO"):
    os.environ.setdefault(f"CALLBRIEF_RETAIN_{_kind}_DAYS", "36500")
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
    from pipeline.store.connect import Database

    with Database(nightly_db[0], read_only=True).reading() as conn:
        yield conn


def ffmpeg_convert(src: Path, dst: Path, *args: str) -> Path:
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-i", str(src), *args, str(dst)], check=True)
    return dst


@pytest.fixture(scope="session")
def replayed(tmp_path_factory) -> Path:
    """A real DuckDB file with the sample calls replayed from their stored recognition runs."""
    from evaluation.recognition import replay_db

    return replay_db(tmp_path_factory.mktemp("replay") / "calls.duckdb")


# --- no process left behind ----------------------------------------------------------------------

def pytest_configure(config):
    """Make this process the reaper of its descendants (Linux: PR_SET_CHILD_SUBREAPER), so a
    server a test's subprocess started in a new session is still found here if it outlives
    its parent, instead of being handed to init."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _children(pid: int) -> list[tuple[int, str]]:
    """Processes descended from `pid` (pid, command line), from /proc."""
    parent_of = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parent_of[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError):
                continue
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parent_of.items():
            if ppid == parent:
                try:
                    cmd = (Path("/proc") / str(child) / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                except OSError:
                    continue
                found.append((child, cmd))
                frontier.append(child)
    return found


def left_running() -> list[tuple[int, str]]:
    """This session's child processes that are still running, after a grace period for those
    that are stopping. multiprocessing's resource tracker is the interpreter's own helper: it
    exits with the interpreter."""
    deadline = time.monotonic() + 15
    while True:
        running = [(pid, cmd) for pid, cmd in _children(os.getpid())
                   if "multiprocessing.resource_tracker" not in cmd and not _zombie(pid)]
        if not running or time.monotonic() > deadline:
            return running
        time.sleep(0.5)


def _zombie(pid: int) -> bool:
    try:
        stat = (Path("/proc") / str(pid) / "stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def pytest_sessionfinish(session, exitstatus):
    running = left_running()
    if running:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        lines = "\n".join(f"  pid {pid}: {cmd[:200]}" for pid, cmd in running)
        session.config.get_terminal_writer().line(f"processes left running by the tests:\n{lines}", red=True)
