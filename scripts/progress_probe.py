"""How often a long call's progress is reported while it is processed.

Concatenates the sample calls (repeated) into one mono recording of about `--minutes`, runs
`process_recording` on it with a progress listener, and prints: the call's length, how many
progress reports came, when the first came (wall seconds after the start), the longest wall-clock
gap between two reports (or between the start and the first), and the total time. Before progress
existed the only signal was the finished call, so "first report" equalled the total time.

    nice -n 10 .venv/bin/python scripts/progress_probe.py --minutes 10
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"


def long_call(folder: Path, minutes: float) -> Path:
    inputs = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".wav", ".flac", ".mp3", ".ogg"))
    once = folder / "once.wav"
    args = ["ffmpeg", "-v", "error", "-y"] + [a for p in inputs for a in ("-i", str(p))]
    chain = "".join(f"[{i}:a]aformat=sample_rates=16000:channel_layouts=mono[a{i}];" for i in range(len(inputs)))
    chain += "".join(f"[a{i}]" for i in range(len(inputs))) + f"concat=n={len(inputs)}:v=0:a=1[out]"
    subprocess.run(args + ["-filter_complex", chain, "-map", "[out]", str(once)], check=True)
    out = folder / "call" / "long-call.wav"
    out.parent.mkdir()
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-i", str(once), "-t", str(minutes * 60),
                    str(out)], check=True)
    return out.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    from pipeline.engines import Engines
    from pipeline.intake.ingest import discover
    from pipeline.run.stages import process_recording
    from pipeline.speech.asr import EngineSpec
    from pipeline.speech.transcribe import load_engine

    with tempfile.TemporaryDirectory() as tmp:
        (rec,) = discover(long_call(Path(tmp), args.minutes)).recordings
        engines = Engines()
        load_engine(EngineSpec(), engines)  # model load is not the call's time
        stamps: list[tuple[float, float]] = []
        start = time.perf_counter()
        result = process_recording(rec, EngineSpec(), engines=engines,
                                   on_progress=lambda r, s: stamps.append((time.perf_counter() - start, s)))
        total = time.perf_counter() - start
    times = [0.0] + [t for t, _ in stamps]
    gaps = [b - a for a, b in zip(times, times[1:])]
    print(f"call {result.recording.duration / 60:.1f} min, status {result.status}; {len(stamps)} progress reports; "
          f"first at {stamps[0][0]:.0f} s (position {stamps[0][1]:.0f} s), last at {stamps[-1][0]:.0f} s "
          f"(position {stamps[-1][1]:.0f} s); longest gap {max(gaps):.0f} s; call done at {total:.0f} s")


if __name__ == "__main__":
    main()
