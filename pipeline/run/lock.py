"""One batch per database at a time: a lock file beside the database (`<db>.batch`), held with
flock by the process running a batch, so it is released when that process ends however it ends.
A second batch waits for it, or says in one line which run holds it. A handler's brief takes no
lock: the calls a running batch has claimed are left to it (pipeline.store.runs claims)."""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class BatchRunning(RuntimeError):
    """Another batch is processing the database."""


def lock_path(db_path: Path) -> Path:
    return Path(db_path).with_name(Path(db_path).name + ".batch")


@contextmanager
def batch_lock(db_path: Path, run_id: str, wait_seconds: float = 0.0, poll_seconds: float = 2.0) -> Iterator[None]:
    """Hold the database's batch lock for `run_id`; wait up to `wait_seconds` for another batch,
    then raise BatchRunning naming it."""
    path = lock_path(db_path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BatchRunning(f"another batch is processing {Path(db_path).name}: {holder(path)}; wait "
                                       "for it to finish or run again with --wait") from None
                time.sleep(poll_seconds)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
                                  "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def holder(path: Path) -> str:
    """Who holds a lock file, as its holder wrote it."""
    try:
        info = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "a run that has not said which"
    return f"run {info.get('run_id')} (process {info.get('pid')} on {info.get('host')}, since {info.get('since')})"
