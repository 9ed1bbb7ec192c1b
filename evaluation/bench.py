"""`make bench`: speed and memory of the pipeline on this machine, printed as figures and ratios,
every ratio from figures measured in the same run.

- the reference: bare faster-whisper (its own WhisperModel, base int8, beam 5, no VAD) over the
  same audio, one call at a time x 2 threads and 2 calls at a time x 1 thread;
- the pipeline at the flows' setting (2 calls x 1 thread) and 1 call x 2 threads, per stage;
- where a 2-minute Mandarin call's time goes (evaluation/profile.py);
- the 12.9-minute recording (the sample calls' mono mixes repeated) through the pipeline against
  bare faster-whisper on the same file;
- rescoring's windows one at a time (as the pipeline reads them) against padded batches
  (evaluation/rescore_batching.py): time, and how far padding moves the scores;
- the speed preset ("fast") beside the default, each with its CER on ../shared/audio and its
  domain-term recall on the sample calls;
- peak memory of one 5-minute call, stereo and mono (a child process each), and the figures of
  the last `make bench-long` (60-minute calls; evaluation/bench_scale.py long). A call's peak does
  not grow like its length from 5 minutes: a speaker's windows go through Whisper 8 at a time, so
  the batch's buffers grow until a stream holds 8 windows, then stay (2.5 → 5 minutes measured
  +87-90 MB a minute; 10 and 20 minutes 1,733 and 1,657 MB). Under 20 minutes with make bench's
  other parts on a quiet 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from evaluation import rescore_batching
from evaluation.common import DEV, peak_mb, sample_truth
from evaluation.eval_asr import accuracy
from evaluation.metrics import diarization_error_rate, error_rate, join_turn_texts, turn_agreement
from evaluation.profile import print_profile, profile_call
from pipeline.engines import Engines
from pipeline.intake.audio import SAMPLE_RATE, decode
from pipeline.intake.ingest import discover
from pipeline.outputs.briefing import write_briefing
from pipeline.run.execute import write_result
from pipeline.run.stages import STAGES, process_recording
from pipeline.speech.asr import PRESETS, EngineSpec, TranscribeOptions
from pipeline.speech.transcribe import load_engine
from pipeline.speech.weights import resolve_whisper
from pipeline.store import Store

MEASURED_PASSES = 3  # passes per speed figure (the median is reported)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
OUT = ROOT / "data" / "out"
PROFILED_CALL = DEV / "calls_zh" / "wangzhe.wav"  # a real 2-minute Mandarin telephone call, mono
TARGET_RATIO, TARGET_LONG_RATIO, TARGET_PEAK_MB = 1.3, 1.1, 2500


def _row(stage: str, audio_s: float, wall_s: float, note: str = "") -> dict:
    return {"stage": stage, "audio_s": round(audio_s, 1), "wall_s": round(wall_s, 2),
            "rtf": round(audio_s / wall_s, 1) if wall_s else None, "note": note}


def _median_wall(run, passes: int = MEASURED_PASSES) -> tuple[float, object]:
    """(median seconds, the first pass's result) of `run()` done `passes` times."""
    walls, first = [], None
    for k in range(passes):
        start = time.perf_counter()
        out = run()
        walls.append(time.perf_counter() - start)
        first = out if k == 0 else first
    return statistics.median(walls), first


def bare_whisper(threads: int, workers: int = 1):
    """faster-whisper's own model, as a user would load it: the reference the pipeline is held to."""
    from faster_whisper import WhisperModel

    return WhisperModel(str(resolve_whisper("base").path), device="cpu", compute_type="int8", cpu_threads=threads,
                        num_workers=workers)


def bare_transcribe(model, audio: np.ndarray) -> str:
    segments, _ = model.transcribe(audio, beam_size=5, vad_filter=False)
    return "".join(s.text for s in segments)  # transcribe() is lazy: consumed here


def _pipeline_pass(recordings, spec: EngineSpec, workers: int, engines: Engines, options=None, split: bool = True):
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda r: process_recording(r, spec, options, split=split, engines=engines), recordings))


def _accuracy_rows(results) -> dict[str, dict]:
    out = {}
    for r in results:
        truth = sample_truth(r.call_id)
        if not truth or r.status != "ok":
            continue
        lang = truth["language"]
        ref = join_turn_texts([t["text"] for t in truth["turns"]], lang)
        out[r.call_id] = {
            "error": round(error_rate(lang, ref, join_turn_texts([t.text for t in r.turns], lang)), 3),
            "metric": "CER" if lang == "zh" else "WER",
            "der": round(diarization_error_rate(truth["turns"], r.diarization), 3),
            "method": r.diarization.method,
            "turn_error": round(turn_agreement(truth["turns"], r.turns, lang)["mean_error"], 3),
        }
    return out


def _memory_child(path: str, queue) -> None:
    rec = discover(Path(path).parent).recordings[0]
    result = process_recording(rec, EngineSpec(cpu_threads=2))
    queue.put((result.status, result.recording.duration, peak_mb()))


def call_memory(source: Path, minutes: float, tmp: Path) -> dict:
    """Peak resident memory of processing one call of `minutes` (the source repeated), in a child
    process so nothing else is counted."""
    audio, rate = sf.read(source, dtype="float32", always_2d=True)
    folder = tmp / f"{source.stem}-{minutes:g}"
    folder.mkdir()
    reps = int(np.ceil(minutes * 60 * rate / len(audio)))
    sf.write(folder / "call.wav", np.tile(audio, (reps, 1))[: int(minutes * 60 * rate)], rate, subtype="PCM_16")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_memory_child, args=(str(folder / "call.wav"), queue))
    child.start()
    status, duration, peak = queue.get(timeout=1800)
    child.join()
    return {"minutes": minutes, "status": status, "audio_s": duration, "peak_mb": round(peak)}


def _same_beam(beam: int) -> TranscribeOptions:
    """The engines compared on equal terms: one beam whatever the language, no VAD, no fallback."""
    return TranscribeOptions(beam_size=beam, mandarin_beam_size=None, vad_filter=False, temperature=(0.0,))


def _openai_child(audio: np.ndarray, beam: int, queue) -> None:
    engine = load_engine(EngineSpec(engine="openai-whisper", model="base", cpu_threads=2))
    start = time.perf_counter()
    engine.transcribe(audio, _same_beam(beam))
    queue.put((time.perf_counter() - start, peak_mb()))


def engines_head_to_head(seconds: float = 120.0) -> list[dict]:
    """faster-whisper against openai-whisper (in a child process, so its memory peak is its own) on
    the same excerpt of the sample calls, same weights (openai-whisper runs a checkpoint converted
    from the same CTranslate2 base model), same beam, no VAD, no fallback. `make bench-long`."""
    excerpt = np.concatenate([decode(r.path).mono() for r in discover(SAMPLES).recordings])[: int(seconds * SAMPLE_RATE)]
    engine, rows = load_engine(EngineSpec(cpu_threads=2)), []
    for beam in (5, 1):
        start = time.perf_counter()
        engine.transcribe(excerpt, _same_beam(beam))
        fw_wall = time.perf_counter() - start
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        proc = ctx.Process(target=_openai_child, args=(excerpt, beam, queue))
        proc.start()
        ow_wall, ow_peak = queue.get()
        proc.join()
        rows.append(_row(f"faster-whisper base int8, beam {beam}", seconds, fw_wall, "no VAD, no fallback"))
        rows.append(_row(f"openai-whisper base fp32, beam {beam}", seconds, ow_wall,
                         f"converted checkpoint, peak {ow_peak:.0f} MB; faster-whisper {ow_wall / fw_wall:.2f}x faster"))
    return rows


def run(long_minutes: float = 10.0, memory_minutes: float = 5.0) -> dict:
    rows: list[dict] = []
    recordings = discover(SAMPLES).recordings
    engines = Engines()  # one set of loaded models for the whole bench, as a nightly run has
    monos = [decode(r.path).mono() for r in recordings]
    audio_s = sum(len(m) for m in monos) / SAMPLE_RATE

    # The reference: bare faster-whisper, same audio (each call's mono mix), both ways of using 2 cores.
    bare2 = bare_whisper(threads=2)
    bare_transcribe(bare2, monos[0][: 10 * SAMPLE_RATE])  # warm-up
    ref_seq, _ = _median_wall(lambda: [bare_transcribe(bare2, m) for m in monos])
    bare1 = bare_whisper(threads=1, workers=2)
    with ThreadPoolExecutor(max_workers=2) as pool:
        ref_par, _ = _median_wall(lambda: list(pool.map(lambda m: bare_transcribe(bare1, m), monos)))
    rows.append(_row("faster-whisper base int8 beam 5, no VAD, 1 call x 2 threads", audio_s, ref_seq,
                     "the reference (bare WhisperModel)"))
    rows.append(_row("faster-whisper base int8 beam 5, no VAD, 2 calls x 1 thread", audio_s, ref_par,
                     "the reference at the flows' concurrency"))

    # The pipeline. One-time costs of a process (model loads, numba compiling, jieba) first, apart.
    seq_spec, par_spec = EngineSpec(num_workers=1, cpu_threads=2), EngineSpec(num_workers=2, cpu_threads=1)
    warm_start = time.perf_counter()
    _pipeline_pass(recordings, seq_spec, 1, engines)
    load_engine(par_spec, engines)
    _pipeline_pass(recordings, par_spec, 2, engines)
    warmup_s = time.perf_counter() - warm_start
    par_s, par_results = _median_wall(lambda: _pipeline_pass(recordings, par_spec, 2, engines))
    rows.append(_row("pipeline, 2 calls at a time x 1 thread", audio_s, par_s,
                     f"the flows' setting: {ref_seq / par_s:.2f}x the reference"))
    # One pass at 1 call x 2 threads: its stage times make the per-stage table (the ratio the
    # target is about is the flows' setting above, median of MEASURED_PASSES).
    seq_s, seq_results = _median_wall(lambda: _pipeline_pass(recordings, seq_spec, 1, engines), 1)
    rows.append(_row("pipeline, 1 call at a time x 2 threads", audio_s, seq_s,
                     f"{ref_seq / seq_s:.2f}x the reference; one pass, its stages below"))
    stage = {s.name: sum(t.seconds for r in seq_results for t in r.timings if t.stage == s.name) for s in STAGES}
    stage_rows = [_row(f"  {s.name}: {s.doc}", audio_s, stage.get(s.name, 0.0),
                       f"warm-up pass (model loads) {warmup_s:.1f} s" if s.name == "decode" else "") for s in STAGES]

    fast = PRESETS["fast"]
    fast_s, _ = _median_wall(lambda: _pipeline_pass(recordings, par_spec, 2, engines, options=fast))
    rows.append(_row("pipeline --preset fast, 2 calls x 1 thread", audio_s, fast_s,
                     f"{ref_seq / fast_s:.2f}x the reference"))

    with tempfile.TemporaryDirectory() as tmp_name, Store(Path(tmp_name) / "bench.duckdb") as store:
        start = time.perf_counter()
        for result in par_results:
            write_result(store, result)
        store_s = time.perf_counter() - start
        start = time.perf_counter()
        write_briefing(store, "C1001")
        briefing_s = time.perf_counter() - start
    rows.append(_row("store (DuckDB, one transaction per call)", audio_s, store_s))

    # A long recording: the samples' mono mixes repeated to >= long_minutes, one file, mono.
    mix = np.concatenate(monos)
    long_audio = np.tile(mix, int(np.ceil(long_minutes * 60 * SAMPLE_RATE / len(mix))))
    long_s = len(long_audio) / SAMPLE_RATE
    with tempfile.TemporaryDirectory() as tmp_name:
        sf.write(Path(tmp_name) / "long.wav", long_audio, SAMPLE_RATE, subtype="PCM_16")
        long_rec = discover(Path(tmp_name)).recordings[0]
        start = time.perf_counter()
        long_result = process_recording(long_rec, seq_spec, engines=engines)
        long_pipe = time.perf_counter() - start
        start = time.perf_counter()
        bare_transcribe(bare2, decode(long_rec.path).mono())
        long_bare = time.perf_counter() - start
    rows.append(_row(f"faster-whisper, {long_s / 60:.1f}-min recording, 2 threads", long_s, long_bare, "the reference"))
    rows.append(_row(f"pipeline, {long_s / 60:.1f}-min recording, 2 threads", long_s, long_pipe,
                     f"{long_bare / long_pipe:.2f}x the reference; {long_result.diarization.n_speakers} speakers found"))
    main_rss = peak_mb()

    rescoring = rescore_batching.measure(engines)
    profile = profile_call(PROFILED_CALL, seq_spec, engines) if PROFILED_CALL.exists() else None
    # Recognition cached under make eval-asr's names for the same options (data/out/eval_asr).
    presets = {name: accuracy(cached, PRESETS[name], EngineSpec(), engines)
               for name, cached in (("accurate", "baseline"), ("fast", "fast"))}
    presets["accurate"]["x_realtime"], presets["fast"]["x_realtime"] = audio_s / par_s, audio_s / fast_s

    with tempfile.TemporaryDirectory() as tmp_name:
        memory = [call_memory(SAMPLES / source, memory_minutes, Path(tmp_name)) | {"layout": layout}
                  for layout, source in (("stereo", "zh-1001-a.wav"), ("mono", "zh-1001-b.flac"))]

    return {"rows": rows, "stage_rows": stage_rows, "peak_rss_mb": main_rss, "briefing_s": briefing_s,
            "ratio": ref_seq / par_s, "ratio_same_concurrency": ref_par / par_s, "long_ratio": long_bare / long_pipe,
            "accuracy": _accuracy_rows(par_results),
            "profile": profile, "rescoring": rescoring, "presets": presets, "memory": memory}


def print_report(report: dict) -> None:
    print(f"{'row':62} {'audio s':>8} {'wall s':>8} {'x realtime':>10}  note")
    for r in report["rows"] + [{"stage": "stages of the 1 call x 2 threads passes:", "audio_s": 0, "wall_s": 0,
                                "rtf": 0, "note": ""}] + report["stage_rows"]:
        print(f"{r['stage'][:62]:62} {r['audio_s']:8.1f} {r['wall_s']:8.2f} {r['rtf'] or 0:10.1f}  {r['note']}")
    print()
    print(f"pipeline at the flows' setting / bare faster-whisper (1 call x 2 threads): {report['ratio']:.2f}x "
          f"(target >= {TARGET_RATIO}); / bare faster-whisper at the same concurrency: "
          f"{report['ratio_same_concurrency']:.2f}x")
    print(f"{report['rows'][-1]['stage']}: {report['long_ratio']:.2f}x the reference (target >= {TARGET_LONG_RATIO})")
    print()
    print(rescore_batching.report_line(report["rescoring"]))
    print()
    if report["profile"]:
        print_profile(report["profile"])
        print()
    print(f"{'preset':10} {'x realtime':>10} {'CER raw':>8} {'CER':>8} {'terms':>8}   (CER on ../shared/audio after "
          "correction; terms: domain terms of the Mandarin sample calls found)")
    for name, p in report["presets"].items():
        print(f"{name:10} {p['x_realtime']:10.1f} {p['cer_raw']:8.2%} {p['cer']:8.2%} "
              f"{p['terms_found']:>4}/{p['terms_spoken']:<3}")
    print()
    print(f"{'call':10} {'method':10} {'DER':>6} | {'error':>10} {'turn err':>8}   (flows' setting, first pass)")
    for call_id, a in report["accuracy"].items():
        print(f"{call_id:10} {a['method']:10} {a['der']:6.3f} | {a['metric']} {a['error']:6.3f} {a['turn_error']:8.3f}")
    print()
    for m in report["memory"]:
        print(f"peak memory, {m['minutes']:g}-min {m['layout']} call ({m['status']}): {m['peak_mb']} MB")
    long_run = OUT / "bench_long.json"
    if long_run.exists():
        last = json.loads(long_run.read_text())
        for key, mem in last.items():
            if key.startswith("memory_"):
                print(f"last make bench-long ({time.strftime('%Y-%m-%d', time.localtime(long_run.stat().st_mtime))}): "
                      f"{key.removeprefix('memory_').replace('_', ' ')} peak {mem['peak_mb']} MB "
                      f"(target < {TARGET_PEAK_MB} MB)")
    else:
        print(f"60-minute calls (target < {TARGET_PEAK_MB} MB): make bench-long")
    print(f"peak RSS of this bench process (every engine configuration loaded): {report['peak_rss_mb']:.0f} MB")
    print(f"briefing for an already-processed customer: {report['briefing_s'] * 1000:.0f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="callbrief bench", description=__doc__.splitlines()[0])
    parser.add_argument("--long-minutes", type=float, default=10.0, help="at least this long: the long recording")
    args = parser.parse_args(argv)
    report = run(args.long_minutes)
    print_report(report)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench.json").write_text(json.dumps(report, indent=1, default=str))
    print(f"(figures also in {OUT / 'bench.json'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
