"""Stored recognition runs: what Whisper wrote and who spoke when, kept as JSON
(tests/recognition/*.json) so later stages replay on any CPU, whatever characters Whisper writes
there (int8 results differ by CPU).

`record` is the one writer: it stamps each run with the pipeline version, the CPU, the audio's
sha256 and the recognition settings it was made with. `stale` says why a stored run no longer
matches what it would be recorded as today (its audio changed, or the settings that shape
recognition did): tests fail on a stale run, and `python -m evaluation.recognition` records again.
`replay_call` decodes the real audio and runs every stage after recognition on a stored run.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from dataclasses import asdict, replace
from pathlib import Path

from evaluation.common import DEV, ROOT, SAMPLES
from pipeline.intake.audio import decode
from pipeline.intake.ingest import discover, sha256_file
from pipeline.records import Diarization, Transcript
from pipeline.run.execute import refresh_briefings, write_result
from pipeline.run.serial import load_recognition, save_recognition
from pipeline.run.stages import analyse_call
from pipeline.speakers.diarize import diarize
from pipeline.speakers.options import DiarizationOptions
from pipeline.speech.asr import EngineSpec, TranscribeOptions
from pipeline.speech.transcribe import SPLIT_SPEAKERS, transcribe_call
from pipeline.store import Store
from pipeline.version import __version__

RECOGNITION = ROOT / "tests" / "recognition"


def cpu() -> str:
    """What the int8 results depend on: the CPU's model name (x86_64 alone says too little)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{platform.machine()} {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def recognition_settings(spec: EngineSpec = EngineSpec(), options: TranscribeOptions = TranscribeOptions(),
                         diarization: DiarizationOptions = DiarizationOptions(), split: bool = SPLIT_SPEAKERS) -> str:
    """A short hash of what shapes a recognition run: the model, the decoding options, the
    speaker stage's options and whether speakers are transcribed apart."""
    speakers = asdict(diarization)
    if speakers.get("overlap_margin") is None:  # the overlap detector off is the speaker stage as it was
        speakers = {k: v for k, v in speakers.items() if not k.startswith("overlap_")}
    value = {"model": spec.model_id, "compute_type": spec.compute_type, "options": asdict(options),
             "diarization": speakers, "split": split}
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def record(path: Path, transcript: Transcript, diarization: Diarization, audio: Path | list[Path],
           settings: str, **about) -> None:
    """Store one recognition run, stamped with the pipeline version, the CPU, the sha256 of its
    audio file(s) and its recognition settings (`recognition_settings`)."""
    audio = audio if isinstance(audio, list) else [audio]
    save_recognition(path, transcript, diarization, pipeline_version=__version__, cpu=cpu(),
                     audio_sha256=[sha256_file(p) for p in audio], recognition_settings=settings, **about)


def about(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))["about"]


def stale(path: Path, audio: Path | list[Path], settings: str) -> list[str]:
    """Why the stored run at `path` no longer matches its audio and today's settings ([] when it does)."""
    stamps = about(path)
    audio = audio if isinstance(audio, list) else [audio]
    reasons = [f"no {key} stamp (recorded before the writer stamped runs)"
               for key in ("pipeline_version", "cpu", "audio_sha256", "recognition_settings") if key not in stamps]
    if "audio_sha256" in stamps and stamps["audio_sha256"] != [sha256_file(p) for p in audio]:
        reasons.append("its audio changed since it was recorded")
    if "recognition_settings" in stamps and stamps["recognition_settings"] != settings:
        reasons.append("the settings that shape recognition changed since it was recorded")
    return reasons


# --- the sample calls ---------------------------------------------------------------------------

def sample_settings() -> str:
    return recognition_settings()


def stored_ids() -> list[str]:
    """The sample calls with a stored recognition run (other runs, e.g. dev calls, live beside them)."""
    return sorted(p.stem for p in RECOGNITION.glob("*.json") if (SAMPLES / "truth" / f"{p.stem}.json").exists())


def sample_audio(call_id: str) -> Path:
    return next(p for p in SAMPLES.iterdir() if p.stem == call_id and p.suffix not in (".json", ".csv"))


def calls_zh_runs() -> list[tuple[Path, Path]]:
    """(stored run, audio) of the Mandarin dev calls (../shared/dev/calls_zh), recorded as calls are."""
    return [(path, DEV / "calls_zh" / f"{path.stem.removeprefix('calls_zh-')}.wav")
            for path in sorted(RECOGNITION.glob("calls_zh-*.json"))]


def stored_runs() -> list[tuple[Path, Path, str]]:
    """(stored run, its audio, the settings it is recorded with) for the runs recorded as the
    pipeline transcribes a call: the sample calls and ../shared/dev/calls_zh (when present). The
    dev runs of evaluation.eval_speakers (transcribed whole) are listed there."""
    runs = [(RECOGNITION / f"{c}.json", sample_audio(c), sample_settings()) for c in stored_ids()]
    return runs + [(path, audio, sample_settings()) for path, audio in calls_zh_runs() if audio.exists()]


def record_call(path: Path, audio_path: Path, call_id: str, language: str | None = None) -> None:
    """Record one call's run as the pipeline transcribes it today (this CPU)."""
    spec = EngineSpec()
    audio = decode(audio_path)
    options = replace(TranscribeOptions(), language=language) if language else TranscribeOptions()
    diarization = diarize(audio.samples)
    transcript = transcribe_call(audio, diarization, spec, options)
    record(path, transcript, diarization, audio_path, sample_settings(), call_id=call_id, model=spec.model_id)
    print(call_id, transcript.language, len(transcript.segments), "segments")


def record_samples(folder: Path = SAMPLES) -> None:
    """Record the sample calls' runs, and those of ../shared/dev/calls_zh, again."""
    for rec in discover(folder).recordings:
        record_call(RECOGNITION / f"{rec.call_id}.json", rec.path, rec.call_id, rec.metadata.language)
    for path, audio in calls_zh_runs():
        if audio.exists():
            record_call(path, audio, path.stem)


def replay_call(call_id: str, folder: Path = SAMPLES, scorer=None):
    """A sample call through every stage after recognition, on its stored run. `scorer`: the
    Whisper engine, to rescore loose vocabulary matches on the audio (none: correction by sound
    only, no Whisper at all)."""
    (rec,) = [r for r in discover(folder).recordings if r.call_id == call_id]
    audio = decode(rec.path)
    transcript, diarization = load_recognition(RECOGNITION / f"{call_id}.json")
    return analyse_call(replace(rec, duration=audio.duration), audio, diarization, transcript, scorer=scorer)


def replay_db(db_path: Path, call_ids: list[str] | None = None) -> Path:
    """A real DuckDB file holding the replayed sample calls and their customers' briefings."""
    results = [replay_call(c) for c in (call_ids or stored_ids())]
    with Store(db_path) as store:
        for result in results:
            write_result(store, result)  # as the run loop writes: the call's plot, then its rows
        refresh_briefings(store, results)
    return db_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check, or record again, the sample calls' stored recognition runs.")
    parser.add_argument("--record", action="store_true", help="record every sample call again (Whisper, this CPU)")
    args = parser.parse_args(argv)
    if args.record:
        record_samples()
    bad = 0
    for path, audio, settings in stored_runs():
        reasons = stale(path, audio, settings)
        bad += bool(reasons)
        print(f"{path.name}: {'stale: ' + '; '.join(reasons) if reasons else 'current'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
