"""Where one call's time goes: every stage of `process_recording`, and inside recognition the
encoder, the decoder at each beam (first pass, wide re-decode, retries), language detection, word
alignment and rescoring. `make bench` prints it for a 2-minute Mandarin call; on its own:
`python -m evaluation.profile FILE` (a recording, processed twice: the first pass loads models).

It times the loaded model's own calls by wrapping them for the duration of a pass (measurement
code, so it lives here and not in `pipeline`); nothing is changed in what is decoded.
"""
from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from pipeline.engines import Engines
from pipeline.intake.ingest import discover
from pipeline.run.stages import process_recording
from pipeline.speech import streams
from pipeline.speech.asr import EngineSpec, TranscribeOptions
from pipeline.speech.backends import batch
from pipeline.speech.transcribe import load_engine


class _Timed:
    """A stand-in for an object whose named methods are timed into `totals`; the rest passes through."""

    def __init__(self, inner, names: dict[str, str], totals: dict):
        self._inner, self._names, self._totals = inner, names, totals

    def __getattr__(self, name):
        value = getattr(self._inner, name)
        if name not in self._names:
            return value
        return _timer(value, self._names[name], self._totals)

    def __call__(self, *args, **kwargs):
        return _timer(self._inner, self._names["__call__"], self._totals)(*args, **kwargs)


def _timer(fn, label: str, totals: dict):
    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[label][0] += time.perf_counter() - start
            totals[label][1] += 1
    return timed


@contextlib.contextmanager
def instrumented(engine, totals: dict):
    """The engine's model and the recognition functions timed while inside."""
    model = engine.model
    saved = (model.model, model.feature_extractor, model.add_word_timestamps, batch._generate, streams.detect_clips)
    model.model = _Timed(model.model, {
        "encode": "encoder (ct2)", "generate": "decoder, every search (ct2)",
        "detect_language": "language detection (ct2: on features it encodes first; on encoder output one step)",
        "align": "word alignment and rescoring reads (ct2 decoder, teacher-forced)"}, totals)
    model.feature_extractor = _Timed(model.feature_extractor, {"__call__": "log-mel features"}, totals)

    def generate(m, encoded, prompt, tokenizer, options):
        kind = ("first pass" if options.beam_size == TranscribeOptions().beam_size and options.no_repeat_ngram_size == 0
                else "wide re-decode" if options.no_repeat_ngram_size == 0 else "retry")
        label = f"decoder, {kind} (beam {options.beam_size}, patience {options.patience:g})"
        totals[label + ", windows"][1] += len(encoded)
        return _timer(saved[3], label, totals)(m, encoded, prompt, tokenizer, options)

    batch._generate = generate
    model.add_word_timestamps = _timer(saved[2], "word timestamps (alignment + rules)", totals)
    streams.detect_clips = _timer(saved[4], "language of stretches on their own audio (features + encoder + step)",
                                  totals)
    for method, label in (("encode_windows", "windows through the encoder (features + encoder)"),
                          ("read_spans", "language of stretches read from their window's encoding"),
                          ("decode_encoded", "windows decoded (searches + word timestamps)"),
                          ("transcribe_windows", "windows cut by language, encoded and decoded again"),
                          ("score", "rescoring (encoder + teacher-forced reads)")):
        setattr(engine, method, _timer(getattr(engine, method), label, totals))
    try:
        yield
    finally:
        model.model, model.feature_extractor, model.add_word_timestamps = saved[0], saved[1], saved[2]
        batch._generate, streams.detect_clips = saved[3], saved[4]
        for method in ("encode_windows", "read_spans", "decode_encoded", "transcribe_windows",
                       "score"):
            delattr(engine, method)  # the class's methods again


def profile_call(path: Path, spec: EngineSpec = EngineSpec(cpu_threads=2), engines: Engines | None = None) -> dict:
    """{"call_s", "wall_s", "stages": {stage: s}, "recognition": {what: (s, count)}} for one pass
    over the recording at `path` (after a pass that loads the models)."""
    engines = engines or Engines()
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / path.name  # alone in a folder: discover() reads no manifest of another call
        shutil.copyfile(path, copy)
        rec = discover(Path(tmp)).recordings[0]
        process_recording(rec, spec, engines=engines)
        engine = load_engine(spec, engines)
        totals: dict = defaultdict(lambda: [0.0, 0])
        with instrumented(engine, totals):
            start = time.perf_counter()
            result = process_recording(rec, spec, engines=engines)
            wall = time.perf_counter() - start
    return {"call": path.name, "call_s": result.recording.duration, "wall_s": wall, "status": result.status,
            "stages": {t.stage: t.seconds for t in result.timings},
            "recognition": {k: tuple(v) for k, v in sorted(totals.items(), key=lambda kv: -kv[1][0])}}


def print_profile(p: dict) -> None:
    print(f"where the time of {p['call']} ({p['call_s']:.0f} s of audio, {p['status']}) goes: {p['wall_s']:.2f} s, "
          f"{p['call_s'] / p['wall_s']:.1f}x realtime")
    for stage, seconds in p["stages"].items():
        print(f"  stage {stage:12} {seconds:7.2f} s  {seconds / p['wall_s']:6.1%}")
    print("  inside recognition (nested: the ct2 rows are also inside the rows that call them):")
    for what, (seconds, count) in p["recognition"].items():
        if what.endswith(", windows"):
            continue
        windows = p["recognition"].get(what + ", windows")
        n = f"{windows[1]} windows in {count} calls" if windows else f"{count} calls"
        print(f"    {what:78} {seconds:7.2f} s  {n}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.profile", description=__doc__.splitlines()[0])
    parser.add_argument("recording", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    print_profile(profile_call(args.recording, EngineSpec(cpu_threads=args.threads)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
