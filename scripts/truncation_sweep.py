"""How often is a recording cut short caught? Real audio encoded by real ffmpeg into every accepted
container, cut at random byte offsets (fixed seed), decoded with pipeline.intake.audio.decode.

    .venv/bin/python scripts/truncation_sweep.py [cuts per file, default 25]
"""
from __future__ import annotations

import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.intake.audio import BadRecording, decode  # noqa: E402
from tests.encodings import ENCODINGS  # noqa: E402

SOURCES = {"telephone 8k mu-law": (ROOT.parent / "shared/dev/calls_zh/liuchanhg.wav", ["-ss", "30", "-t", "30"]),
           "stereo sample 16k": (ROOT / "data/samples/zh-1001-a.wav", ["-t", "30"])}


def main(cuts: int = 25) -> None:
    rng = random.Random(9)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'container':18} {'source':22} whole  cut caught")
        for kind, args in ENCODINGS.items():
            for label, (src, trim) in SOURCES.items():
                whole = Path(tmp) / f"whole.{kind}"
                subprocess.run(["ffmpeg", "-y", "-v", "error", "-i", str(src), *trim, *args, str(whole)], check=True)
                try:
                    decode(whole)
                    ok = "ok"
                except BadRecording as exc:
                    ok = f"REFUSED ({exc})"
                data, caught = whole.read_bytes(), 0
                for _ in range(cuts):
                    cut = Path(tmp) / f"cut.{kind}"
                    cut.write_bytes(data[: rng.randint(len(data) // 20, len(data) - len(data) // 200)])
                    try:
                        decode(cut)
                    except BadRecording:
                        caught += 1
                print(f"{kind:18} {label:22} {ok:5}  {caught}/{cuts}", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 25)
