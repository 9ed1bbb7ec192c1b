"""The engines object (loaded models passed down, not process-global), settings choosing the model
cache, and a long call's progress reported while it is transcribed."""
import subprocess
import sys

import pytest

from pipeline.config.settings import load_settings
from pipeline.engines import EngineConfig, Engines
from pipeline.speakers.embeddings import voice_encoder
from pipeline.speakers.vad import vad_model
from pipeline.speech.asr import EngineSpec
from pipeline.speech.transcribe import load_engine
from tests.conftest import ROOT, SAMPLES


def test_each_engines_object_loads_its_own_models_once():
    first, second = Engines(), Engines()
    assert vad_model(first) is vad_model(first) and voice_encoder(first) is voice_encoder(first)
    # No process-wide cache behind them: another entry point (or test) gets its own models.
    assert vad_model(first) is not vad_model(second) and voice_encoder(first) is not voice_encoder(second)


def test_threads_sharing_an_engines_object_load_whisper_once():
    from concurrent.futures import ThreadPoolExecutor

    engines = Engines()
    with ThreadPoolExecutor(max_workers=2) as pool:
        loaded = list(pool.map(lambda _: load_engine(EngineSpec(), engines), range(2)))
    assert loaded[0] is loaded[1]
    assert load_engine(EngineSpec(cpu_threads=1), engines) is not loaded[0]  # another spec, another model


def test_the_model_cache_comes_from_the_settings_with_an_env_override(tmp_path):
    # The override is read when the settings are built, and the engine assembles the offline
    # model into that folder (not into the checkout's data/models).
    settings = load_settings(environ={"CALLBRIEF_MODEL_CACHE": str(tmp_path / "models")})
    assert settings.model_cache_dir == tmp_path / "models"
    engines = Engines.from_settings(settings)
    engine = load_engine(EngineSpec(), engines)
    assert engine.model_id == "faster-whisper:base"
    assert (tmp_path / "models" / "faster-whisper-base" / ".verified").is_file()
    # Defaults: from this checkout, its data/models (where `make setup` put the model).
    assert load_settings(environ={}).model_cache_dir == ROOT / "data" / "models"


def test_importing_the_pipeline_reads_no_environment(tmp_path):
    # Setting the variables after import must be what counts: nothing was frozen at import.
    code = ("import os, pipeline.speech.weights, pipeline.speech.transcribe, pipeline.speakers.diarize, pipeline.run.execute\n"
            "from pipeline.config.settings import load_settings\n"
            f"os.environ['CALLBRIEF_MODEL_CACHE'] = {str(tmp_path)!r}\n"
            "print(load_settings().model_cache_dir)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}, check=True)
    assert out.stdout.strip() == str(tmp_path)


def test_engine_config_keeps_the_token_out_of_its_repr():
    config = EngineConfig(pyannote_pipeline="local/pipeline", pyannote_token="hf_secret")
    assert "hf_secret" not in repr(config)
    assert EngineConfig.from_settings(load_settings(environ={"HF_TOKEN": "hf_x"})).pyannote_token == "hf_x"


@pytest.fixture(scope="module")
def long_call(tmp_path_factory):
    """The four sample calls one after the other as one mono recording (about 3-4 minutes)."""
    folder = tmp_path_factory.mktemp("long")
    inputs = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".wav", ".flac", ".mp3", ".ogg"))
    args = ["ffmpeg", "-v", "error", "-y"]
    for p in inputs:
        args += ["-i", str(p)]
    chain = "".join(f"[{i}:a]aformat=sample_rates=16000:channel_layouts=mono[a{i}];" for i in range(len(inputs)))
    chain += "".join(f"[a{i}]" for i in range(len(inputs))) + f"concat=n={len(inputs)}:v=0:a=1[out]"
    subprocess.run(args + ["-filter_complex", chain, "-map", "[out]", str(folder / "long-call.wav")], check=True)
    return folder


def test_a_long_call_reports_progress_while_it_is_transcribed(long_call):
    from pipeline.intake.ingest import discover
    from pipeline.run.stages import process_recording

    (rec,) = discover(long_call).recordings
    seen = []
    result = process_recording(rec, EngineSpec(), engines=Engines(),
                               on_progress=lambda r, seconds: seen.append((r.call_id, r.duration, seconds)))
    assert result.status == "ok", result.error
    duration = result.recording.duration
    assert duration > 150
    positions = [s for _, _, s in seen]
    # Several reports during the call (one per decoded segment), always forward, ending near the end.
    assert len(positions) >= 5
    assert all(b > a for a, b in zip(positions, positions[1:]))
    assert 0 < positions[0] < duration / 2
    assert 0.8 * duration <= positions[-1] <= duration
    assert {(c, d) for c, d, _ in seen} == {(rec.call_id, duration)}  # the duration is known to the listener
