"""Faults a night brings, each as a bank's operations team meets it (issue 23): another process
holding the database, a stop (Ctrl-C, SIGTERM), the same audio under a new name, a manifest fixed
later, a file replaced or caught half-uploaded, two batches at once, a read-only folder, a full
disk, and the exit code a scheduler reads.

Real Whisper on short real clips, the CLI as a real process, real signals, a real DuckDB file held
by a real second process; the read-only folder and the full disk are real too (a mount namespace
with a small tmpfs, a process without the capability to ignore file permissions).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.batches import CLI, ENV, ROOT, clip, count_ok, read, run_cli, short_clips, start_cli, stop, wait_for
from tests.dbfile import HOLD


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)  # as the store writes times


def _run_rows_match_calls(db: Path) -> None:
    """Every run row counts what the calls table holds for that run."""
    runs = read(db, "SELECT r.run_id, r.n_processed, r.n_failed, count(*) FILTER (WHERE c.status = 'ok') AS ok, "
                    "count(*) FILTER (WHERE c.status = 'failed') AS failed FROM runs r "
                    "LEFT JOIN calls c USING (run_id) GROUP BY ALL")
    for r in runs.itertuples():
        assert (r.n_processed, r.n_failed) == (r.ok, r.failed), r


# --- 1. briefings after every failure, and run rows that tell the truth -------------------------------



def test_a_database_held_by_another_process_delays_the_batch_and_no_customer_loses_a_briefing(tmp_path):
    """A report holding the database for longer than a writer's wait (60 s): the call being written
    was stored as failed, the briefing refresh crashed, the run row said completed with 0 failed
    and four customers had no briefing. Now the batch waits for the database and loses nothing."""
    folder = tmp_path / "in"
    folder.mkdir()
    ids = short_clips(folder, 4, seconds=4)
    db = tmp_path / "db.duckdb"
    batch = start_cli("run", "--input", str(folder), "--db", str(db), "--workers", "1")
    holder = None
    try:
        wait_for(lambda: count_ok(db) >= 1, timeout=300)
        holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db), "75"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "held"
        holder.wait(timeout=200)
        assert batch.poll() is None, "the batch waits for the database, it does not end while it is held"
        err = batch.communicate(timeout=600)[1]
    finally:
        stop(batch)
        if holder is not None:
            stop(holder)
    assert batch.returncode == 0, err[-2000:]
    calls = read(db, "SELECT call_id, status, customer_id FROM calls ORDER BY call_id")
    assert list(calls.call_id) == ids and set(calls.status) == {"ok"}
    runs = read(db, "SELECT status, n_processed, n_failed FROM runs")
    assert list(runs.itertuples(index=False, name=None)) == [("completed", 4, 0)]
    briefed = set(read(db, "SELECT customer_id FROM briefings").customer_id)
    assert briefed == set(calls.customer_id)


def test_one_customers_failing_briefing_never_stops_the_others_and_the_next_run_writes_it(tmp_path):
    """A customer whose briefing cannot be written (here: an escalation row damaged by hand) is one
    line of the run's status; every other customer is briefed; the next run tries that customer again."""
    from pipeline.run.execute import run_batch
    from pipeline.store import Store

    folder = tmp_path / "in"
    folder.mkdir()
    short_clips(folder, 2, seconds=4)
    db = tmp_path / "db.duckdb"
    first, _ = run_batch(folder, db, workers=1)
    assert first.status == "completed"
    with Store(db) as store:  # CU0's first call: its flags are not a list of flag names any more
        store.execute("UPDATE escalation SET flags = '[{\"broken\": true}]' WHERE call_id = 'clip-0'")
    for i, customer in ((8, "CU0"), (9, "CU9")):  # new calls of CU0 and CU9
        clip(folder / f"clip{i}.wav", i, 4)
        with (folder / "manifest.csv").open("a") as fh:
            fh.write(f"clip-{i},clip{i}.wav,{customer},A1,K{i},2026-11-20T10:0{i}:00\n")
    second, _ = run_batch(folder, db, workers=1)
    assert second.n_processed == 2 and second.status == "completed_with_failures"
    assert "briefing of customer CU0 not refreshed" in second.message
    newest = read(db, "SELECT customer_id, max(n_calls) AS n FROM briefings GROUP BY ALL")
    assert dict(newest.itertuples(index=False)) == {"CU0": 1, "CU1": 1, "CU9": 1}  # CU0's is the old one
    with Store(db) as store:  # repaired: the next run writes the briefing it could not write
        store.execute("UPDATE escalation SET flags = '[]' WHERE call_id = 'clip-0'")
    third, _ = run_batch(folder, db, workers=1)
    assert third.status == "completed" and third.n_processed == 0
    assert int(read(db, "SELECT max(n_calls) AS n FROM briefings WHERE customer_id = 'CU0'").n[0]) == 2


def test_the_customers_of_a_failed_run_are_briefed_by_the_next_run(tmp_path):
    """Only interrupted runs' customers were refreshed, not those of a failed one. Here the run
    fails after writing its first call (its caller's callback raises: a real failure path)."""
    from pipeline.run.execute import engine_for_workers, execute, run_batch, thread_processor
    from pipeline.store import Store

    folder = tmp_path / "in"
    folder.mkdir()
    short_clips(folder, 3, seconds=4)
    db = tmp_path / "db.duckdb"
    spec = engine_for_workers("base", 1)

    def fail(result):
        raise RuntimeError("the caller broke")

    with pytest.raises(RuntimeError, match="the caller broke"):
        execute(folder, Store(db), spec, thread_processor(spec, 1), on_result=fail)
    (failed,) = read(db, "SELECT status, n_processed, message FROM runs").itertuples()
    assert failed.status == "failed" and failed.n_processed == 1 and "the caller broke" in failed.message
    written = set(read(db, "SELECT customer_id FROM calls").customer_id)
    assert read(db, "SELECT count(*) AS n FROM briefings").n[0] == 0
    again, _ = run_batch(folder, db, workers=1)
    assert again.status == "completed" and again.n_processed == 2
    assert written <= set(read(db, "SELECT customer_id FROM briefings").customer_id)
    _run_rows_match_calls(db)


# --- 2. a stop that stops -----------------------------------------------------------------------------

class _Stderr:
    """A process's stderr read as it comes, each chunk with the time it arrived."""

    def __init__(self, proc: subprocess.Popen):
        import threading

        self.chunks: list[tuple[float, str]] = []
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc):
        for chunk in iter(lambda: os.read(proc.stderr.fileno(), 4096), b""):
            self.chunks.append((time.monotonic(), chunk.decode(errors="replace")))

    def text(self) -> str:
        self._thread.join(timeout=10)
        return "".join(c for _, c in self.chunks)

    def transcribing(self, after: float | None = None, before: float | None = None) -> set[str]:
        """Calls whose transcription progress the CLI showed in that time."""
        text = "".join(c for t, c in self.chunks if (after is None or t > after) and (before is None or t <= before))
        return set(re.findall(r"(clip-\d+): \d+\.\d/", text))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_cancels_the_queued_calls_and_exits_within_seconds(tmp_path, signum):
    """Ctrl-C on a 12-call batch exited after 96 s: every queued call was transcribed and thrown
    away. Now queued calls are never started, the running one stops at its next segment."""
    folder = tmp_path / "in"
    folder.mkdir()
    ids = short_clips(folder, 12, seconds=5)
    db = tmp_path / "db.duckdb"
    batch = subprocess.Popen(CLI + ["run", "--input", str(folder), "--db", str(db), "--workers", "1"], cwd=ROOT,
                             env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = _Stderr(batch)
    try:
        wait_for(lambda: count_ok(db) >= 1, timeout=300)
        signalled_at, clock = _now(), time.monotonic()
        batch.send_signal(signum)
        batch.wait(timeout=300)
        seconds = time.monotonic() - clock
    finally:
        stop(batch)
    text = err.text()
    started_after = err.transcribing(after=clock + 0.5) - err.transcribing(before=clock + 0.5)
    after = int(read(db, "SELECT count(*) AS n FROM calls WHERE processed_at > ?", [signalled_at]).n[0])
    written = int(read(db, "SELECT count(*) AS n FROM calls").n[0])
    print(f"\n{signal.Signals(signum).name} on a 12-call batch: exit {seconds:.1f} s after the signal; "
          f"{len(started_after)} call(s) transcribed after it, {after} written after it, {written} of 12 written in all")
    assert batch.returncode == 130, text[-2000:]
    assert seconds < 20 and not started_after and after <= 1 and written < len(ids), text[-2000:]
    assert "Traceback" not in text
    (run,) = read(db, "SELECT status, message FROM runs").itertuples()
    assert run.status == "cancelled" and "stopped by" in run.message
    _run_rows_match_calls(db)
    assert read(db, "SELECT count(*) AS n FROM briefings").n[0] == 0  # the refresh waits for a run that finishes

    if signum == signal.SIGINT:  # the next run does the rest and briefs the cancelled run's customers too
        from pipeline.run.execute import run_batch

        again, _ = run_batch(folder, db, workers=1)
        assert again.status == "completed" and again.n_processed == len(ids) - written
        customers = set(read(db, "SELECT customer_id FROM calls WHERE status = 'ok'").customer_id)
        assert len(customers) == len(ids)
        assert set(read(db, "SELECT customer_id FROM briefings").customer_id) == customers
        _run_rows_match_calls(db)


# --- 3. one recording, one call ---------------------------------------------------------------------

def _calls(db: Path):
    return read(db, "SELECT call_id, status, path, sha256, customer_id FROM calls ORDER BY call_id")


def test_a_renamed_or_copied_file_is_another_path_of_the_same_call(tmp_path):
    from pipeline.run.execute import run_batch

    folder = tmp_path / "in"
    folder.mkdir()
    clip(folder / "morning.wav", 0, 4)
    db = tmp_path / "db.duckdb"
    run_batch(folder, db, workers=1)
    (first,) = _calls(db).itertuples()
    (folder / "morning.wav").rename(folder / "renamed.wav")
    shutil.copy(folder / "renamed.wav", folder / "copy.wav")
    run, results = run_batch(folder, db, workers=1)
    assert results == [] and run.n_processed == 0 and run.status == "completed"
    (call,) = _calls(db).itertuples()
    assert call.call_id == first.call_id
    paths = set(read(db, "SELECT path FROM call_paths WHERE call_id = ?", [call.call_id]).path)
    assert {str(folder / "renamed.wav"), str(folder / "copy.wav")} <= {str(Path(p)) for p in paths}


def test_the_same_audio_twice_in_one_folder_is_one_call_and_survives_a_re_export(tmp_path):
    """Two copies of new audio are processed once; when one name is re-exported with other audio,
    the old call moves to the copy that still has it, and only the new audio is processed."""
    from pipeline.run.execute import run_batch

    folder = tmp_path / "in"
    folder.mkdir()
    clip(folder / "a.wav", 0, 4)
    shutil.copy(folder / "a.wav", folder / "b.wav")
    db = tmp_path / "db.duckdb"
    first, results = run_batch(folder, db, workers=1)
    assert len(results) == 1 and first.n_processed == 1
    (call,) = _calls(db).itertuples()
    assert set(read(db, "SELECT path FROM call_paths").path) == {str(folder / "b.wav")}
    clip(folder / "a.wav", 1, 4)  # a.wav re-exported with other audio; b.wav keeps the old
    second, results = run_batch(folder, db, workers=1)
    assert second.n_processed == 1 and [r.recording.path.name for r in results] == ["a.wav"]
    calls = {Path(c.path).name: c for c in _calls(db).itertuples()}
    assert set(calls) == {"a.wav", "b.wav"} and calls["b.wav"].call_id == call.call_id
    third, results = run_batch(folder, db, workers=1)
    assert results == [] and third.status == "completed"


def test_a_renamed_call_that_failed_is_tried_again_under_its_own_id(tmp_path):
    from pipeline.run.execute import run_batch

    folder = tmp_path / "in"
    folder.mkdir()
    whole = clip(tmp_path / "whole.wav", 2, 4).read_bytes()
    (folder / "cut.wav").write_bytes(whole[: len(whole) // 3])
    db = tmp_path / "db.duckdb"
    run_batch(folder, db, workers=1)
    (failed,) = _calls(db).itertuples()
    (folder / "cut.wav").rename(folder / "renamed.wav")
    run, _ = run_batch(folder, db, workers=1)
    (again,) = read(db, "SELECT call_id, attempts, path FROM calls").itertuples()
    assert again.call_id == failed.call_id and again.attempts == 2 and again.path.endswith("renamed.wav")


def test_a_manifest_fixed_later_renames_the_call_instead_of_adding_one(tmp_path):
    """A manifest that could not be read (not UTF-8) gave the audio a derived id; the fixed one
    names it: the call takes the manifest's id and customer, and the derived call is gone."""
    from pipeline.run.execute import run_batch

    folder = tmp_path / "in"
    folder.mkdir()
    clip(folder / "a.wav", 1, 4)
    (folder / "manifest.csv").write_bytes("call_id,file,customer_id\nk1,a.wav,张三\n".encode("gb18030"))
    db = tmp_path / "db.duckdb"
    first, _ = run_batch(folder, db, workers=1)
    assert first.n_rejected == 1 and len(_calls(db)) == 1
    (folder / "manifest.csv").write_text("call_id,file,customer_id\nk1,a.wav,C77\n", encoding="utf-8")
    run_batch(folder, db, workers=1)
    calls = _calls(db)
    assert list(calls.call_id) == ["k1"] and list(calls.customer_id) == ["C77"]
    for table in ("words", "turns"):
        assert set(read(db, f"SELECT DISTINCT call_id FROM {table}").call_id) <= {"k1"}


def test_a_changed_file_replaces_the_call_of_its_path(tmp_path):
    from pipeline.run.execute import run_batch

    folder = tmp_path / "in"
    folder.mkdir()
    clip(folder / "a.wav", 0, 4)
    db = tmp_path / "db.duckdb"
    run_batch(folder, db, workers=1)
    clip(folder / "a.wav", 1, 4)  # the same name, other audio (a re-export, a corrected file)
    run_batch(folder, db, workers=1)
    calls = _calls(db)
    assert len(calls) == 1 and calls.status[0] == "ok"
    from pipeline.intake.ingest import sha256_file

    assert calls.sha256[0] == sha256_file(folder / "a.wav")


def test_a_half_uploaded_files_failed_row_is_replaced_by_the_complete_call(tmp_path):
    from pipeline.run.execute import run_batch

    folder = tmp_path / "in"
    folder.mkdir()
    whole = clip(tmp_path / "whole.wav", 2, 4)
    data = whole.read_bytes()
    (folder / "upload.wav").write_bytes(data[: len(data) // 3])  # the header promises more than arrived
    db = tmp_path / "db.duckdb"
    run_batch(folder, db, workers=1)
    (cut,) = _calls(db).itertuples()
    assert cut.status == "failed"
    (folder / "upload.wav").write_bytes(data)
    run, _ = run_batch(folder, db, workers=1)
    calls = _calls(db)
    assert len(calls) == 1 and calls.status[0] == "ok" and run.status == "completed"


# --- 8. one batch per database, and a brief that leaves a batch's calls to it -------------------------

def test_a_second_batch_waits_or_says_which_run_holds_the_database_and_a_brief_leaves_claimed_calls(tmp_path):
    from pipeline.run.execute import run_batch

    folder = tmp_path / "in"
    folder.mkdir()
    clip(folder / "clip0.wav", 0, 4)
    (folder / "manifest.csv").write_text("call_id,file,customer_id\nold-0,clip0.wav,C5\n")
    db = tmp_path / "db.duckdb"
    run_batch(folder, db, workers=1)  # C5 has a call already
    short_clips(folder, 6, seconds=4, customers=["C0", "C1", "C2", "C3", "C4", "C5"])
    with (folder / "manifest.csv").open("a") as fh:  # the old call keeps its id (the new manifest lists it too)
        fh.write("old-0,old0.wav,C5,A1,K0,2026-11-19T09:00:00\n")
    shutil.copy(folder / "clip0.wav", folder / "old0.wav")
    clip(folder / "clip0.wav", 10, 4)  # clip-0 is new audio
    batch = start_cli("run", "--input", str(folder), "--db", str(db), "--workers", "1")
    waiter = None
    try:
        wait_for(lambda: int(read(db, "SELECT count(*) AS n FROM runs WHERE status = 'running'").n[0]) == 1
                 and int(read(db, "SELECT count(*) AS n FROM claims").n[0]) > 0, timeout=120, every=0.5)
        # Frozen (not between two writes: the database must be free) while the others look, so the
        # batch is still running and C5's new call still claimed however fast this machine is.
        wait_for(lambda: _freeze_between_writes(batch, db), timeout=60, every=0.05)
        second = run_cli("run", "--input", str(folder), "--db", str(db), timeout=120)
        assert second.returncode == 2
        running = read(db, "SELECT run_id FROM runs WHERE status = 'running'").run_id[0]
        last = second.stderr.strip().splitlines()[-1]
        assert "another batch" in last and running in last and "--wait" in last
        waiter = start_cli("run", "--input", str(folder), "--db", str(db), "--wait")
        clock = time.monotonic()
        brief = run_cli("brief", "C5", "--input", str(folder), "--db", str(db), "--lang", "en", timeout=120)
        brief_seconds = time.monotonic() - clock
        assert batch.poll() is None, "the batch must still be running during the brief"
        assert brief.returncode == 0, brief.stderr
        assert "1 newer call(s) are being processed now" in brief.stdout
        print(f"\nbrief while the batch holds C5's new call: {brief_seconds:.1f} s, no call transcribed")
        batch.send_signal(signal.SIGCONT)
        err = batch.communicate(timeout=600)[1]
        waited = waiter.communicate(timeout=600)[1]
    finally:
        if batch.poll() is None:
            batch.send_signal(signal.SIGCONT)
        stop(batch)
        if waiter is not None:
            stop(waiter)
    assert batch.returncode == 0, err[-2000:]
    assert waiter.returncode == 0, waited[-2000:]
    runs = read(db, "SELECT flow, status, n_processed FROM runs ORDER BY started_at")
    assert list(runs.n_processed) == [1, 6, 0, 0]  # the first run, the batch, the brief, the waiting batch
    assert list(runs.flow)[2] == "brief" and set(runs.status) == {"completed"}
    assert len(_calls(db)) == 7 and read(db, "SELECT count(*) AS n FROM claims").n[0] == 0


def _freeze_between_writes(proc: subprocess.Popen, db: Path) -> bool:
    """SIGSTOP `proc` at a moment it does not hold the database; False (and running again) if it did."""
    proc.send_signal(signal.SIGSTOP)
    if count_ok(db, wait_seconds=0.5, unreadable=None) is not None:
        return True
    proc.send_signal(signal.SIGCONT)
    return False


# --- 7, 9. errors that name their cause, exit codes a scheduler can read ------------------------------

def test_exit_codes_tell_a_clean_run_from_failed_calls_from_a_stopped_run(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    short_clips(folder, 1, seconds=4)
    db = tmp_path / "db.duckdb"
    clean = run_cli("run", "--input", str(folder), "--db", str(db), "--workers", "1")
    assert clean.returncode == 0, clean.stderr[-2000:]
    (folder / "broken.wav").write_bytes(b"RIFF" + os.urandom(4000))
    failed_call = run_cli("run", "--input", str(folder), "--db", str(db), "--workers", "1")
    assert failed_call.returncode == 3, failed_call.stderr[-2000:]
    assert "completed_with_failures" in failed_call.stdout
    stopped = run_cli("run", "--input", str(tmp_path / "no-such-folder"), "--db", str(db))
    assert stopped.returncode == 2
    assert len(stopped.stderr.strip().splitlines()) == 1 and "no-such-folder" in stopped.stderr


def _root_without_override() -> list[str] | None:
    """A prefix that runs a command without the power to ignore file permissions (root has it)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv"):
        return ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-dac_override,-dac_read_search"]
    return None


def test_a_read_only_folder_is_one_line_naming_the_folder(tmp_path):
    """The database file is writable, its folder is not: DuckDB cannot create the WAL. It said
    "cannot rollback - no transaction is active"."""
    prefix = _root_without_override()
    if prefix is None:
        pytest.skip("needs setpriv to drop root's permission override")
    folder = tmp_path / "in"
    folder.mkdir()
    short_clips(folder, 1, seconds=4)
    base = tmp_path / "ro"
    base.mkdir()
    db = base / "db.duckdb"
    from pipeline.store import Store

    Store(db).close()
    os.chmod(db, 0o666)
    os.chmod(base, 0o555)
    try:
        done = subprocess.run(prefix + CLI + ["run", "--input", str(folder), "--db", str(db), "--workers", "1"],
                              cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    finally:
        os.chmod(base, 0o755)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "read-only" in lines[-1] and str(base) in lines[-1] and ".wal" in lines[-1], lines[-1]
    assert "no transaction" not in done.stderr


FULL_DISK = """
set -e
mount -t tmpfs -o size=64m tmpfs "$1"
set +e
"$PY" -m flows.cli run --input "$2" --db "$1/db.duckdb" --workers 1 2>"$3/full.err" >/dev/null &
batch=$!
"$PY" -c "from pathlib import Path; from tests.batches import count_ok, wait_for; \\
wait_for(lambda: count_ok(Path('$1/db.duckdb')) >= 1, timeout=300)"
dd if=/dev/zero of="$1/filler" bs=64k 2>/dev/null  # the disk fills up mid-batch
wait $batch
echo "exit=$?"
rm "$1/filler"
"$PY" -m flows.cli run --input "$2" --db "$1/db.duckdb" --workers 1 2>"$3/rerun.err" >/dev/null
echo "rerun=$?"
"$PY" -c "from pipeline.store import Store; s = Store('$1/db.duckdb', read_only=True); \\
print('calls=%d' % s.query('SELECT count(*) AS n FROM calls WHERE status = \\'ok\\'').n[0])"
"""


def test_a_full_disk_stops_the_run_with_one_line_and_loses_nothing(tmp_path):
    """On a full disk the run said "cannot rollback - no transaction is active" after two
    tracebacks. Real: a 64 MB tmpfs in a private mount namespace, filled up once the batch has
    written its first call."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare for a private tmpfs")
    folder = tmp_path / "in"
    folder.mkdir()
    short_clips(folder, 4, seconds=4)
    mount = tmp_path / "small"
    mount.mkdir()
    shell = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", FULL_DISK, "sh", str(mount),
                              str(folder), str(tmp_path)], cwd=ROOT, env=ENV | {"PY": sys.executable},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, shell_err = shell.communicate(timeout=600)
    finally:  # the shell, the batch it started in the background and the tmpfs go together
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
            shell.communicate()
    if "mount:" in shell_err and "exit=" not in out:
        pytest.skip(f"cannot mount a tmpfs here: {shell_err.strip()}")
    facts = dict(line.split("=") for line in out.split() if "=" in line)
    full = (tmp_path / "full.err").read_text()
    said = [line for line in full.strip().splitlines() if line.startswith("callbrief")]
    assert facts["exit"] == "2", full[-2000:]
    assert len(said) == 1 and "disk full" in said[0], full[-2000:]
    assert "Traceback" not in full and "no transaction" not in full
    rerun = (tmp_path / "rerun.err").read_text()
    assert facts["rerun"] == "0" and facts["calls"] == "4", rerun[-2000:]  # space freed: the rest is done
