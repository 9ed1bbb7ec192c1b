"""Real batches for tests: short real recordings cut from the sample calls, the CLI as a real
process, and looks at its database from outside (as another process would)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import SAMPLES, ffmpeg_convert

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "flows.cli"]
ENV = os.environ | {"PYTHONPATH": str(ROOT)}
SOURCES = [SAMPLES / "zh-1001-a.wav", SAMPLES / "en-2001.mp3", SAMPLES / "en-2002.ogg", SAMPLES / "zh-1001-b.flac"]


def clip(dst: Path, i: int, seconds: float = 6.0) -> Path:
    """A few seconds of real speech (the i-th cut of the sample calls), as `dst`."""
    return ffmpeg_convert(SOURCES[i % len(SOURCES)], dst, "-ss", str(2 + i), "-t", str(seconds))


def short_clips(folder: Path, n: int, seconds: float = 6.0, customers: list[str] | None = None) -> list[str]:
    """n real recordings of a few seconds with a manifest, each with its own customer (or
    `customers[i]`); returns their call ids."""
    rows = ["call_id,file,customer_id,agent_id,case_id,started_at"]
    ids = []
    for i in range(n):
        name = f"clip{i}{SOURCES[i % len(SOURCES)].suffix}"
        clip(folder / name, i, seconds)
        ids.append(f"clip-{i}")
        customer = customers[i] if customers else f"CU{i}"
        rows.append(f"clip-{i},{name},{customer},A1,K{i},2026-11-20T09:{i:02d}:00")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return ids


def start_cli(*args: str, **kwargs) -> subprocess.Popen:
    """The CLI as its own process (stdout discarded, stderr kept); the caller stops it."""
    return subprocess.Popen(CLI + list(args), cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)


def stop(proc: subprocess.Popen) -> None:
    """Kill a process the test started (a failed test must not leave it running)."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def wait_for(predicate, timeout: float, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("timed out")


def count_ok(db: Path, wait_seconds: float = 2.0, unreadable: int | None = 0) -> int | None:
    """Calls written, or `unreadable` when the file cannot be read within `wait_seconds`."""
    from pipeline.store import Store

    if not db.exists():
        return unreadable
    try:
        return int(Store(db, read_only=True, wait_seconds=wait_seconds).query(
            "SELECT count(*) AS n FROM calls WHERE status = 'ok'").n[0])
    except Exception:  # schema not written yet, or the writer holds the file: look again
        return unreadable


def read(db: Path, sql: str, params=None):
    """One query on the database from outside, as a frame."""
    from pipeline.store import Store

    return Store(db, read_only=True, wait_seconds=30).query(sql, params)
