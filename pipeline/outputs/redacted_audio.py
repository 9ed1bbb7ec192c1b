"""The audio people play, with every masked number replaced by a tone.

The masks of the text (`pipeline.analysis.redact`: cards, ID numbers, phones, accounts, codes,
e-mails) are found again on the recognised words themselves, each speaker's words read as one
stream (a number split across two turns is found, as in the text), and each masked run of words
is placed in time by its words' timestamps, padded on both sides: Whisper's word edges are
tens of milliseconds off, and a digit at the edge of a mask must not survive.

A turn whose masked text holds more masks than were placed in it (a mask the words cannot
locate) is covered whole. A call with masks and no word times cannot be redacted: it raises
`CannotRedact`, and nothing is played.

The redacted copy is written once per call (16 kHz FLAC, every channel; sealed with the
database key when the database is encrypted) into a folder beside the database, and reused while
the call's audio and masks stay the same (the file name holds a digest of both).
"""
from __future__ import annotations

import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.analysis.redact import TURN_JOIN_SECONDS, find, masks_in
from pipeline.config import keys
from pipeline.intake.audio import BadRecording, decode
from pipeline.store import Store

PAD_SECONDS = 0.3  # either side of a masked run of words
TONE_HZ = 1000.0
TONE_DBFS = -14.0
FADE_SECONDS = 0.01
SAMPLE_RATE = 16_000
VERSION = "1"  # in the file name's digest: a change to how audio is redacted makes new copies


class CannotRedact(Exception):
    """The call's audio cannot be redacted; the message says why. It is then not played."""


class NoSuchCall(CannotRedact):
    """No processed call has this id."""


@dataclass(frozen=True)
class Bleep:
    start: float
    end: float
    kind: str  # the mask's kind (card, id, phone...), or "turn" for a turn covered whole


def bleeps(words: list[tuple], turns: list[tuple]) -> list[Bleep]:
    """Where the tone goes. `words`: (speaker, start, end, text[, role]) in time order; `turns`:
    (speaker, start, end, masked text)."""
    found: list[Bleep] = []
    chains: dict[object, list[list[tuple]]] = {}
    for w in words:
        runs = chains.setdefault(w[0], [])
        if runs and w[1] - runs[-1][-1][2] <= TURN_JOIN_SECONDS:
            runs[-1].append(w)
        else:
            runs.append([w])
    for runs in chains.values():
        for chain in runs:
            text, bounds = "", []
            for w in chain:
                bounds.append((len(text), len(text) + len(w[3] or "")))
                text += w[3] or ""
            customer = (chain[0][4] if len(chain[0]) > 4 else None) != "agent"  # an agent's own name stays
            for r in find(text, customer=customer):
                hit = [w for w, (a, b) in zip(chain, bounds) if a < r.end and r.start < b]
                if hit:
                    found.append(Bleep(min(w[1] for w in hit) - PAD_SECONDS, max(w[2] for w in hit) + PAD_SECONDS, r.kind))
    for speaker, start, end, masked in turns:
        wanted = masks_in(masked)
        if not wanted:
            continue
        placed = [b for b in found if b.kind != "turn" and b.start < end and start < b.end]
        if len(placed) < wanted:  # a mask the words did not place: the whole turn, to be safe
            if start is None or end is None or end <= start:
                raise CannotRedact("a masked turn has no time: its audio cannot be redacted")
            found.append(Bleep(start - PAD_SECONDS, end + PAD_SECONDS, "turn"))
    return merged(found)


def merged(spans: list[Bleep]) -> list[Bleep]:
    out: list[Bleep] = []
    for b in sorted(spans, key=lambda b: b.start):
        b = Bleep(max(b.start, 0.0), b.end, b.kind)
        if out and b.start <= out[-1].end:
            last = out[-1]
            out[-1] = Bleep(last.start, max(last.end, b.end), last.kind if last.kind == b.kind else f"{last.kind}+{b.kind}")
        else:
            out.append(b)
    return out


def apply(samples: np.ndarray, sample_rate: int, spans: list[Bleep]) -> np.ndarray:
    """`samples` (channels, n) with each span replaced by the tone on every channel."""
    out = samples.copy()
    n = out.shape[1]
    fade = max(int(FADE_SECONDS * sample_rate), 1)
    amplitude = 10 ** (TONE_DBFS / 20)
    for b in spans:
        a, z = max(int(b.start * sample_rate), 0), min(int(np.ceil(b.end * sample_rate)), n)
        if z <= a:
            continue
        t = np.arange(a, z) / sample_rate
        tone = amplitude * np.sin(2 * np.pi * TONE_HZ * t)
        ramp = np.minimum(1.0, np.minimum(np.arange(z - a) + 1, np.arange(z - a)[::-1] + 1) / fade)
        out[:, a:z] = (tone * ramp).astype(out.dtype)
    return out


def cache_folder(db_path: Path, setting: str = "") -> Path:
    """Where redacted copies are kept: the redacted_audio_dir setting, else `redacted/` beside the database."""
    return Path(setting).expanduser() if setting else Path(db_path).resolve().parent / "redacted"


def redacted_audio(store: Store, call_id: str, folder: Path) -> tuple[bytes, list[Bleep]]:
    """The redacted audio of a call (FLAC bytes) and where the tones are; written to `folder`
    the first time, read from there afterwards."""
    found = store.redaction_inputs(call_id)
    if found is None:
        raise NoSuchCall(f"no processed call {call_id}")
    has_masks = any(masks_in(t[3]) for t in found["turns"])
    if has_masks and not found["words"]:
        raise CannotRedact("the call has masked numbers but no word times: its audio cannot be redacted")
    spans = bleeps(found["words"], found["turns"])
    sealed = keys.encrypting()
    digest = hashlib.sha256(json.dumps([VERSION, found["sha256"], [(b.start, b.end) for b in spans]]).encode()).hexdigest()[:16]
    path = folder / f"{call_id}-{digest}.flac{'.enc' if sealed else ''}"
    if path.exists():
        try:
            blob = path.read_bytes()
            return (keys.unseal(blob, path.name) if sealed else blob), spans
        except keys.KeyProblem:  # damaged or from another key: made again below
            pass
    paths = [Path(p) if Path(p).is_absolute() else store.path.parent / p for p in found["paths"] if p]
    source = next((p for p in paths if p.is_file()), None)
    if source is None:
        raise CannotRedact("the recording is no longer where it was stored")
    try:
        audio = decode(source, SAMPLE_RATE)
    except BadRecording as exc:
        raise CannotRedact(f"the recording cannot be read: {exc}") from None
    buffer = io.BytesIO()
    sf.write(buffer, apply(audio.samples, audio.sample_rate, spans).T, audio.sample_rate, format="FLAC")
    data = buffer.getvalue()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    mine = re.compile(rf"{re.escape(call_id)}-[0-9a-f]{{16}}\.flac(\.enc)?")
    for old in folder.glob(f"{call_id}-*"):  # an earlier copy (other masks, other audio)
        if mine.fullmatch(old.name) and old != path:
            old.unlink(missing_ok=True)
    keys.write_file(path, keys.seal(data) if sealed else data)
    return data, spans
