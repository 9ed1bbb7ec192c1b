"""The optional pyannote.audio backend for mono calls (a pretrained pipeline: local path, or hub
name and token where there is internet)."""
from __future__ import annotations

import os

import numpy as np

from pipeline.intake.audio import SAMPLE_RATE
from pipeline.records import Diarization, SpeakerSegment


def pyannote_diarization(samples: np.ndarray, pipeline_ref: str, token: str | None = None) -> Diarization:
    """A pyannote.audio pretrained pipeline (local path, or hub name + token where there is internet).

    Optional: pyannote.audio needs torchaudio, which has no build for the pinned torch here.
    """
    os.environ["PYANNOTE_METRICS_ENABLED"] = "0"  # no telemetry: call recordings are confidential
    try:
        from pyannote.audio import Pipeline  # optional: scoring and the pyannote backend only
    except Exception as exc:  # ImportError, or torchaudio failing inside it
        raise RuntimeError(
            "the pyannote diarization backend needs pyannote.audio with a matching torchaudio "
            f"(pip install pyannote.audio); it does not import here: {exc}") from exc
    import torch  # heavy (torch): loaded when a model first runs

    pipeline = Pipeline.from_pretrained(pipeline_ref, token=token)
    output = pipeline({"waveform": torch.from_numpy(samples[None].astype(np.float32)), "sample_rate": SAMPLE_RATE})
    annotation = getattr(output, "speaker_diarization", output)  # pyannote.audio 4 wraps it
    names: dict[str, str] = {}
    segments = []
    for turn, _, label in annotation.itertracks(yield_label=True):
        names.setdefault(label, f"spk{len(names)}")
        segments.append(SpeakerSegment(float(turn.start), float(turn.end), names[label]))
    return Diarization(tuple(segments), "pyannote", len(names))
