"""Would rescoring go faster with a call's windows in one batch, and would it decide the same?
`python -m evaluation.rescore_batching` (and a line of `make bench`).

Rescoring (pipeline/vocabulary/rescore.py) reads each window of a few seconds on its own: one
encoder pass over the window's own frames, then one teacher-forced batch per prompt. A batch of
windows needs one length: CTranslate2's encoder takes a rectangular batch, and its `align` one
start sequence (the prompt) for the whole batch. So the windows of the Mandarin calls with stored
runs (the sample calls and ../shared/dev/calls_zh, after correction by sound) are scored here both
ways in the same run: one at a time as the pipeline does, and SCORE_BATCH at a time, shortest
first, each padded with silence to the longest of its batch (as Whisper pads every window to
30 s), the texts of a batch that share a prompt read together. Reported: both times, how far the
scores and the gains the margin decides on move, and how many decisions would flip.
"""
from __future__ import annotations

import argparse
import time

import ctranslate2
import numpy as np
from faster_whisper.tokenizer import Tokenizer

from evaluation.recognition import RECOGNITION, calls_zh_runs, sample_audio, stored_ids
from pipeline.engines import Engines
from pipeline.intake.audio import decode
from pipeline.records import label_channel
from pipeline.run.serial import load_recognition
from pipeline.speech.asr import EngineSpec
from pipeline.speech.transcribe import load_engine
from pipeline.vocabulary.correct import correct_transcript
from pipeline.vocabulary.rescore import RescoreOptions, rescore_transcript, segment_clip

SCORE_BATCH = 8


class _Recording:
    """The engine as rescoring's scorer, keeping every window it is asked to read."""

    def __init__(self, engine):
        self.engine, self.windows = engine, []

    def score(self, audio, texts, language):
        self.windows.append((audio, texts))
        return self.engine.score(audio, texts, language)


def mandarin_calls() -> list[tuple[object, int, object]]:
    """(transcript after correction by sound, corrections so far, audio) of each Mandarin call with a stored run."""
    out = []
    for run_path, audio_path in [(RECOGNITION / f"{c}.json", sample_audio(c)) for c in stored_ids()] + calls_zh_runs():
        if not audio_path.exists():
            continue
        transcript, _ = load_recognition(run_path)
        if transcript.language == "zh":
            corrected, found = correct_transcript(transcript)
            out.append((corrected, len(found), decode(audio_path)))
    return out


def rescore_calls(calls, scorer) -> list:
    return [rescore_transcript(t, lambda seg, a=a: segment_clip(a.samples, a.sample_rate, seg, label_channel(seg.speaker)),
                               scorer, first_seq=n)[1] for t, n, a in calls]


def padded_batch_scores(engine, windows: list[tuple[np.ndarray, list]], language: str = "zh") -> list[list[float]]:
    """The engine's `score` for every window, SCORE_BATCH windows through the encoder at once."""
    model = engine.model
    extractor = model.feature_extractor
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
    scores = [[0.0] * len(texts) for _, texts in windows]
    order = sorted(range(len(windows)), key=lambda k: len(windows[k][0]))
    for first in range(0, len(order), SCORE_BATCH):
        rows = order[first:first + SCORE_BATCH]
        width = len(windows[rows[-1]][0])
        features = [extractor(np.pad(windows[k][0].astype(np.float32), (0, width - len(windows[k][0])))) for k in rows]
        n = min(features[0].shape[-1] - 1, extractor.nb_max_frames)
        n -= n % 2
        encoded = np.asarray(model.encode(np.ascontiguousarray(np.stack([f[:, :n] for f in features]))))
        by_prompt: dict = {}
        for row, k in enumerate(rows):
            for j, (_, prompt) in enumerate(windows[k][1]):
                by_prompt.setdefault(prompt, []).append((row, k, j))
        for prompt, items in by_prompt.items():
            previous = tokenizer.encode(" " + prompt.strip())[-(model.max_length // 2 - 1):] if prompt else []
            start = ([tokenizer.sot_prev] + previous if previous else []) + list(tokenizer.sot_sequence)
            results = model.model.align(
                ctranslate2.StorageView.from_array(encoded[[row for row, _, _ in items]]), start,
                [tokenizer.encode(windows[k][1][j][0]) for _, k, j in items],
                [min(len(windows[k][0]) // extractor.hop_length, n) for _, k, _ in items], median_filter_width=1)
            for (_, k, j), result in zip(items, results):
                scores[k][j] = float(np.log(np.maximum(np.asarray(result.text_token_probs), 1e-12)).sum())
    return scores


def _gains(scores: list[list[float]]) -> np.ndarray:
    return np.array([s[k] - s[0] for s in scores for k in range(1, len(s))])


def measure(engines: Engines | None = None, passes: int = 3) -> dict:
    engine = load_engine(EngineSpec(num_workers=1, cpu_threads=2), engines or Engines())
    calls = mandarin_calls()
    recorder = _Recording(engine)
    rescore_calls(calls, recorder)  # warm-up, and the windows the pipeline reads
    windows = recorder.windows
    one_s, batch_s = [], []
    for _ in range(passes):
        start = time.perf_counter()
        alone = [engine.score(a, t, "zh") for a, t in windows]
        one_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        batched = padded_batch_scores(engine, windows)
        batch_s.append(time.perf_counter() - start)
    score_moved = np.abs(np.concatenate([np.subtract(b, a) for b, a in zip(batched, alone)]))
    gain_alone, gain_batched = _gains(alone), _gains(batched)
    margin = RescoreOptions().margin
    flips = int(np.sum((gain_alone > margin) != (gain_batched > margin)))
    return {"calls": len(calls), "windows": len(windows), "readings": int(gain_alone.size),
            "one_at_a_time_s": float(np.median(one_s)), "batched_s": float(np.median(batch_s)),
            "score_moved_median": float(np.median(score_moved)), "gain_moved_median":
            float(np.median(np.abs(gain_batched - gain_alone))), "gain_moved_max": float(np.max(np.abs(gain_batched - gain_alone))),
            "margin": margin, "decisions_flipped": flips}


def report_line(r: dict) -> str:
    return (f"rescoring windows of {r['calls']} Mandarin calls ({r['windows']} windows, {r['readings']} readings): "
            f"one at a time {r['one_at_a_time_s']:.2f} s (the pipeline), padded batches of {SCORE_BATCH} "
            f"{r['batched_s']:.2f} s ({r['one_at_a_time_s'] / r['batched_s']:.2f}x); padding moves the gains "
            f"by {r['gain_moved_median']:.2f} (median) to {r['gain_moved_max']:.2f} nats against a "
            f"{r['margin']:.2f} margin: {r['decisions_flipped']} of {r['readings']} decisions flip")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=3)
    print(report_line(measure(passes=parser.parse_args(argv).passes)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
