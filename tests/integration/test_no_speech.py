"""A stereo call with no speech (a ringback tone) through the real VAD and Whisper is a failed call, not a crash."""
import subprocess

from pipeline.intake.ingest import discover


def test_stereo_ringback_with_no_speech_is_a_failed_call_not_a_crash(tmp_path, engine):
    from pipeline.intake.audio import decode
    from pipeline.run.stages import analyse_call
    from pipeline.speakers.diarize import diarize
    from pipeline.speech.asr import TranscribeOptions
    from pipeline.speech.streams import speaker_streams, transcribe_streams

    for name, hz in (("t1", 440), ("t2", 480)):
        subprocess.run(["sox", "-n", "-r", "8000", str(tmp_path / f"{name}.wav"), "synth", "20", "sine", str(hz)],
                       check=True)
    folder = tmp_path / "in"
    folder.mkdir()
    subprocess.run(["sox", "-M", str(tmp_path / "t1.wav"), str(tmp_path / "t2.wav"), str(folder / "ringback.wav")],
                   check=True)
    (rec,) = discover(folder).recordings
    audio = decode(rec.path)
    assert audio.channels == 2
    diarization = diarize(audio.samples)
    transcript = transcribe_streams(engine, speaker_streams(audio.samples, diarization), TranscribeOptions())
    assert transcript.segments == ()
    result = analyse_call(rec, audio, diarization, transcript)
    assert result.status == "failed" and "no speech" in result.error
