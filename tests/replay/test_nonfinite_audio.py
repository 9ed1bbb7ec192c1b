"""A real call with inf/NaN samples goes through every stage after Whisper (stored recognition run)."""
import shutil

import numpy as np
import soundfile as sf

from tests.conftest import SAMPLES


def test_float_wav_with_inf_and_nan_is_cleaned_and_later_stages_run(tmp_path):
    """A real call written as float WAV with one inf and one NaN sample goes through every stage after
    Whisper (stored recognition run); librosa would raise on a non-finite buffer."""
    from evaluation.recognition import replay_call

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy2(SAMPLES / "manifest.csv", folder / "manifest.csv")
    samples, rate = sf.read(SAMPLES / "zh-1001-a.wav", dtype="float32")
    samples[16_000, 0], samples[48_000, 1] = np.inf, np.nan
    sf.write(folder / "zh-1001-a.wav", samples, rate, subtype="FLOAT")
    result = replay_call("zh-1001-a", folder)
    assert result.status == "ok", result.error
    assert result.escalation is not None and np.isfinite(result.escalation.call_score)
