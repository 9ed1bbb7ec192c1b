"""Store real recognition runs (transcript + diarization) of the sample calls as JSON test fixtures.

Tests of later stages (turns, escalation, summaries, briefings, masking, QA) replay these, so
they hold on any CPU: Whisper int8 writes different characters on different machines. Rerun
after a change to recognition or diarization: `.venv/bin/python scripts/record_recognition.py`.
"""
from __future__ import annotations

import platform
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.intake.audio import decode  # noqa: E402
from pipeline.intake.ingest import discover  # noqa: E402
from pipeline.run.serial import save_recognition  # noqa: E402
from pipeline.speakers.diarize import diarize  # noqa: E402
from pipeline.speech.asr import EngineSpec, TranscribeOptions  # noqa: E402
from pipeline.speech.transcribe import transcribe_call  # noqa: E402

OUT = ROOT / "tests" / "recognition"


def main(folder: Path = ROOT / "data" / "samples") -> None:
    spec = EngineSpec()
    for rec in discover(folder).recordings:
        audio = decode(rec.path)
        options = TranscribeOptions()
        if rec.metadata.language:
            options = replace(options, language=rec.metadata.language)
        diarization = diarize(audio.samples)
        transcript = transcribe_call(audio, diarization, spec, options)
        save_recognition(OUT / f"{rec.call_id}.json", transcript, diarization, call_id=rec.call_id,
                         sha256=rec.sha256, model=spec.model_id, cpu=platform.processor() or platform.machine())
        print(rec.call_id, transcript.language, len(transcript.segments), "segments")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "data" / "samples")
