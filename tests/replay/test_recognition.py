"""The stored recognition runs the replay tests and evaluations stand on are current: each is stamped
by the one writer (evaluation.recognition.record) with the pipeline version, the CPU, the sha256
of its audio and the settings that shaped it, and none is stale (its audio unchanged, its
settings those the pipeline records with today). A stale run fails here, not as a mysterious
change in a later stage: record again with `python -m evaluation.recognition --record` (and
`python -m evaluation.eval_speakers --record-again` for the dev calls)."""
import json

import pytest

from evaluation.eval_speakers import stored_dev_runs
from evaluation.recognition import RECOGNITION, about, recognition_settings, stale, stored_runs
from pipeline.speech.asr import TranscribeOptions
from tests.conftest import SHARED_DEV, needs_shared


def _name(run) -> str:
    return run[0].name


@pytest.mark.parametrize("run", stored_runs(), ids=_name)
def test_the_stored_runs_of_calls_are_current(run):
    path, audio, settings = run
    assert stale(path, audio, settings) == []


@needs_shared("dev")
@pytest.mark.parametrize("run", stored_dev_runs() if SHARED_DEV.exists() else [], ids=_name)
def test_the_stored_runs_of_the_dev_calls_are_current(run):
    path, audio, settings = run
    assert stale(path, audio, settings) == []


def test_every_stored_run_carries_the_writers_stamps():
    for path in RECOGNITION.glob("*.json"):
        stamps = about(path)
        assert {"pipeline_version", "cpu", "audio_sha256", "recognition_settings"} <= set(stamps), path.name
        assert all(len(h) == 64 for h in stamps["audio_sha256"]), path.name


def test_a_changed_audio_or_setting_makes_a_run_stale(tmp_path):
    path, audio, settings = stored_runs()[0]
    copy = tmp_path / audio.name
    copy.write_bytes(audio.read_bytes() + b"\0")  # one byte more: another recording
    assert stale(path, copy, settings) == ["its audio changed since it was recorded"]
    other = recognition_settings(options=TranscribeOptions(beam_size=1))
    assert other != settings
    assert stale(path, audio, other) == ["the settings that shape recognition changed since it was recorded"]
    unstamped = tmp_path / "old.json"
    payload = json.loads(path.read_text(encoding="utf-8"))
    payload["about"] = {"call_id": "x"}
    unstamped.write_text(json.dumps(payload), encoding="utf-8")
    assert "no audio_sha256 stamp (recorded before the writer stamped runs)" in stale(unstamped, audio, settings)
