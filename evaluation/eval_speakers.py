"""`python -m evaluation.eval_speakers`: speaker count, DER and role accuracy on real calls.

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

from evaluation.common import CACHE, DEV, ROOT, SAMPLES, SHARED_AUDIO, telephone_samples
from pipeline.intake.audio import SAMPLE_RATE, decode
from pipeline.records import channel_label

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
    codec: str | None = None  # the speaker stages hear `path` through this codec (evaluation/codecs.py)

    @property
    def label(self) -> str:
        return f"{self.name} [{self.codec}]" if self.codec else self.name


def _aws_file(kind: str) -> Path:
    """The aws call as a mono mix or a stereo file (sox recipe from the dev README), cached."""
    folder = DEV / "calls_en" / "aws_auto_repairs_49"
    out = CACHE / "audio" / f"aws_auto_repairs_49_{kind}.wav"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        # -D: no dither, which is random: the mix must be the same file on every machine, or its
        # stored recognition run (tests/recognition) goes stale on a fresh clone.
        args = ["sox", "-D", "-M", str(folder / "agent.wav"), str(folder / "caller.wav"), str(out)]
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
        agent = "magicdata-cs" if t["language"] == "zh" else "espeak-en-us+f2"
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
        return rttm_turns(call.path.with_suffix(".rttm"))
    return _sides_truth()


def rttm_turns(path: Path) -> list[dict]:
    """The SPEAKER lines of an RTTM file as truth turns (the label stands for the role too)."""
    turns = []
    for line in path.read_text().splitlines():
        f = line.split()
        if f and f[0] == "SPEAKER":
            start, dur, label = float(f[3]), float(f[4]), f[7]
            turns.append({"start": start, "end": start + dur, "speaker": label, "role": label})
    return turns


@lru_cache(maxsize=1)
def _sides_truth_cached() -> tuple:
    from pipeline.speakers.vad import speech_regions

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


def dev_settings(call: EvalCall) -> str:
    """The settings a dev call's run is recorded with: transcribed whole (each channel of a stereo
    file), not per diarized speaker, in the call's known language."""
    from evaluation.recognition import recognition_settings
    from pipeline.speech.asr import TranscribeOptions

    return recognition_settings(options=TranscribeOptions(language=call.language), split=False)


def stored_dev_runs() -> list[tuple[Path, Path, str]]:
    """(stored run, audio, settings) of the dev calls' runs kept in tests/recognition."""
    return [(FIXTURES / f"dev-{_slug(c)}.json", c.path, dev_settings(c)) for c in eval_calls()
            if c.truth_kind != "sample" and (FIXTURES / f"dev-{_slug(c)}.json").exists()]


def record_recognition(call: EvalCall, spec=None, again: bool = False) -> Path:
    """Whisper over the down-mix (mono) or over each channel (stereo), once (`again`: once more,
    in place); words keep their recording times, so any diarization can be scored against them
    later without Whisper."""
    from evaluation.recognition import record
    from pipeline.speakers.diarize import diarize
    from pipeline.speech.asr import EngineSpec, TranscribeOptions
    from pipeline.speech.transcribe import load_engine

    path = recognition_path(call)
    if call.truth_kind == "sample" or (path.exists() and not again):
        return path
    spec = spec or EngineSpec()
    engine = load_engine(spec)
    audio = decode(call.path)
    options = TranscribeOptions(language=call.language)
    if call.layout == "stereo":
        parts = [engine.transcribe(audio.samples[ch], options) for ch in range(audio.channels)]
        segments = sorted((replace(s, channel=ch, speaker=channel_label(ch)) for ch, p in enumerate(parts) for s in p.segments),
                          key=lambda s: s.start)
        transcript = replace(parts[0], segments=tuple(segments))
    else:
        transcript = engine.transcribe(audio.mono(), options)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Transcribed whole (each channel of a stereo file), not per diarized speaker: split=False.
    record(path, transcript, diarize(audio.samples), call.path, dev_settings(call), call=call.name, model=spec.model_id)
    return path


# --- stitched calls from real voices: for the count choice (1, 2 or 3 people) ------------------

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
        out.append((f"1 voice: {v}", telephone_samples(audio), truth, 1))
    folder = DEV / "calls_en" / "aws_auto_repairs_49"
    for side in ("agent", "caller"):
        from pipeline.speakers.vad import speech_regions

        samples = decode(folder / f"{side}.wav").mono()
        truth = [{"speaker": side, "role": side, "start": s, "end": e} for s, e in speech_regions(samples)]
        out.append((f"1 voice: aws {side} side", samples, truth, 1))
    a, b, c = voices["liuchanhg"], voices["wangzhe"], voices["magicdata"]
    audio, truth = stitch([x for pair in zip([("liuchanhg", x) for x in a[:8]], [("wangzhe", x) for x in b[:8]])
                           for x in pair])
    out.append(("2 voices: liuchanhg+wangzhe", telephone_samples(audio), truth, 2))
    aishell = decode(SHARED_AUDIO / "zh_BAC009S0764W0121.wav").mono()
    seq = []
    for i in range(6):
        seq += [("magicdata", c[i]), ("liuchanhg", a[i])]
        if i in (2, 3, 4):  # a transfer: a second staff member speaks for a while
            seq += [("wangzhe", b[i]), ("wangzhe", b[i + 6])]
    audio, truth = stitch(seq)
    out.append(("3 voices: magicdata+liuchanhg+wangzhe", telephone_samples(audio), truth, 3))
    seq = [x for i in range(5) for x in (("magicdata", c[i]), ("wangzhe", b[i]))] + [("aishell", aishell)] * 2 + \
          [x for i in range(5, 8) for x in (("magicdata", c[i]), ("wangzhe", b[i]))]
    audio, truth = stitch(seq)
    out.append(("3 voices: magicdata+wangzhe+aishell", telephone_samples(audio), truth, 3))
    return out


# --- enrolment audio: other recordings of the same agent, never the call scored ---------------

def _norm(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


def magicdata_enrolment(n: int = 12) -> list[Path]:
    """Magic Data lines of the customer-service speaker that no scored call uses (the calls_zh
    calls and the Mandarin sample calls are built from some of her other lines)."""
    used_text = set()
    for name in ("liuchanhg", "wangzhe"):
        turns = json.loads((DEV / "calls_zh" / f"{name}.json").read_text(encoding="utf-8"))["turns"]
        used_text |= {_norm(t["text"]) for t in turns if t["role"] == "agent"}
    used_ids = set()
    for truth in (SAMPLES / "truth").glob("*.json"):
        for t in json.loads(truth.read_text(encoding="utf-8"))["turns"]:
            if str(t.get("source", "")).startswith("magicdata:"):
                used_ids.add(t["source"].split(":")[1])
    free = []
    for folder in ("zh_customer_service_finance", "zh_customer_service_general"):
        for line in (SHARED_AUDIO / folder / "transcripts.tsv").read_text(encoding="utf-8").splitlines():
            if "\t" not in line:
                continue
            utt, text = line.split("\t", 1)
            if utt not in used_ids and _norm(text) not in used_text:
                free.append(SHARED_AUDIO / folder / f"{utt}.wav")
    return sorted(free)[-n:]  # the last lines: the stitched one-voice test uses the first ones


# --- scoring ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CallScore:
    name: str
    voiceprint: bool
    n_true: int
    n_chosen: int
    der: float | None  # collar 0
    der_collar: float | None  # collar 0.25 s
    role_accuracy: float | None  # share of word time whose role is right
    role_method: str
    role_confidence: float
    similarity: dict | None  # voiceprint similarity per speaker, when one was used
    speakers_seconds: float  # diarization (+ voiceprint matching) time
    audio_seconds: float
    der_parts: tuple[float, float] | None = None  # (error s, reference speech s) at the 0.25 s collar: pooled DER


def role_accuracy(transcript, word_speakers, roles: dict, truth: list[dict]) -> float | None:
    """Share of speech time (word durations) given the right role; words whose midpoint falls
    in exactly one truth role are scored, so voice activity misses do not count twice."""
    right, total = role_time(transcript, word_speakers, roles, truth)
    return right / total if total else None


def role_time(transcript, word_speakers, roles: dict, truth: list[dict]) -> tuple[float, float]:
    """(seconds given the right role, seconds scored): `role_accuracy` before the division."""
    right = total = 0.0
    starts = np.array([t["start"] for t in truth])
    for word, speaker in zip(transcript.words, word_speakers):
        mid = (word.start + word.end) / 2
        near = [t["role"] for t in truth[max(0, int(np.searchsorted(starts, mid)) - 40):]
                if t["start"] - 0.2 <= mid <= t["end"] + 0.2]
        if len(set(near)) != 1:
            continue
        duration = min(max(word.end - word.start, 0.02), 1.0)  # longer "words" are timestamp artefacts
        total += duration
        right += duration * (roles.get(speaker or "", "unknown") == near[0])
    return right, total


ENROL_TEXT_EN = ("Good morning, this is the enrolment recording for the quality team. I am reading a short "
                 "passage so the system can learn my voice. The weather today is mild with some rain in "
                 "the afternoon. Our branch opens at nine and closes at five on weekdays. Please remember "
                 "to lock the office and switch off the lights when you leave in the evening.")


def enrolment_voiceprint(agent_id: str, store):
    """Enrol `agent_id` from other audio of that agent (into a scratch `Store`)."""
    import soundfile as sf

    from pipeline.speakers.voiceprints import enrol

    wav = CACHE / "audio" / f"enrol-{agent_id}.wav"
    if agent_id == "espeak-en-us+f2" and not wav.exists():
        # The English sample calls' agent voice (scripts/make_samples.py), saying other words.
        wav.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["espeak-ng", "-v", "en-us+f2", "-s", "150", "-p", "35", "-w", str(wav), ENROL_TEXT_EN],
                       check=True)
    if agent_id not in ("magicdata-cs", "espeak-en-us+f2"):
        return None
    if not wav.exists():
        wav.parent.mkdir(parents=True, exist_ok=True)
        pause = np.zeros(int(0.3 * SAMPLE_RATE), np.float32)
        sf.write(wav, np.concatenate([x for p in magicdata_enrolment() for x in (decode(p).mono(), pause)]),
                 SAMPLE_RATE)
    return enrol(store, agent_id, wav)


def score_call(call: EvalCall, voiceprint=None, diarization_cache: dict | None = None) -> CallScore:
    import time

    from evaluation.metrics import diarization_error_parts, diarization_error_rate
    from pipeline.records import CallMetadata, Recording, join_words, label_channel
    from pipeline.run.serial import load_recognition
    from pipeline.speakers.align import assign_speakers
    from pipeline.speakers.diarize import diarize
    from pipeline.speakers.roles import assign_roles

    if call.codec:
        from evaluation.codecs import degraded

        audio = decode(degraded(call.path, call.codec))
    else:
        audio = decode(call.path)
    cache = diarization_cache if diarization_cache is not None else {}
    if call.label not in cache:
        start = time.perf_counter()
        cache[call.label] = (diarize(audio.samples), time.perf_counter() - start)
    diarization, diarize_seconds = cache[call.label]
    clock = time.perf_counter()
    truth = truth_turns(call)
    der = der_collar = accuracy = parts = None
    if truth is not None:
        der = diarization_error_rate(truth, diarization)
        der_collar = diarization_error_rate(truth, diarization, collar=0.25)
        parts = diarization_error_parts(truth, diarization, collar=0.25)
    rec = Recording(call.name, call.path, "", CallMetadata(call.name, agent_id=call.agent_id))
    transcript, _ = load_recognition(recognition_path(call))
    if diarization.method == "channels" and all(label_channel(s.speaker) is not None for s in transcript.segments):
        speakers = [s.speaker for s in transcript.segments for _ in s.words]
    else:
        speakers = assign_speakers(transcript.words, diarization)
    texts: dict[str, list[str]] = {}
    for word, speaker in zip(transcript.words, speakers):
        texts.setdefault(speaker or "", []).append(word.text)
    decision, evidence, _ = assign_roles(rec, audio, diarization, {k: join_words(v) for k, v in texts.items()},
                                         voiceprint)
    if truth is not None:
        accuracy = role_accuracy(transcript, speakers, decision.roles, truth)
    return CallScore(call.label, voiceprint is not None, call.n_speakers, diarization.n_speakers, der, der_collar,
                     accuracy, decision.method, decision.confidence,
                     evidence.get("voiceprint", {}).get("similarities"),
                     diarize_seconds + time.perf_counter() - clock, audio.duration, parts)


def evaluate(with_voiceprints: bool = True) -> list[CallScore]:
    import tempfile

    from pipeline.store import Store

    scores, cache = [], {}
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "scratch.duckdb") as store:
        prints = {}
        for call in eval_calls():
            if not recognition_path(call).exists():
                print(f"{call.name}: no stored recognition (run with --record first); skipped")
                continue
            scores.append(score_call(call, None, cache))
            if with_voiceprints and call.agent_id and call.layout == "mono":
                if call.agent_id not in prints:
                    prints[call.agent_id] = enrolment_voiceprint(call.agent_id, store)
                if prints[call.agent_id] is not None:
                    scores.append(score_call(call, prints[call.agent_id], cache))
    return scores


def codec_calls(codecs: list[str]) -> list[EvalCall]:
    """The mono dev calls with timed truth, each through every codec (evaluation/codecs.py); their
    stored recognition runs are the clean calls' (the codecs are measured on the speaker stages)."""
    return [replace(call, codec=codec) for call in eval_calls() if call.layout == "mono" and call.truth_kind != "count"
            for codec in codecs]


def codec_report(clean: list[CallScore], coded: list[CallScore], codecs: list[str]) -> str:
    """Count, pooled DER and roles per codec beside the same calls clean."""
    def summary(group: list[CallScore]) -> str:
        parts = [s.der_parts for s in group if s.der_parts]
        total = sum(t for _, t in parts)
        pooled = sum(e for e, _ in parts) / total if total else None
        roles = [s.role_accuracy for s in group if s.role_accuracy is not None]
        return (f"count right {sum(s.n_chosen == s.n_true for s in group)}/{len(group)}, pooled DER(0.25) "
                f"{_fmt(pooled)}, roles mean {_fmt(float(np.mean(roles)) if roles else None)} min "
                f"{_fmt(min(roles, default=None))}")
    names = {s.name.split(" [")[0] for s in coded}
    lines = [f"{'clean':14} {summary([s for s in clean if s.name in names and not s.voiceprint])}"]
    lines += [f"{codec:14} {summary([s for s in coded if s.name.endswith(f'[{codec}]')])}" for codec in codecs]
    lines.append("per call, DER(0.25) clean -> " + ", ".join(codecs) + ":")
    for name in sorted(names):
        base = next(s for s in clean if s.name == name and not s.voiceprint)
        row = [next(s for s in coded if s.name == f"{name} [{c}]") for c in codecs]
        lines.append(f"  {name:30} {_fmt(base.der_collar)} -> " + " ".join(
            f"{_fmt(s.der_collar)}({s.n_chosen})" for s in row))
    return "\n".join(lines)


def devset_report(folder: Path, codecs: list[str]) -> str:
    """Count and DER(0.25) on a dev set of calls kept outside the repository (manifest.json as in
    /work/devset: id, kind "call", path, n_speakers, half; truth.rttm beside each audio), clean and
    through `codecs`, by half."""
    from evaluation.codecs import degraded
    from evaluation.metrics import diarization_error_parts
    from pipeline.speakers.diarize import diarize

    calls = [r for r in json.loads((folder / "manifest.json").read_text(encoding="utf-8")) if r["kind"] == "call"]
    rows = []
    for r in calls:
        audio_path = folder / r["path"]
        truth = rttm_turns(audio_path.parent / "truth.rttm")
        for codec in [None, *codecs]:
            d = diarize(decode(degraded(audio_path, codec) if codec else audio_path).samples)
            rows.append((r["half"], codec or "clean", r["id"], r["n_speakers"], d.n_speakers,
                         diarization_error_parts(truth, d, collar=0.25)))
    lines = []
    for half in ("tune", "report"):
        for condition in ["clean", *codecs]:
            part = [x for x in rows if x[0] == half and x[1] == condition]
            err, total = sum(x[5][0] for x in part), sum(x[5][1] for x in part)
            lines.append(f"{half:6} {condition:13} count right {sum(x[3] == x[4] for x in part)}/{len(part)}, "
                         f"pooled DER(0.25) {_fmt(err / total if total else None)}")
    lines.append("per call (clean): " + ", ".join(f"{x[2]} {x[4]}/{x[3]} {_fmt(x[5][0] / max(x[5][1], 1e-9))}"
                                                   for x in rows if x[1] == "clean"))
    return "\n".join(lines)


def _fmt(x, pct=True):
    return "-" if x is None else (f"{100 * x:5.1f}%" if pct else f"{x}")


def report(scores: list[CallScore]) -> str:
    lines = [f"{'file':34} {'vp':3} {'count':>7} {'DER':>7} {'DER.25':>7} {'roles':>7} {'method':>10} "
             f"{'conf':>5} {'spk s/min':>9}  similarity to voiceprint"]
    for s in scores:
        sims = "" if not s.similarity else " ".join(f"{k}={v:.3f}" for k, v in s.similarity.items())
        lines.append(f"{s.name[:34]:34} {'yes' if s.voiceprint else 'no':3} {s.n_chosen:>3}/{s.n_true:<3} "
                     f"{_fmt(s.der):>7} {_fmt(s.der_collar):>7} {_fmt(s.role_accuracy):>7} {s.role_method:>10} "
                     f"{s.role_confidence:5.2f} {60 * s.speakers_seconds / s.audio_seconds:9.2f}  {sims}")
    base = [s for s in scores if not s.voiceprint]
    real = [s for s in base if not s.name.startswith(("en-", "zh-"))]
    lines.append("")
    for label, group in (("real dev calls", real), ("all files", base)):
        counted = [s for s in group]
        ders = [s.der_collar for s in group if s.der_collar is not None]
        lines.append(f"{label}: speaker count right {sum(s.n_chosen == s.n_true for s in counted)}/{len(counted)}; "
                     f"DER(0.25) mean {_fmt(float(np.mean(ders)) if ders else None)} max {_fmt(max(ders, default=None))}")
    for vp in (False, True):
        for label, group in (("real dev calls", [s for s in scores if s.voiceprint == vp and not s.name.startswith(("en-", "zh-"))]),
                             ("sample calls", [s for s in scores if s.voiceprint == vp and s.name.startswith(("en-", "zh-"))])):
            accs = [s.role_accuracy for s in group if s.role_accuracy is not None]
            if accs:
                lines.append(f"roles {'with' if vp else 'without'} voiceprint, {label}: mean {_fmt(float(np.mean(accs)))}"
                             f" min {_fmt(min(accs))} over {len(accs)} files")
    return "\n".join(lines)


def stage_share(path: Path, language: str | None = None) -> dict:
    """Whisper and the speaker stages on one recording, as the batch runs them: (speakers + align)
    seconds over transcription seconds (the issue's budget: at most 15 %)."""
    from pipeline.records import CallMetadata, Recording
    from pipeline.run.stages import process_recording
    from pipeline.speech.asr import EngineSpec

    rec = Recording(path.stem, path, "", CallMetadata(path.stem, language=language))
    timings = {t.stage: t.seconds for t in process_recording(rec, EngineSpec()).timings}
    return {**{k: round(v, 2) for k, v in timings.items()},
            "share": round((timings["speakers"] + timings["align"]) / timings["transcribe"], 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.eval_speakers", description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="run Whisper on files without a stored run (slow; nice it)")
    parser.add_argument("--record-again", action="store_true", help="record every dev call's run again, in place")
    parser.add_argument("--no-voiceprints", action="store_true")
    parser.add_argument("--stitched", action="store_true", help="also the count choice on stitched 1/2/3-voice calls")
    parser.add_argument("--codecs", nargs="*", metavar="CODEC",
                        help="also the mono dev calls through these codecs (none named: all; evaluation/codecs.py)")
    parser.add_argument("--devset", type=Path, metavar="DIR",
                        help="only: count and DER on a dev set of calls kept outside the repository (with --codecs too)")
    parser.add_argument("--time", metavar="FILE", help="only time Whisper vs the speaker stages on FILE (runs Whisper)")
    args = parser.parse_args(argv)
    if args.time:
        print(stage_share(Path(args.time)))
        return 0
    if args.devset:
        from evaluation.codecs import CODECS

        codecs = [] if args.codecs is None else (args.codecs or list(CODECS))
        print(devset_report(args.devset, codecs))
        return 0
    if args.record or args.record_again:
        for call in eval_calls():
            record_recognition(call, again=args.record_again)
    scores = evaluate(not args.no_voiceprints)
    print(report(scores))
    if args.codecs is not None:
        from evaluation.codecs import CODECS

        codecs = args.codecs or list(CODECS)
        coded = [score_call(call) for call in codec_calls(codecs) if recognition_path(call).exists()]
        print("\nspeaker stages through telephone and VoIP codecs (mono dev calls with timed truth):")
        print(codec_report(scores, coded, codecs))
    if args.stitched:
        from evaluation.metrics import diarization_error_rate
        from pipeline.speakers.diarize import diarize

        print("\nstitched calls (real voices, telephone channel): count chosen/true, DER(0.25)")
        for name, audio, truth, n in stitched_calls():
            d = diarize(audio[None, :])
            print(f"  {name:40} {d.n_speakers}/{n}  {_fmt(diarization_error_rate(truth, d, collar=0.25))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
