"""Transcripts and diarizations as plain JSON, and back.

Used to keep a real recognition run on disk (tests of later stages replay it, so they hold on
any CPU whatever characters Whisper writes there) and as the compact record a worker hands back.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from .speakers import Diarization, SpeakerSegment
from .types import Segment, Transcript, Word

FORMAT = 1


def transcript_to_dict(t: Transcript) -> dict:
    return asdict(t)


def transcript_from_dict(d: dict) -> Transcript:
    segments = tuple(Segment(**{**s, "words": tuple(Word(**w) for w in s["words"])}) for s in d["segments"])
    return Transcript(**{**d, "segments": segments, "dropped": tuple(d.get("dropped", ()))})


def diarization_to_dict(d: Diarization) -> dict:
    return asdict(d)


def diarization_from_dict(d: dict) -> Diarization:
    return Diarization(**{**d, "segments": tuple(SpeakerSegment(**s) for s in d["segments"])})


def save_recognition(path: Path, transcript: Transcript, diarization: Diarization, **about) -> None:
    """One recognition run (what Whisper wrote, and who spoke when) as JSON."""
    payload = {"format": FORMAT, "about": about, "transcript": transcript_to_dict(transcript),
               "diarization": diarization_to_dict(diarization)}
    Path(path).write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")


def load_recognition(path: Path) -> tuple[Transcript, Diarization]:
    payload = json.loads(Path(path).read_text(encoding="utf-8"))
    if payload.get("format") != FORMAT:
        raise ValueError(f"{path}: stored recognition format {payload.get('format')}, expected {FORMAT}")
    return transcript_from_dict(payload["transcript"]), diarization_from_dict(payload["diarization"])
