"""`make bench`: speed and memory of the pipeline on this machine, printed as figures and ratios.

Measures, on the sample calls and on a >= 10-minute concatenation of them:
- realtime factor (audio seconds / wall seconds) per stage (decode, transcribe, store) and in total;
- concurrency: 1 call at a time with 2 threads vs 2 calls at a time with 1 thread each;
- faster-whisper vs openai-whisper on the same audio, same weights (openai-whisper runs a
  checkpoint converted from the same CTranslate2 base model), same beam size;
- peak resident memory of the faster-whisper pipeline and, in a child process, of openai-whisper.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from .asr import EngineSpec, TranscribeOptions, load_engine
from .audio import SAMPLE_RATE, decode
from .ingest import discover
from .store import Store
from .types import CallResult, StageTiming

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
OUT = ROOT / "data" / "out"


def _rss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _row(stage: str, audio_s: float, wall_s: float, note: str = "") -> dict:
    return {"stage": stage, "audio_s": round(audio_s, 1), "wall_s": round(wall_s, 2),
            "rtf": round(audio_s / wall_s, 1) if wall_s else None, "note": note}


def _transcribe_all(spec: EngineSpec, audios: list[np.ndarray], workers: int, options: TranscribeOptions):
    engine = load_engine(spec)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        transcripts = list(pool.map(lambda a: engine.transcribe(a, options), audios))
    return transcripts, time.perf_counter() - start


def _openai_child(audio: np.ndarray, beam: int, queue) -> None:
    engine = load_engine(EngineSpec(engine="openai-whisper", model="base", cpu_threads=2))
    start = time.perf_counter()
    engine.transcribe(audio, TranscribeOptions(beam_size=beam, vad_filter=False))
    queue.put((time.perf_counter() - start, _rss_mb()))


def _openai_timing(audio: np.ndarray, beam: int) -> tuple[float, float]:
    """openai-whisper in a child process, so its memory peak is its own."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_openai_child, args=(audio, beam, queue))
    proc.start()
    wall, rss = queue.get()
    proc.join()
    return wall, rss


def run(compare_seconds: float = 120.0, long_minutes: float = 10.0) -> dict:
    rows: list[dict] = []
    recordings = discover(SAMPLES).recordings
    options = TranscribeOptions()

    start = time.perf_counter()
    audios = [decode(r.path) for r in recordings]
    decode_s = time.perf_counter() - start
    audio_s = sum(a.duration for a in audios)
    rows.append(_row("decode (ffmpeg, all samples)", audio_s, decode_s))
    monos = [a.mono() for a in audios]

    load_start = time.perf_counter()
    load_engine(EngineSpec(num_workers=1, cpu_threads=2))
    load_s = time.perf_counter() - load_start
    transcripts, seq_s = _transcribe_all(EngineSpec(num_workers=1, cpu_threads=2), monos, 1, options)
    rows.append(_row("transcribe, 1 call at a time x 2 threads", audio_s, seq_s, f"model load {load_s:.1f} s"))
    par_transcripts, par_s = _transcribe_all(EngineSpec(num_workers=2, cpu_threads=1), monos, 2, options)
    rows.append(_row("transcribe, 2 calls at a time x 1 thread", audio_s, par_s, "the flows' setting"))

    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.duckdb") as store:
        start = time.perf_counter()
        for rec, audio, tr in zip(recordings, audios, par_transcripts):
            store.write_call(CallResult(recording=replace(rec, duration=audio.duration), status="ok", transcript=tr,
                                        timings=(StageTiming("transcribe", 0.0),)))
        store_s = time.perf_counter() - start
    rows.append(_row("store (DuckDB, one transaction per call)", audio_s, store_s))
    rows.append(_row("TOTAL samples (decode + transcribe + store)", audio_s, decode_s + par_s + store_s))

    # A long batch: the samples repeated to >= long_minutes, as one recording.
    mix = np.concatenate(monos)
    reps = int(np.ceil(long_minutes * 60 * SAMPLE_RATE / len(mix)))
    long_audio = np.tile(mix, reps)
    long_s = len(long_audio) / SAMPLE_RATE
    _, long_wall = _transcribe_all(EngineSpec(num_workers=1, cpu_threads=2), [long_audio], 1, options)
    rows.append(_row(f"transcribe {long_s / 60:.1f}-min concatenation, 2 threads", long_s, long_wall))

    # Engines head to head: same excerpt, same weights, same beam, no VAD (openai-whisper has none).
    excerpt = mix[: int(compare_seconds * SAMPLE_RATE)]
    ex_s = len(excerpt) / SAMPLE_RATE
    engines = {}
    for beam in (5, 1):
        fw_opts = TranscribeOptions(beam_size=beam, vad_filter=False)
        _, fw_wall = _transcribe_all(EngineSpec(num_workers=1, cpu_threads=2), [excerpt], 1, fw_opts)
        ow_wall, ow_rss = _openai_timing(excerpt, beam)
        rows.append(_row(f"faster-whisper base int8, beam {beam}, no VAD", ex_s, fw_wall))
        rows.append(_row(f"openai-whisper base fp32, beam {beam}", ex_s, ow_wall, f"peak RSS {ow_rss:.0f} MB"))
        engines[beam] = {"faster_whisper_s": fw_wall, "openai_whisper_s": ow_wall, "ratio": ow_wall / fw_wall,
                         "openai_peak_rss_mb": ow_rss}
    report = {"rows": rows, "engines": engines, "peak_rss_mb": _rss_mb(),
              "parallel_speedup": seq_s / par_s, "long_audio_s": long_s}
    return report


def print_report(report: dict) -> None:
    print(f"{'stage':58} {'audio s':>8} {'wall s':>8} {'x realtime':>10}  note")
    for r in report["rows"]:
        print(f"{r['stage']:58} {r['audio_s']:8.1f} {r['wall_s']:8.2f} {r['rtf'] or 0:10.1f}  {r['note']}")
    print(f"\n2 calls x 1 thread vs 1 call x 2 threads: {report['parallel_speedup']:.2f}x throughput")
    for beam, e in report["engines"].items():
        print(f"faster-whisper is {e['ratio']:.2f}x faster than openai-whisper at beam {beam} (same base weights)")
    print(f"peak RSS, faster-whisper pipeline process: {report['peak_rss_mb']:.0f} MB")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="callbrief bench", description=__doc__.splitlines()[0])
    parser.add_argument("--compare-seconds", type=float, default=120.0, help="excerpt for the engine comparison")
    parser.add_argument("--long-minutes", type=float, default=10.0, help="length of the concatenated recording")
    args = parser.parse_args(argv)
    report = run(args.compare_seconds, args.long_minutes)
    print_report(report)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench.json").write_text(json.dumps(report, indent=1))
    print(f"(figures also in {OUT / 'bench.json'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
