"""What the evaluation and bench modules share: where the data is, the sample calls' truth, a
telephone channel, this process's peak memory."""
from __future__ import annotations

import json
import resource
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from pipeline.intake.audio import SAMPLE_RATE, decode

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"
SHARED = ROOT.parent / "shared"
DEV = SHARED / "dev"
SHARED_AUDIO = SHARED / "audio"
CACHE = ROOT / "data" / "cache"
OUT = ROOT / "data" / "out"


def sample_truth(call_id: str) -> dict | None:
    """The script of a sample call (data/samples/truth), None for a recording without one."""
    path = SAMPLES / "truth" / f"{call_id}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def peak_mb() -> float:
    """This process's peak resident memory. VmHWM belongs to the address space, unlike
    ru_maxrss, which a spawned child inherits from its parent across fork + exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def telephone(path: Path, out: Path, normalise: bool = False) -> Path:
    """A telephone channel, as call centres store calls: 300-3400 Hz, 8 kHz mu-law (sox); with
    `normalise`, peak-normalised first (the recipe of ../shared/dev/calls_zh)."""
    effects = ["sinc", "300-3400"] + (["norm", "-1"] if normalise else [])
    subprocess.run(["sox", "-q", str(path), "-r", "8000", "-e", "mu-law", str(out), *effects], check=True)
    return out


def telephone_samples(samples: np.ndarray) -> np.ndarray:
    """`telephone` on 16 kHz samples, back at 16 kHz."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.wav"
        sf.write(src, samples, SAMPLE_RATE, subtype="FLOAT")
        return decode(telephone(src, Path(tmp) / "out.wav")).mono()
