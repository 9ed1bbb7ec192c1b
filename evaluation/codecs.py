"""Telephone and VoIP codecs, simulated with ffmpeg: a recording as a bank's phone system or a
customer's calling app would have carried it. `make eval` scores the speaker stages on these
copies of the dev calls beside the clean ones (evaluation/eval_speakers.py --codecs).

- opus8, opus16: Opus at 8 and 16 kbit/s in its VoIP mode (calling apps);
- gsm: GSM 06.10 full rate at 8 kHz (mobile networks; ffmpeg here has no AMR-NB encoder);
- g726: G.726 ADPCM at 16 kbit/s, 8 kHz (old PBX trunks);
- narrowband: 300-3400 Hz at 8 kHz, mu-law (G.711 through a G.729-like band);
- opus16-loss5: opus16 with 5% of its 20 ms packets lost, at random (seeded), as silence.

Each copy goes back to 16 kHz mono PCM, cached under data/cache/codecs/.
"""
from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from evaluation.common import CACHE

# name -> (ffmpeg encoder arguments, container suffix)
CODECS: dict[str, tuple[list[str], str]] = {
    "opus8": (["-ar", "16000", "-c:a", "libopus", "-b:a", "8k", "-application", "voip"], ".ogg"),
    "opus16": (["-ar", "16000", "-c:a", "libopus", "-b:a", "16k", "-application", "voip"], ".ogg"),
    "gsm": (["-ar", "8000", "-c:a", "libgsm"], ".gsm"),
    "g726": (["-ar", "8000", "-c:a", "adpcm_g726", "-b:a", "16k"], ".wav"),
    "narrowband": (["-af", "highpass=f=300:poles=2,lowpass=f=3400:poles=2", "-ar", "8000", "-c:a", "pcm_mulaw"],
                   ".wav"),
    "opus16-loss5": (["-ar", "16000", "-c:a", "libopus", "-b:a", "16k", "-application", "voip"], ".ogg"),
}
PACKET_SECONDS = 0.02
LOSS = {"opus16-loss5": 0.05}


def degraded(path: Path, codec: str) -> Path:
    """`path` (any channels, mixed to mono) through `codec` and back: a 16 kHz mono WAV, cached."""
    args, suffix = CODECS[codec]
    recipe = f"{codec}|{' '.join(args)}|{LOSS.get(codec, 0.0)}"  # changed settings: a new copy
    key = hashlib.sha256(f"{path.resolve()}|{path.stat().st_size}|{recipe}".encode()).hexdigest()[:12]
    out = CACHE / "codecs" / f"{path.stem}-{codec}-{key}.wav"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        coded = Path(tmp) / f"coded{suffix}"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(path), "-ac", "1", *args,
                        str(coded)], check=True)
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(coded), "-ac", "1", "-ar",
                        "16000", "-c:a", "pcm_s16le", str(out.with_suffix(".tmp.wav"))], check=True)
    if codec in LOSS:
        samples, rate = sf.read(out.with_suffix(".tmp.wav"), dtype="float32")
        packet = int(PACKET_SECONDS * rate)
        lost = np.random.default_rng(int(key, 16) % 2**32).random(len(samples) // packet) < LOSS[codec]
        for k in np.flatnonzero(lost):
            samples[k * packet:(k + 1) * packet] = 0.0
        sf.write(out.with_suffix(".tmp.wav"), samples, rate, subtype="PCM_16")
    out.with_suffix(".tmp.wav").rename(out)
    return out
