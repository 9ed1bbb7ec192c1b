"""Later stages on a stored recognition run (tests/recognition/*.json, from scripts/record_recognition.py).

`replay_call` decodes the real sample audio and runs everything after Whisper on the stored
transcript and diarization: the same code path as production, minus the CPU-dependent characters.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECOGNITION = ROOT / "tests" / "recognition"
SAMPLES = ROOT / "data" / "samples"


def stored_ids() -> list[str]:
    """The sample calls with a stored recognition run (other runs, e.g. dev calls, live beside them)."""
    return sorted(p.stem for p in RECOGNITION.glob("*.json") if (SAMPLES / "truth" / f"{p.stem}.json").exists())


def replay_call(call_id: str, folder: Path = SAMPLES, scorer=None):
    """`scorer`: the Whisper engine, to rescore loose vocabulary matches on the audio (none:
    correction by sound only, no Whisper at all)."""
    from pipeline.intake.audio import decode
    from pipeline.intake.ingest import discover
    from pipeline.run.serial import load_recognition
    from pipeline.run.stages import analyse_call

    (rec,) = [r for r in discover(folder).recordings if r.call_id == call_id]
    audio = decode(rec.path)
    transcript, diarization = load_recognition(RECOGNITION / f"{call_id}.json")
    from dataclasses import replace

    return analyse_call(replace(rec, duration=audio.duration), audio, diarization, transcript, scorer=scorer)


def replay_db(db_path: Path, call_ids: list[str] | None = None) -> Path:
    """A real DuckDB file holding the replayed sample calls and their customers' briefings."""
    from pipeline.run.execute import refresh_briefings, write_result
    from pipeline.store import Store

    results = [replay_call(c) for c in (call_ids or stored_ids())]
    with Store(db_path) as store:
        for result in results:
            write_result(store, result)  # as the run loop writes: the call's plot, then its rows
        refresh_briefings(store, results)
    return db_path
