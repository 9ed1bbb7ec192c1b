"""The speed rows the README shows, for two versions of the code on one machine in one sitting:
bare faster-whisper (base int8, beam 5, no VAD, 1 call x 2 threads) against the pipeline at the
flows' setting (2 calls x 1 thread) on the sample calls, and on the 12.9-minute recording (the
sample calls' mono mixes repeated) at 2 threads; medians of 3 passes.

It uses only what every version has (discover, decode, process_recording, EngineSpec, Engines),
so an older checkout's pipeline can be put first on the path:

    PYTHONPATH=../old-checkout python evaluation/headline.py    # before
    python evaluation/headline.py                              # after
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"


def main() -> int:
    from faster_whisper import WhisperModel

    import pipeline
    from pipeline.engines import Engines
    from pipeline.intake.audio import decode
    from pipeline.intake.ingest import discover
    from pipeline.run.stages import process_recording
    from pipeline.speech.asr import EngineSpec

    recordings = discover(SAMPLES).recordings
    monos = [decode(r.path).mono() for r in recordings]
    audio_s = sum(len(m) for m in monos) / 16000
    bare = WhisperModel(str(SAMPLES.parent / "models" / "faster-whisper-base"), device="cpu", compute_type="int8",
                        cpu_threads=2)

    def whisper(audio):
        return "".join(s.text for s in bare.transcribe(audio, beam_size=5, vad_filter=False)[0])

    def median(run, passes=3):
        walls = []
        for _ in range(passes):
            start = time.perf_counter()
            run()
            walls.append(time.perf_counter() - start)
        return statistics.median(walls)

    engines, par = Engines(), EngineSpec(num_workers=2, cpu_threads=1)

    def pipeline_pass():
        with ThreadPoolExecutor(max_workers=2) as pool:
            return list(pool.map(lambda r: process_recording(r, par, engines=engines), recordings))

    whisper(monos[0][:160000])
    pipeline_pass()  # model loads and one-time costs
    ref = median(lambda: [whisper(m) for m in monos])
    pipe = median(pipeline_pass)
    mix = np.concatenate(monos)
    long_audio = np.tile(mix, int(np.ceil(600 * 16000 / len(mix))))
    with tempfile.TemporaryDirectory() as tmp:
        sf.write(Path(tmp) / "long.wav", long_audio, 16000, subtype="PCM_16")
        rec = discover(Path(tmp)).recordings[0]
        seq = EngineSpec(cpu_threads=2)
        long_pipe = median(lambda: process_recording(rec, seq, engines=engines), 1)
        long_ref = median(lambda: whisper(decode(rec.path).mono()), 1)
    long_s = len(long_audio) / 16000
    print(f"code: {Path(pipeline.__file__).parent.parent}")
    print(f"| faster-whisper base int8, beam 5, no VAD (the reference) | {audio_s / ref:.1f} |")
    print(f"| pipeline, 2 calls at a time x 1 thread (the flows' setting) | {audio_s / pipe:.1f} "
          f"({ref / pipe:.2f}x the reference) |")
    print(f"| {long_s / 60:.1f}-min recording: faster-whisper, 2 threads | {long_s / long_ref:.1f} |")
    print(f"| {long_s / 60:.1f}-min recording: pipeline, 2 threads | {long_s / long_pipe:.1f} "
          f"({long_ref / long_pipe:.2f}x) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
