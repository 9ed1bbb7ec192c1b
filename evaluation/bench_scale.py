"""`make bench` (scale part): the runners, memory in call length, planning a large folder.

- throughput of the nightly flow on the thread runner vs a 2-worker Dask LocalCluster, same calls,
  same run (each on a fresh database);
- `make bench-long` only: peak resident memory of processing one 60-minute call (a child
  process, so nothing else is counted), and openai-whisper against faster-whisper;
- planning 10,000 small files when nothing is new (stat only, no hashing);
- a handler's briefing (the `callbrief brief` command, process start included) while a batch
  writes to the same database, against the same request once the batch is done.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue as queue_module
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from evaluation.common import peak_mb

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
OUT = ROOT / "data" / "out"




def runners(folder: Path, tmp: Path) -> dict:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    from flows.nightly import run_nightly

    figures = {}
    with prefect_test_harness(server_startup_timeout=180):
        for name, kwargs in (("threads (2 calls x 1 thread)", {}), ("dask LocalCluster (2 processes x 1 thread)",
                                                                     {"dask_workers": 2})):
            clock = time.perf_counter()
            run = run_nightly(input_dir=str(folder), db_path=str(tmp / f"{len(figures)}.duckdb"), **kwargs)
            wall = time.perf_counter() - clock
            figures[name] = {"wall_s": round(wall, 1), "audio_s": round(run["audio_seconds"], 1),
                             "x_realtime": round(run["audio_seconds"] / wall, 2), "processed": run["n_processed"]}
    return figures


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _long_call_child(path: str, queue) -> None:
    import threading

    from pipeline.intake.ingest import discover
    from pipeline.run.stages import process_recording
    from pipeline.speech.asr import EngineSpec

    rec = discover(Path(path).parent).recordings[0]
    samples, done = [], threading.Event()

    def sample_rss() -> None:  # resident memory every 50 ms, to find the stage where it peaks
        while not done.is_set():
            samples.append((time.perf_counter(), _rss_mb()))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    sampler.start()
    clock = time.perf_counter()
    result = process_recording(rec, EngineSpec(cpu_threads=2))
    wall = time.perf_counter() - clock
    done.set()
    sampler.join()
    stage_peaks, start = {}, clock
    for timing in result.timings:
        end = start + timing.seconds
        stage_peaks[timing.stage] = round(max((mb for t, mb in samples if start <= t <= end), default=0.0))
        start = end
    queue.put({"status": result.status, "wall_s": round(wall, 1), "audio_s": round(result.recording.duration or 0, 1),
               "peak_mb": round(peak_mb()), "stage_peak_rss_mb": stage_peaks})


LONG_CALL_SOURCES = {"stereo": "zh-1001-a.wav", "mono": "zh-1001-b.flac"}  # channel split / diarization


def long_call_memory(tmp: Path, minutes: float = 60.0, layout: str = "stereo") -> dict:
    """A call of `minutes`, built by repeating the stereo or the mono sample call."""
    audio, rate = sf.read(SAMPLES / LONG_CALL_SOURCES[layout], dtype="float32", always_2d=True)
    reps = int(np.ceil(minutes * 60 * rate / len(audio)))
    folder = tmp / f"long-{layout}"
    folder.mkdir()
    sf.write(folder / "long-call.wav", np.tile(audio, (reps, 1))[: int(minutes * 60 * rate)], rate, subtype="PCM_16")
    queue = mp.get_context("spawn").Queue()
    child = mp.get_context("spawn").Process(target=_long_call_child, args=(str(folder / "long-call.wav"), queue))
    child.start()
    while True:  # a child that dies (out of memory, a crash) must end the bench, not hang it
        try:
            figures = queue.get(timeout=5)
            break
        except queue_module.Empty:
            if not child.is_alive():
                return {"status": f"failed (child exit code {child.exitcode})", "wall_s": None, "audio_s": None,
                        "peak_mb": None, "stage_peak_rss_mb": {}}
    child.join()
    return figures


def planning(tmp: Path, n: int = 10_000) -> dict:
    from pipeline.run.plan import plan_batch
    from pipeline.speech.asr import EngineSpec
    from pipeline.store import Store

    folder = tmp / "many"
    folder.mkdir()
    for i in range(n):
        (folder / f"r{i:05d}.wav").write_bytes(i.to_bytes(4, "little") * 64)
    store = Store(tmp / "plan.duckdb")
    clock = time.perf_counter()
    plan_batch(folder, store, EngineSpec())
    first = time.perf_counter() - clock
    clock = time.perf_counter()
    plan_batch(folder, store, EngineSpec())
    return {"files": n, "first_s": round(first, 2), "nothing_new_s": round(time.perf_counter() - clock, 2)}


BRIEFING_TARGET_S = 5.0  # a handler asks now; the request may not wait for a batch


def briefing_during_batch(folder: Path, tmp: Path, requests: int = 5) -> dict:
    """Seconds per `callbrief brief` for a customer already written, while a niced 1-worker batch
    over `folder` writes the rest into the same database; then the same requests with it idle."""
    from pipeline.store import Store

    db, empty = tmp / "busy.duckdb", tmp / "nothing-new"
    empty.mkdir(exist_ok=True)
    cli = [sys.executable, "-m", "flows.cli"]
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    # Its output is not read (a pipe nobody drains until the end could fill and stall it).
    batch = subprocess.Popen(["nice", "-n", "10"] + cli + ["run", "--input", str(folder), "--db", str(db),
                                                           "--workers", "1"],
                             cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    customer = None
    while customer is None and batch.poll() is None:
        time.sleep(0.2)
        try:
            rows = Store(db, read_only=True, wait_seconds=1).query(
                "SELECT customer_id FROM calls WHERE status = 'ok' LIMIT 1")
            customer = rows.customer_id[0] if len(rows) else None
        except Exception:  # not created yet, or the batch holds it: look again
            pass

    def ask() -> float:
        clock = time.perf_counter()
        done = subprocess.run(cli + ["brief", customer, "--db", str(db), "--input", str(empty)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"brief {customer} failed: {done.stderr.strip()[-300:]}")
        return time.perf_counter() - clock

    during = []
    while customer is not None and batch.poll() is None and len(during) < requests:
        during.append(ask())
    batch.wait(timeout=1200)
    idle = [ask() for _ in range(requests)] if customer is not None else []
    return {"customer": customer, "during_batch_s": [round(t, 2) for t in during],
            "idle_s": [round(t, 2) for t in idle], "batch_returncode": batch.returncode}


def main(minutes: float = 60.0, long: bool = False) -> int:
    """`make bench`: the runners, planning, a briefing during a batch. `make bench-long` (`long`):
    only the 60-minute calls' memory and the two Whisper engines head to head (about an hour)."""
    OUT.mkdir(parents=True, exist_ok=True)
    if long:
        return long_main(minutes)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        folder = tmp / "samples"
        shutil.copytree(SAMPLES, folder)
        report = {"planning": planning(tmp), "briefing": briefing_during_batch(folder, tmp),
                  "runners": runners(folder, tmp)}
    plan = report["planning"]
    print(f"planning {plan['files']} files: first {plan['first_s']} s, nothing new {plan['nothing_new_s']} s")
    print_briefing(report["briefing"])
    rates = []
    for name, f in report["runners"].items():
        print(f"nightly on {name:45} {f['audio_s']:7.1f} s audio in {f['wall_s']:7.1f} s = {f['x_realtime']}x realtime")
        rates.append(f["x_realtime"])
    print(f"dask / threads throughput: {rates[1] / rates[0]:.2f}x")
    (OUT / "bench_scale.json").write_text(json.dumps(report, indent=1))
    return 0


def long_main(minutes: float) -> int:
    from evaluation.bench import engines_head_to_head

    with tempfile.TemporaryDirectory() as tmp_name:
        report = {f"memory_{minutes:.0f}_min_{layout}_call": long_call_memory(Path(tmp_name), minutes, layout)
                  for layout in LONG_CALL_SOURCES}
    report["engines"] = engines_head_to_head()
    for row in report["engines"]:
        print(f"{row['stage']:40} {row['audio_s']:6.1f} s audio in {row['wall_s']:6.2f} s = {row['rtf']}x realtime  "
              f"{row['note']}")
    for layout in LONG_CALL_SOURCES:
        mem = report[f"memory_{minutes:.0f}_min_{layout}_call"]
        print(f"{minutes:.0f}-min {layout} call: {mem['status']}, {mem['wall_s']} s, peak {mem['peak_mb']} MB "
              "(target <= 2500 MB)")
        print("  peak resident MB by stage: " + ", ".join(f"{k} {v}" for k, v in mem["stage_peak_rss_mb"].items()))
    (OUT / "bench_long.json").write_text(json.dumps(report, indent=1))
    return 0


def print_briefing(b: dict) -> None:
    if not b["during_batch_s"]:
        print(f"briefing during a batch: not measured (the batch ended first, code {b['batch_returncode']})")
        return
    print(f"briefing ({b['customer']}, `callbrief brief`, process start included) while a batch writes: median "
          f"{statistics.median(b['during_batch_s']):.2f} s, max {max(b['during_batch_s']):.2f} s over "
          f"{len(b['during_batch_s'])} (target < {BRIEFING_TARGET_S:.0f} s); idle database: median "
          f"{statistics.median(b['idle_s']):.2f} s")


def briefing_only() -> int:
    """`python -m evaluation.bench_scale briefing`: only the briefing during a batch."""
    with tempfile.TemporaryDirectory() as tmp_name:
        folder = Path(tmp_name) / "samples"
        shutil.copytree(SAMPLES, folder)
        print_briefing(briefing_during_batch(folder, Path(tmp_name)))
    return 0


def memory_only(layout: str = "stereo", minutes: float = 60.0) -> int:
    """`python -m evaluation.bench_scale memory [stereo|mono]`: only one long call (the slow part)."""
    with tempfile.TemporaryDirectory() as tmp_name:
        mem = long_call_memory(Path(tmp_name), minutes, layout)
    print(json.dumps(mem))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["memory"]:
        raise SystemExit(memory_only(*sys.argv[2:3]))
    if sys.argv[1:2] == ["long"]:
        raise SystemExit(main(long=True))
    raise SystemExit(briefing_only() if sys.argv[1:2] == ["briefing"] else main())
