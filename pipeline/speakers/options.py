"""How the speaker stage separates voices: one options object, read by the VAD, the embeddings
and the clustering backend alike."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DiarizationOptions:
    min_speakers: int = 1
    max_speakers: int = 3  # a call: one or two parties, a third (transfer, IVR, supervisor) at most
    window: float = 1.6  # resemblyzer's partial utterance length
    # Measured on the dev + sample calls: 0.8 gives the same DER as 0.6 (aws mix 12.3 vs 12.2 %,
    # en-2002 3.5 vs 4.4 %) for a quarter less embedding time; 0.4 gave no gain for 33 % more.
    hop: float = 0.8
    # One voice, not two, when the two halves of the best two-way split of n windows are at least
    # same_voice_similarity - same_voice_sampling / sqrt(n) alike (cosine of their mean embeddings).
    # The second term: halves of one voice differ by sampling noise, which shrinks as 1/sqrt(n).
    # Calibrated on one-voice recordings (split halves 0.69-0.97) against two-voice calls
    # (0.62-0.89), telephone band included; every two-voice call measured stays below the line by
    # 0.03 or more, so a call is called one voice only on clear evidence (docs/speakers.md).
    same_voice_similarity: float = 0.93
    same_voice_sampling: float = 0.2
    # A third speaker: all three voices of the three-way split unlike each other (every pair's
    # cosine of means below `third_voice_similarity`), and the smallest one talks for real.
    third_voice_similarity: float = 0.85
    third_min_seconds: float = 5.0
    third_min_share: float = 0.08
    # Viterbi resegmentation of the window labels: the cost of a speaker change, in units of
    # cosine similarity. On telephone audio two voices differ by only ~0.05-0.1 per window, so
    # the cost is small: it removes lone flips; measured on the dev calls, 0.15+ merged real turns.
    switch_penalty: float = 0.05
    min_segment: float = 0.6  # runs shorter than this are merged into a neighbour
    # Fine re-segmentation after clustering (`fine_resegment`); fine_window 0 turns it off.
    # 1 s windows every 0.25 s: 0.5 s windows were too noisy to score (real Mandarin call 8.3 ->
    # 17.9 % DER), 0.8 s every 0.4 s too coarse to place back-channels (docs/speakers.md).
    fine_window: float = 1.0
    fine_hop: float = 0.25
    mean_turn: float = 2.0  # seconds a speaker holds the floor on average, back-channels included
    fine_iterations: int = 1  # more re-fits measured: no change on the dev calls
    fine_min_segment: float = 0.3  # a back-channel ("mhm", "yes") lasts about this long
    # Overlapped speech (`overlap_segments`): a fine frame of speaker a is heard as a and b at once
    # when its embedding is closer to the mean embedding of a's audio mixed with b's (synthesised
    # from the call itself, `mixture_means`) than to a's own mean by more than `overlap_margin`
    # (cosine). None turns it off. 0.05: the lowest pooled DER(0.25) of a grid on the tune half of
    # the mono calls (evaluation/eval_overlap.py; docs/measurements.md, "Overlapped speech").
    # Off by default: it found one 0.75 s stretch of the dev calls' overlap (tune DER 10.96 -> 10.80,
    # report unchanged) for 128 more embeddings per mono call, and a found back-channel would count
    # as an interruption in the escalation score.
    overlap_margin: float | None = None
    OVERLAP_MARGIN = 0.05  # the calibrated margin, for a centre that switches it on
    overlap_mixtures: int = 64  # synthetic mixtures per ordered pair of speakers
    overlap_quieter_db: float = 10.0  # the second voice is mixed 0 to this many dB below the first
    vad_threshold: float = 0.5
    min_silence: float = 0.25
