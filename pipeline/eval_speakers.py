"""`python -m pipeline.eval_speakers`: speaker count, DER and role accuracy on real calls.

The set: the real two-party English call recorded as separate agent/caller files
(`../shared/dev/calls_en/aws_auto_repairs_49`, as a mono mix and as a stereo file; truth by
construction, voice activity on each side), the 45 s English sales call (count only), the two
Mandarin telephone calls in `../shared/dev/calls_zh` (rttm truth), and the 4 sample calls
(`data/samples/truth`). Roles need words: Whisper runs once per file (nice it) and the run is
cached in `data/cache/recognition/` (gitignored); `tests/recognition/dev-*.json` are copies used
by tests. Each call is scored without a voiceprint and, where other audio of the same agent
exists, with one enrolled from that other audio (never from the call itself).
"""
from __future__ import annotations

import argparse
import json
import subprocess
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from .audio import SAMPLE_RATE, decode

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "dev"
SHARED_AUDIO = ROOT.parent / "shared" / "audio"
SAMPLES = ROOT / "data" / "samples"
CACHE = ROOT / "data" / "cache"
FIXTURES = ROOT / "tests" / "recognition"


@dataclass(frozen=True)
class EvalCall:
    name: str
    path: Path
    language: str
    n_speakers: int  # truth
    layout: str  # "mono" | "stereo"
    agent_channel: int | None = None  # stereo: for the "manifest knows" row
    truth_kind: str = "rttm"  # "rttm" | "sides" | "sample" | "count"
    agent_id: str | None = None  # whose voiceprint may be enrolled (from other audio)


def _aws_file(kind: str) -> Path:
    """The aws call as a mono mix or a stereo file (sox recipe from the dev README), cached."""
    folder = DEV / "calls_en" / "aws_auto_repairs_49"
    out = CACHE / "audio" / f"aws_auto_repairs_49_{kind}.wav"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        args = ["sox", "-M", str(folder / "agent.wav"), str(folder / "caller.wav"), str(out)]
        subprocess.run(args + (["remix", "1,2"] if kind == "mono" else []), check=True)
    return out


def eval_calls() -> list[EvalCall]:
    calls = [
        EvalCall("aws_auto_repairs_49 (mono)", _aws_file("mono"), "en", 2, "mono", None, "sides", "aws-agent"),
        EvalCall("aws_auto_repairs_49 (stereo)", _aws_file("stereo"), "en", 2, "stereo", 0, "sides", "aws-agent"),
        EvalCall("google_commercial", DEV / "calls_en" / "google_commercial" / "commercial_mono.wav", "en", 2, "mono",
                 None, "count"),
    ]
    for name in ("liuchanhg", "wangzhe"):
        calls.append(EvalCall(f"calls_zh/{name}", DEV / "calls_zh" / f"{name}.wav", "zh", 2, "mono", None, "rttm",
                              "magicdata-cs"))
    for truth in sorted((SAMPLES / "truth").glob("*.json")):
        t = json.loads(truth.read_text(encoding="utf-8"))
        path = next(p for p in SAMPLES.iterdir() if p.stem == truth.stem and p.suffix != ".json")
        agent = "magicdata-cs" if t["language"] == "zh" else None
        calls.append(EvalCall(truth.stem, path, t["language"], len({x["speaker"] for x in t["turns"]}), t["layout"],
                              t["agent_channel"], "sample", agent))
    return calls


def truth_turns(call: EvalCall) -> list[dict] | None:
    """[{'start', 'end', 'speaker', 'role'}] or None (count-only truth)."""
    if call.truth_kind == "count":
        return None
    if call.truth_kind == "sample":
        t = json.loads((SAMPLES / "truth" / f"{call.path.stem}.json").read_text(encoding="utf-8"))
        return [{"start": x["start"], "end": x["end"], "speaker": x["role"], "role": x["role"]} for x in t["turns"]]
    if call.truth_kind == "rttm":
        turns = []
        for line in call.path.with_suffix(".rttm").read_text().splitlines():
            f = line.split()
            start, dur, label = float(f[3]), float(f[4]), f[7]
            turns.append({"start": start, "end": start + dur, "speaker": label, "role": label})
        return turns
    return _sides_truth()


@lru_cache(maxsize=1)
def _sides_truth_cached() -> tuple:
    from .speakers import speech_regions

    folder = DEV / "calls_en" / "aws_auto_repairs_49"
    turns = []
    for role in ("agent", "caller"):
        samples = decode(folder / f"{role}.wav").mono()
        for start, end in speech_regions(samples):
            turns.append((start, end, "agent" if role == "agent" else "customer"))
    return tuple(sorted(turns))


def _sides_truth() -> list[dict]:
    return [{"start": s, "end": e, "speaker": r, "role": r} for s, e, r in _sides_truth_cached()]


# --- recognition, run once per file and cached -------------------------------------------------

def _slug(call: EvalCall) -> str:
    return call.name.replace("calls_zh/", "").replace(" (", "-").replace(")", "").replace("_", "-")


def recognition_path(call: EvalCall) -> Path:
    if call.truth_kind == "sample":
        return FIXTURES / f"{call.path.stem}.json"
    fixture = FIXTURES / f"dev-{_slug(call)}.json"
    return fixture if fixture.exists() else CACHE / "recognition" / f"dev-{_slug(call)}.json"


def record_recognition(call: EvalCall, spec=None) -> Path:
    """Whisper over the down-mix (mono) or over each channel (stereo), once; words keep their
    recording times, so any diarization can be scored against them later without Whisper."""
    from .asr import EngineSpec, TranscribeOptions, load_engine
    from .serial import save_recognition
    from .speakers import diarize

    path = CACHE / "recognition" / f"dev-{_slug(call)}.json"
    if path.exists() or call.truth_kind == "sample":
        return recognition_path(call)
    spec = spec or EngineSpec()
    engine = load_engine(spec)
    audio = decode(call.path)
    options = TranscribeOptions(language=call.language)
    if call.layout == "stereo":
        parts = [engine.transcribe(audio.samples[ch], options) for ch in range(audio.channels)]
        segments = sorted((replace(s, channel=ch, speaker=f"ch{ch}") for ch, p in enumerate(parts) for s in p.segments),
                          key=lambda s: s.start)
        transcript = replace(parts[0], segments=tuple(segments))
    else:
        transcript = engine.transcribe(audio.mono(), options)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_recognition(path, transcript, diarize(audio.samples), call=call.name, model=spec.model_id)
    return path


# --- stitched calls from real voices: for the count choice (1, 2 or 3 people) ------------------

def telephone(samples: np.ndarray) -> np.ndarray:
    """A telephone channel, as call centres store calls: 8 kHz mu-law, 300-3400 Hz (sox), back at 16 kHz."""
    import soundfile as sf
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
        sf.write(src, samples, SAMPLE_RATE, subtype="FLOAT")
        subprocess.run(["sox", str(src), "-r", "8000", "-e", "mu-law", str(dst), "sinc", "300-3400"], check=True)
        return decode(dst).mono()


def _clips(voice: str) -> list[np.ndarray]:
    """Real utterances of one voice: a CASIA speaker (neutral and angry) or the Magic Data agent."""
    import librosa

    if voice == "magicdata":
        paths = sorted((SHARED_AUDIO / "zh_customer_service_general").glob("*.wav"))[:16]
    else:
        paths = sorted((DEV / "emotion_zh" / "casia" / voice).glob("*/*.wav"))
    return [librosa.effects.trim(decode(p).mono(), top_db=35)[0] for p in paths]


def stitch(clips: list[tuple[str, np.ndarray]], gap: float = 0.5) -> tuple[np.ndarray, list[dict]]:
    """Clips (speaker, audio) in turn with pauses, each at the same level; (audio, truth turns)."""
    pause = np.zeros(int(gap * SAMPLE_RATE), np.float32)
    parts, turns, t = [pause], [], gap
    for speaker, clip in clips:
        clip = clip / (np.sqrt(np.mean(clip ** 2)) + 1e-9) * 0.05
        turns.append({"speaker": speaker, "start": t, "end": t + len(clip) / SAMPLE_RATE, "role": speaker})
        parts += [clip.astype(np.float32), pause]
        t += len(clip) / SAMPLE_RATE + gap
    return np.concatenate(parts), turns


def stitched_calls() -> list[tuple[str, np.ndarray, list[dict], int]]:
    """(name, 16 kHz audio, truth, number of people): one voice, two voices and three voices,
    over a telephone channel. The one-voice files include both real sides of the aws call."""
    voices = {v: _clips(v) for v in ("magicdata", "liuchanhg", "wangzhe")}
    out = []
    for v, clips in voices.items():
        audio, truth = stitch([(v, c) for c in clips[:12]])
        out.append((f"1 voice: {v}", telephone(audio), truth, 1))
    folder = DEV / "calls_en" / "aws_auto_repairs_49"
    for side in ("agent", "caller"):
        from .speakers import speech_regions

        samples = decode(folder / f"{side}.wav").mono()
        truth = [{"speaker": side, "role": side, "start": s, "end": e} for s, e in speech_regions(samples)]
        out.append((f"1 voice: aws {side} side", samples, truth, 1))
    a, b, c = voices["liuchanhg"], voices["wangzhe"], voices["magicdata"]
    audio, truth = stitch([x for pair in zip([("liuchanhg", x) for x in a[:8]], [("wangzhe", x) for x in b[:8]])
                           for x in pair])
    out.append(("2 voices: liuchanhg+wangzhe", telephone(audio), truth, 2))
    aishell = decode(SHARED_AUDIO / "zh_BAC009S0764W0121.wav").mono()
    seq = []
    for i in range(6):
        seq += [("magicdata", c[i]), ("liuchanhg", a[i])]
        if i in (2, 3, 4):  # a transfer: a second staff member speaks for a while
            seq += [("wangzhe", b[i]), ("wangzhe", b[i + 6])]
    audio, truth = stitch(seq)
    out.append(("3 voices: magicdata+liuchanhg+wangzhe", telephone(audio), truth, 3))
    seq = [x for i in range(5) for x in (("magicdata", c[i]), ("wangzhe", b[i]))] + [("aishell", aishell)] * 2 + \
          [x for i in range(5, 8) for x in (("magicdata", c[i]), ("wangzhe", b[i]))]
    audio, truth = stitch(seq)
    out.append(("3 voices: magicdata+wangzhe+aishell", telephone(audio), truth, 3))
    return out
