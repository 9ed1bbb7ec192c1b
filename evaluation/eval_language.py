"""Language per stretch against one language per stream: `python -m evaluation.eval_language`
(run it with `nice -n 10`; it transcribes every call twice).

On the sample calls (data/samples, truth scripts) and the dev calls (../shared/dev: calls_zh with
turn texts, calls_en without), each call is diarized once and its speaker streams transcribed
both ways: time spent in transcription, WER (English) or CER (Mandarin) against the truth where
there is one, the call's language, the languages of its segments, and whether the two
transcripts are the same text; and the time the per-stretch language detection takes on its
own. Timings on a shared machine are noisy: compare the detection time with the transcription
time rather than the two transcription times alone.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from evaluation.metrics import cer, wer
from pipeline.intake.audio import decode
from pipeline.records import join_words
from pipeline.speakers.diarize import diarize
from pipeline.speech.asr import EngineSpec, TranscribeOptions
from pipeline.speech.language import stream_stretches
from pipeline.speech.streams import speaker_streams, transcribe_streams
from pipeline.speech.transcribe import load_engine

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
DEV = ROOT.parent / "shared" / "dev"


def calls() -> list[tuple[str, Path, str | None, str | None]]:
    """(call id, audio, reference text or None, reference language)."""
    out = []
    for truth in sorted((SAMPLES / "truth").glob("*.json")):
        t = json.loads(truth.read_text(encoding="utf-8"))
        (audio,) = [p for p in SAMPLES.glob(f"{t['call_id']}.*") if p.suffix != ".csv"]
        out.append((t["call_id"], audio, " ".join(x["text"] for x in t["turns"]), t["language"]))
    for meta in sorted((DEV / "calls_zh").glob("*.json")):
        t = json.loads(meta.read_text(encoding="utf-8"))
        out.append((f"dev-{meta.stem}", meta.with_suffix(".wav"), "".join(x["text"] for x in t["turns"]), t["language"]))
    out.append(("dev-google-commercial", DEV / "calls_en" / "google_commercial" / "commercial_mono.wav", None, None))
    return [c for c in out if c[1].exists()]


def measure(call_id: str, path: Path, reference: str | None, ref_language: str | None, engine,
            after_first: bool = False) -> dict:
    audio = decode(path)
    streams = speaker_streams(audio.samples, diarize(audio.samples))
    row = {"call_id": call_id, "audio_s": round(audio.duration, 1)}
    texts = {}
    ways = [("before", False), ("after", True)]
    for name, per_stretch in reversed(ways) if after_first else ways:  # alternated: load drifts
        clock = time.perf_counter()
        transcript = transcribe_streams(engine, streams, TranscribeOptions(), per_stretch=per_stretch)
        row[f"{name}_s"] = round(time.perf_counter() - clock, 1)
        texts[name] = join_words(s.text for s in transcript.segments)
        row[f"{name}_language"] = transcript.language
        if reference is not None:
            score = cer if ref_language == "zh" else wer
            row[f"{name}_{'cer' if ref_language == 'zh' else 'wer'}"] = round(100 * score(reference, texts[name]), 1)
        if per_stretch:
            row["segment_languages"] = sorted({s.language for s in transcript.segments if s.language})
    row["same_text"] = texts["before"] == texts["after"]
    # The detection alone (what per-stretch adds; it saves Whisper's own detection pass per stream).
    clock = time.perf_counter()
    found = [stream_stretches(engine, s.audio, s.stream_starts, s.lengths) for s in streams]
    row["detect_s"] = round(time.perf_counter() - clock, 2)
    row["stretches"] = sum(len(f or ()) for f in found)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    engine = load_engine(EngineSpec())
    import numpy as np

    engine.transcribe(np.zeros(16000, dtype=np.float32), TranscribeOptions())  # warm up before timing anything
    rows = []
    for i, call in enumerate(calls()):
        rows.append(measure(*call, engine, after_first=i % 2 == 1))
        print(json.dumps(rows[-1], ensure_ascii=False), flush=True)
    before, after = sum(r["before_s"] for r in rows), sum(r["after_s"] for r in rows)
    detect = sum(r["detect_s"] for r in rows)
    print(f"transcription, all calls: before {before:.1f} s, after {after:.1f} s ({100 * (after / before - 1):+.1f}%); "
          f"per-stretch detection alone {detect:.1f} s ({100 * detect / before:.1f}% of before)")
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
