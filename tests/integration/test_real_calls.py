"""Issue 10 targets on real telephone calls (../shared/dev), scored by evaluation.eval_speakers.

Real audio and real models (silero VAD, resemblyzer); words come from stored recognition runs
(tests/recognition/dev-*.json, written by `python -m evaluation.eval_speakers --record`), so the
role figures do not depend on the characters Whisper writes on this CPU.
"""
from __future__ import annotations

import pytest

from evaluation import eval_speakers as ev

pytestmark = pytest.mark.skipif(not ev.DEV.exists() or not ev.SHARED_AUDIO.exists(),
                                reason="../shared/dev or ../shared/audio not present")

REAL = ("aws_auto_repairs_49 (mono)", "aws_auto_repairs_49 (stereo)", "google_commercial",
        "calls_zh/liuchanhg", "calls_zh/wangzhe")


@pytest.fixture(scope="module")
def scores():
    """Each dev call scored once without a voiceprint and, where the agent has other audio, with one."""
    import tempfile
    from pathlib import Path

    from pipeline.store import Store

    calls = [c for c in ev.eval_calls() if c.name in REAL or c.name == "zh-1001-b"]
    out, cache = {}, {}
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "scratch.duckdb") as store:
        voiceprint = ev.enrolment_voiceprint("magicdata-cs", store)
        for call in calls:
            out[(call.name, False)] = ev.score_call(call, None, cache)
            if call.agent_id == "magicdata-cs" and call.layout == "mono":
                out[(call.name, True)] = ev.score_call(call, voiceprint, cache)
    return out


def test_speaker_count_is_two_on_every_real_two_person_call(scores):
    chosen = {name: scores[(name, False)].n_chosen for name in REAL}
    assert all(n == 2 for n in chosen.values()), chosen  # target: right on >= 9 in 10


@pytest.mark.parametrize("name", ["calls_zh/liuchanhg", "calls_zh/wangzhe", "aws_auto_repairs_49 (stereo)"])
def test_der_with_collar_within_target(scores, name):
    assert scores[(name, False)].der_collar <= 0.12


def test_der_on_the_real_mono_mix_within_target(scores):
    # Target 12 %. Measured 8.9 % with the fine re-segmentation (1 s frames every 0.25 s), 12.3 %
    # without it; what is left is mostly overlapped speech (one speaker per frame here).
    # Before the speaker-count change: 38.4 % with 3 speakers found.
    assert scores[("aws_auto_repairs_49 (mono)", False)].der_collar <= 0.12


def test_fine_resegmentation_places_short_turns_the_coarse_windows_miss():
    """The same call diarized with and without the fine pass: the fine pass must lower the
    speaker confusion on the real mono mix (back-channels inside the other's turn), not just
    move boundaries."""
    from dataclasses import replace

    from pyannote.metrics.diarization import DiarizationErrorRate

    from evaluation.metrics import reference_annotation
    from pipeline.intake.audio import decode
    from pipeline.speakers.backends.clustering import cluster_diarization
    from pipeline.speakers.options import DiarizationOptions

    call = next(c for c in ev.eval_calls() if c.name == "aws_auto_repairs_49 (mono)")
    samples = decode(call.path).mono()
    reference = reference_annotation(ev.truth_turns(call))
    confusion = {}
    for fine_window in (0.0, DiarizationOptions().fine_window):
        d = cluster_diarization(samples, replace(DiarizationOptions(), fine_window=fine_window))
        detail = DiarizationErrorRate(collar=0.25)(reference, d.to_annotation(), detailed=True)
        confusion[fine_window] = detail["confusion"] / detail["total"]
    coarse, fine = confusion[0.0], confusion[DiarizationOptions().fine_window]
    assert fine < coarse - 0.01, confusion


@pytest.mark.parametrize("name", ["aws_auto_repairs_49 (mono)", "aws_auto_repairs_49 (stereo)",
                                  "calls_zh/liuchanhg", "calls_zh/wangzhe"])
def test_roles_without_voiceprint(scores, name):
    s = scores[(name, False)]
    assert s.role_accuracy >= 0.90, (name, s.role_accuracy, s.role_method, s.role_confidence)


@pytest.mark.parametrize("name", ["calls_zh/liuchanhg", "calls_zh/wangzhe", "zh-1001-b"])
def test_roles_with_a_voiceprint_enrolled_from_other_audio(scores, name):
    s = scores[(name, True)]
    assert s.role_method == "voiceprint" and s.role_accuracy >= 0.95
    # The agent's similarity clears the calibrated threshold; the customer's does not.
    from pipeline.speakers.voiceprints import MATCH_THRESHOLD

    sims = sorted(s.similarity.values())
    assert sims[-1] >= MATCH_THRESHOLD > sims[0]


def test_sample_call_figures_do_not_get_worse(scores):
    s = scores[("zh-1001-b", False)]
    assert s.n_chosen == 2 and s.der <= 0.08 and s.role_accuracy >= 0.99



def _overlapped(diarization) -> list[tuple[float, float]]:
    """Stretches where two speakers' segments intersect."""
    segs = sorted(diarization.segments, key=lambda s: s.start)
    return [(max(a.start, b.start), min(a.end, b.end)) for i, a in enumerate(segs) for b in segs[i + 1:]
            if a.speaker != b.speaker and min(a.end, b.end) > max(a.start, b.start)]


def test_overlapped_speech_on_the_real_mono_mix_gets_both_speakers_and_each_word_once():
    """The aws call's two sides were recorded apart, so where both files have speech the mix has two
    voices at once. The detector must give such a stretch both speakers (measured: 195.8-196.6 s,
    all inside the truth's overlap), add nothing where only one side talks, and the words still go
    to one speaker each: the stretch's audio is in one speaker's stream for Whisper, and each
    stored word goes to one speaker."""
    from pyannote.core import Segment

    from evaluation.metrics import reference_annotation
    from pipeline.intake.audio import decode
    from pipeline.run.serial import load_recognition
    from pipeline.speakers.align import assign_speakers, build_turns
    from pipeline.speakers.diarize import diarize
    from pipeline.speakers.options import DiarizationOptions
    from pipeline.speech.streams import speaker_streams

    call = next(c for c in ev.eval_calls() if c.name == "aws_auto_repairs_49 (mono)")
    audio = decode(call.path)
    diarization = diarize(audio.samples, DiarizationOptions(overlap_margin=DiarizationOptions.OVERLAP_MARGIN))
    both = _overlapped(diarization)
    assert sum(hi - lo for lo, hi in both) >= 0.5, both
    streams = speaker_streams(audio.samples, diarization)
    for lo, hi in both:
        mid = (lo + hi) / 2
        holders = [s.speaker for s in streams for a, n in zip(s.recording_starts, s.lengths) if a <= mid <= a + n]
        assert len(holders) == 1, (lo, hi, holders)
    truth_overlap = reference_annotation(ev.truth_turns(call)).get_overlap().support()
    inside = sum(s.duration for lo, hi in both for s in truth_overlap.crop(Segment(lo, hi)))
    assert inside >= 0.8 * sum(hi - lo for lo, hi in both), (both, inside)
    transcript, _ = load_recognition(ev.recognition_path(call))
    speakers = assign_speakers(transcript.words, diarization)
    assert len(speakers) == len(transcript.words) and all(speakers)
    turns = build_turns(transcript.words, speakers, {}, "en")
    assert sum(len(t.words) for t in turns) == len(transcript.words)
    in_overlap = [w for w in transcript.words if any(lo <= (w.start + w.end) / 2 <= hi for lo, hi in both)]
    assert sum(w in t.words for t in turns for w in in_overlap) == len(in_overlap)


def test_no_overlap_is_found_on_a_call_whose_turns_never_overlap():
    """calls_zh/liuchanhg is stitched with 0.3-0.8 s gaps between turns: no stretch has two voices."""
    from pipeline.intake.audio import decode
    from pipeline.speakers.diarize import diarize
    from pipeline.speakers.options import DiarizationOptions

    call = next(c for c in ev.eval_calls() if c.name == "calls_zh/liuchanhg")
    on = DiarizationOptions(overlap_margin=DiarizationOptions.OVERLAP_MARGIN)
    assert _overlapped(diarize(decode(call.path).samples, on)) == []
