"""One live call read through Whisper leaks no number to anything a handler sees (no exact-text assertion)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from tests.pii import handler_texts, recover_digits


def _pii_call(tmp_path: Path, target: Path) -> Path:
    """A two-voice English call in which the customer reads out a card, a phone and an e-mail."""
    lines = [("en-us+f2", 55, "Thank you for calling Harbour Bank, how can I help you today?"),
             ("en-gb-x-rp+m3", 35, "My card number is 4111 1111 1111 1111 and it was blocked. I want it unblocked."),
             ("en-us+f2", 55, "I am sorry. Can you confirm your mobile number please?"),
             ("en-gb-x-rp+m3", 35, "It is 07700 900123, and my email is anna at gmail dot com.")]
    parts = []
    for i, (voice, pitch, text) in enumerate(lines):
        wav = tmp_path / f"l{i}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-w", str(wav), text], check=True)
        audio, rate = sf.read(wav, dtype="float32")
        parts += [audio, np.zeros(rate // 2, np.float32)]
    sf.write(target, np.concatenate(parts), rate)
    return target


def test_live_call_read_through_whisper_leaks_no_number(tmp_path):
    from pipeline.intake.ingest import discover
    from pipeline.run.execute import refresh_briefings, write_result
    from pipeline.run.stages import process_recording
    from pipeline.speech.asr import EngineSpec
    from pipeline.store import Store

    folder = tmp_path / "pii"
    folder.mkdir()
    _pii_call(tmp_path, folder / "pii-call.wav")
    (folder / "manifest.csv").write_text("call_id,file,customer_id\npii-1,pii-call.wav,C7777\n")
    result = process_recording(discover(folder).recordings[0], EngineSpec())
    assert result.status == "ok", result.error
    raw = recover_digits(" ".join(t.text for t in result.turns))
    assert len(raw) >= 20, raw  # Whisper heard most of the digits, however it wrote them
    with Store(tmp_path / "pii.duckdb") as store:
        write_result(store, result)
        refresh_briefings(store, [result])
        texts = handler_texts(store, [result.call_id])
    # Any 8 consecutive digits of the card or the phone would be a leak (the card's last 4 may stay).
    secrets = ["41111111", "11111111", "07700900", "77009001", "70090012", "00900123"]
    leaks = [(k, s) for k, v in texts.items() for s in secrets if s in recover_digits(v)]
    assert not leaks, leaks[:3]
