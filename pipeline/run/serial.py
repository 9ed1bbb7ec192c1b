"""Transcripts and diarizations as plain JSON, and back.

Used to keep a real recognition run on disk (tests of later stages replay it, so they hold on
any CPU whatever characters Whisper writes there) and as the compact record a worker hands back.
"""
from __future__ import annotations

import dataclasses
import json
import types as pytypes
import typing
from dataclasses import asdict
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np

from pipeline.records import CallResult, Diarization, Segment, SpeakerSegment, Transcript, Word

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


# --- a whole call's results as a compact, versioned record -------------------------------
# Work done in another process or machine (a Dask worker) comes back as this plain JSON-able
# dict, not a pickled object graph: a worker and the writer need to agree on the record's
# version, not on every class's pickle layout.

RECORD_VERSION = 4  # 2: CallResult.redacted (each turn's masked text); 3: CallResult.direction;
# 4: Escalation.sources, CallMetadata.complaint_source


def to_record(result) -> dict:
    """CallResult -> plain dict of str/int/float/bool/None/list/dict (JSON-able)."""
    return {"record_version": RECORD_VERSION, "call_result": _plain(result)}


def from_record(record: dict):
    """The inverse of `to_record`: rebuilds every dataclass from its field types."""
    if record.get("record_version") != RECORD_VERSION:
        raise ValueError(f"call record version {record.get('record_version')}, this writer reads {RECORD_VERSION}")
    return _build(CallResult, record["call_result"])


def _plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


@lru_cache(maxsize=None)
def _hints(cls) -> dict:
    # Every record a CallResult holds is in pipeline.records: its field types resolve there.
    return typing.get_type_hints(cls)


def _build(kind, value):
    if value is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (typing.Union, pytypes.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return _build(options[0], value) if len(options) == 1 else value
    if dataclasses.is_dataclass(kind):
        hints = _hints(kind)
        return kind(**{f.name: _build(hints[f.name], value[f.name]) for f in dataclasses.fields(kind)
                       if f.name in value})
    if origin is tuple:
        args = typing.get_args(kind)
        item = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        if item is not None:
            return tuple(_build(item, v) for v in value)
        return tuple(_build(a, v) for a, v in zip(args, value)) if args else tuple(value)
    if origin is list:
        (item,) = typing.get_args(kind) or (typing.Any,)
        return [_build(item, v) for v in value]
    if origin is dict:
        _, item = typing.get_args(kind) or (None, typing.Any)
        return {k: _build(item, v) for k, v in value.items()}
    if kind is tuple:  # no item types given: lists back to tuples all the way down
        return _deep_tuple(value)
    if kind is Path:
        return Path(value)
    if kind is datetime:
        return datetime.fromisoformat(value)
    return value


def _deep_tuple(value):
    return tuple(_deep_tuple(v) for v in value) if isinstance(value, list) else value
