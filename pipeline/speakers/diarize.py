"""Who spoke when: channel split for real stereo, diarization for mono.

Stereo call-centre recordings carry the agent and the customer on separate channels, so the
channel is the speaker. "Fake stereo" (the same signal on both channels) is treated as mono.
Mono calls are diarized: silero VAD finds speech, resemblyzer embeds 1.6 s windows of speech
only (L2-normalised) every `hop` seconds, and the count is chosen among 1, 2 and 3 speakers
(`choose_speaker_count`: two unless the audio shows otherwise; the evidence is kept). A Viterbi
pass over the windows with a cost per speaker change then re-segments, so short flips inside a
turn do not survive (telephone audio makes single windows noisy). The result converts to
`pyannote.core.Annotation` for scoring with pyannote.metrics.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from pipeline.intake.audio import SAMPLE_RATE
from pipeline.engines import Engines, or_default, silero_vad
from pipeline.records import channel_label


@dataclass(frozen=True)
class SpeakerSegment:
    start: float
    end: float
    speaker: str  # "ch0"/"ch1" for channel split, "spk0".. for clusters
    channel: int | None = None


@dataclass(frozen=True)
class Diarization:
    segments: tuple[SpeakerSegment, ...]
    method: str  # "channels" | "clustering" | "single"
    n_speakers: int
    # Why this many speakers (clustering): the figures each candidate count was judged on.
    evidence: dict = field(default_factory=dict)
    # Mean L2-normalised voice embedding per speaker label (clustering; used to match voiceprints).
    centroids: dict = field(default_factory=dict)

    def speakers(self) -> list[str]:
        return sorted({s.speaker for s in self.segments})

    def talk_time(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for s in self.segments:
            totals[s.speaker] = totals.get(s.speaker, 0.0) + s.end - s.start
        return totals

    def to_annotation(self, uri: str = "call"):
        from pyannote.core import Annotation, Segment

        annotation = Annotation(uri=uri)
        for i, seg in enumerate(self.segments):
            annotation[Segment(seg.start, seg.end), i] = seg.speaker
        return annotation


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
    # 0.03 or more, so a call is called one voice only on clear evidence (README "Speakers").
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
    # 17.9 % DER), 0.8 s every 0.4 s too coarse to place back-channels (README "Speakers").
    fine_window: float = 1.0
    fine_hop: float = 0.25
    mean_turn: float = 2.0  # seconds a speaker holds the floor on average, back-channels included
    fine_iterations: int = 1  # more re-fits measured: no change on the dev calls
    fine_min_segment: float = 0.3  # a back-channel ("mhm", "yes") lasts about this long
    vad_threshold: float = 0.5
    min_silence: float = 0.25


# --- voice activity -----------------------------------------------------------------------

def speech_regions(samples: np.ndarray, threshold: float = 0.5, min_silence: float = 0.25,
                   engines: Engines | None = None) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in a 16 kHz mono signal."""
    vad = or_default(engines).vad()
    stamps = silero_vad().get_speech_timestamps_sequence(
        np.ascontiguousarray(samples, dtype=np.float32), vad, sampling_rate=SAMPLE_RATE, threshold=threshold,
        min_silence_duration_ms=int(min_silence * 1000), speech_pad_ms=30, return_seconds=False)
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]


# --- stereo ---------------------------------------------------------------------------------

def is_fake_stereo(samples: np.ndarray, tolerance: float = 0.95) -> bool:
    """Both channels carry (nearly) the same signal: correlation above `tolerance`."""
    if samples.shape[0] < 2:
        return True
    left, right = samples[0], samples[1]
    if not np.any(left) or not np.any(right):
        return False  # one channel silent: a real two-channel recording with one side quiet
    return correlation(left, right) >= tolerance


def correlation(x: np.ndarray, y: np.ndarray, chunk: int = 1 << 20) -> float:
    """Pearson correlation of two long signals, summed chunk by chunk in float64: np.corrcoef
    would stack and centre float64 copies of both (1.8 GB for an hour at 16 kHz)."""
    n = min(len(x), len(y))
    sx = sy = sxx = syy = sxy = 0.0
    for i in range(0, n, chunk):
        a, b = x[i:i + chunk].astype(np.float64), y[i:i + chunk].astype(np.float64)
        sx, sy = sx + a.sum(), sy + b.sum()
        sxx, syy, sxy = sxx + a @ a, syy + b @ b, sxy + a @ b
    cov, vx, vy = sxy - sx * sy / n, sxx - sx * sx / n, syy - sy * sy / n
    return float(cov / np.sqrt(vx * vy)) if vx > 0 and vy > 0 else 0.0


def channel_diarization(samples: np.ndarray, options: DiarizationOptions = DiarizationOptions(),
                        engines: Engines | None = None) -> Diarization:
    engines = or_default(engines)
    # One thread per channel: the sequence VAD is fastest on one ONNX Runtime thread (its LSTM is
    # a chain of small steps; two intra-op threads measured slower), and the runs release the GIL,
    # so the channels take two cores (measured: 25-30% less time for a stereo call's VAD).
    with ThreadPoolExecutor(max_workers=min(samples.shape[0], os.cpu_count() or 1)) as pool:
        regions = list(pool.map(lambda ch: speech_regions(samples[ch], options.vad_threshold, options.min_silence,
                                                          engines), range(samples.shape[0])))
    segments = [SpeakerSegment(start, end, channel_label(ch), ch)
                for ch, found in enumerate(regions) for start, end in found]
    segments.sort(key=lambda s: s.start)
    return Diarization(tuple(segments), "channels", len({s.speaker for s in segments}))


# --- mono: embeddings + clustering ---------------------------------------------------------

EMBED_BATCH = 256  # windows per encoder call


def window_embeddings(samples: np.ndarray, regions: list[tuple[float, float]], options: DiarizationOptions,
                      window: float | None = None, hop: float | None = None, mel: np.ndarray | None = None,
                      engines: Engines | None = None, max_windows: int | None = None):
    """Centres (s) and L2-normalised 256-d embeddings of `window`-second windows every `hop` seconds
    inside speech regions (the options' window and hop unless given); with `max_windows`, only
    that many, spread evenly, are embedded."""
    import torch
    from resemblyzer import audio as rz_audio, hparams

    window = options.window if window is None else window
    hop = options.hop if hop is None else hop
    if mel is None:
        mel = rz_audio.wav_to_mel_spectrogram(samples)  # (frames, 40), 10 ms frames
    frames_per_s = 1000 / hparams.mel_window_step
    width = int(round(window * frames_per_s))
    centres, slices = [], []
    for start, end in regions:
        points = np.arange(start + hop / 2, end, hop) if end - start > hop else [(start + end) / 2]
        for centre in points:
            # The window stays inside its region where it can, so it hears one turn.
            lo = int(max(start, min(centre - window / 2, end - window)) * frames_per_s)
            lo = max(0, min(lo, len(mel) - width))
            slices.append(mel[lo: lo + width])
            centres.append(float(centre))
    if not slices:
        return np.zeros(0), np.zeros((0, 256), dtype=np.float32)
    if max_windows is not None and len(slices) > max_windows:
        keep = np.linspace(0, len(slices) - 1, max_windows).round().astype(int)
        slices, centres = [slices[k] for k in keep], [centres[k] for k in keep]
    engines = or_default(engines)
    encoder = engines.encoder()
    embeds = []
    # In batches: the LSTM keeps every step's output of a batch (windows x frames x 256 floats),
    # which for all the windows of an hour's call would be GBs.
    for first in range(0, len(slices), EMBED_BATCH):
        chunk = slices[first:first + EMBED_BATCH]
        batch = np.zeros((len(chunk), width, mel.shape[1]), dtype=np.float32)  # short slices: zero-padded
        for k, piece in enumerate(chunk):
            batch[k, :len(piece)] = piece
        with engines.encoder_lock, torch.no_grad():
            embeds.append(encoder(torch.from_numpy(batch)).numpy())
    embeds = np.concatenate(embeds)
    return np.array(centres), embeds / np.linalg.norm(embeds, axis=1, keepdims=True)


def _refine(embeds: np.ndarray, labels: np.ndarray, rounds: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Move every window to its nearest cluster mean (cosine) until stable; (labels 0..k-1, means)."""
    for _ in range(rounds):
        means = _means(embeds, labels)
        new = np.argmax(embeds @ means.T, axis=1)
        _, new = np.unique(new, return_inverse=True)  # drop emptied clusters
        if np.array_equal(new, labels):
            break
        labels = new
    return labels, _means(embeds, labels)


def _means(embeds: np.ndarray, labels: np.ndarray) -> np.ndarray:
    means = np.stack([embeds[labels == k].mean(axis=0) for k in range(labels.max() + 1)])
    return means / np.linalg.norm(means, axis=1, keepdims=True)


def split_windows(embeds: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best k-way split: Ward linkage on unit vectors (it makes compact groups, where average
    linkage peeled off single odd windows as "speakers" on real calls), then refined."""
    from sklearn.cluster import AgglomerativeClustering

    if k <= 1 or len(embeds) <= k:
        labels = np.zeros(len(embeds), dtype=int)
        return labels, _means(embeds, labels)
    return _refine(embeds, AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(embeds))


def _silhouette(embeds: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import silhouette_score

    return float(silhouette_score(embeds, labels, metric="cosine")) if len(set(labels)) > 1 else 0.0


def choose_speaker_count(embeds: np.ndarray, options: DiarizationOptions,
                         bounds: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Labels, means and the evidence for 1, 2 or 3 speakers (within `bounds` when the manifest gives them).

    Two is the default (a call has two parties). One only when the best two-way split gives two
    halves that sound alike (calibrated `same_voice_similarity`). Three only when the three-way
    split gives three voices unlike each other, and the least heard talks for real.
    """
    lo, hi = bounds or (options.min_speakers, options.max_speakers)
    lo = max(1, lo)
    hi = max(lo, min(hi, 3))  # candidates are 1, 2 and 3
    seconds = len(embeds) * options.hop  # each window stands for about one hop of speech
    evidence: dict = {"bounds": [lo, hi], "windows": int(len(embeds))}
    two_labels, two_means = split_windows(embeds, 2)
    if two_labels.max() < 1:  # too few windows to split
        evidence |= {"chosen": 1, "reason": "too little speech to split"}
        return two_labels, two_means, evidence
    similarity = float(two_means[0] @ two_means[1])
    same_voice = options.same_voice_similarity - options.same_voice_sampling / np.sqrt(len(embeds))
    evidence["two"] = {"similarity": round(similarity, 3), "same_voice_above": round(float(same_voice), 3),
                       "silhouette": round(_silhouette(embeds, two_labels), 3),
                       "shares": [round(float(np.mean(two_labels == k)), 3) for k in range(2)]}
    if hi == 1 or (lo == 1 and similarity >= same_voice):
        labels = np.zeros(len(embeds), dtype=int)
        evidence |= {"chosen": 1, "reason": "manifest says one speaker" if hi == 1 else
                     f"the two halves of the best split sound alike (similarity {similarity:.3f} >= "
                     f"{same_voice:.3f})"}
        return labels, _means(embeds, labels), evidence
    chosen, labels, means = 2, two_labels, two_means
    reason = "two parties" if similarity < same_voice else "manifest says at least two speakers"
    if hi >= 3 and len(embeds) > 3:
        three_labels, three_means = split_windows(embeds, 3)
        if three_labels.max() == 2:
            sims = three_means @ three_means.T
            closest = float(max(sims[i, j] for i in range(3) for j in range(i + 1, 3)))
            third_s = float(np.bincount(three_labels).min()) * options.hop  # the smallest voice's talk
            evidence["three"] = {"silhouette": round(_silhouette(embeds, three_labels), 3),
                                 "closest_pair_similarity": round(closest, 3), "smallest_seconds": round(third_s, 1)}
            ok = (closest < options.third_voice_similarity
                  and third_s >= max(options.third_min_seconds, options.third_min_share * seconds))
            if ok or lo >= 3:
                chosen, labels, means = 3, three_labels, three_means
                reason = "manifest says three speakers" if not ok else \
                    f"three distinct voices (closest pair {closest:.2f}), the least heard {third_s:.0f} s"
    evidence |= {"chosen": chosen, "reason": reason}
    return labels, means, evidence


def resegment(embeds: np.ndarray, means: np.ndarray, region_of: np.ndarray, penalty: float) -> np.ndarray:
    """Viterbi over the windows: each window scores its cosine similarity to each speaker mean, and
    a change of speaker costs `penalty` (a third of it across a pause, where turns change), so a
    single odd window inside a turn does not flip the speaker."""
    n, k = len(embeds), len(means)
    if k < 2 or n < 2:
        return np.zeros(n, dtype=int) if k < 2 else np.argmax(embeds @ means.T, axis=1)
    switch = 1 - np.eye(k)
    same, across = -penalty * switch, -penalty / 3 * switch
    return best_path(embeds @ means.T, lambda t: same if region_of[t] == region_of[t - 1] else across)


def best_path(scores: np.ndarray, transition) -> np.ndarray:
    """Viterbi: the speaker sequence maximising the frames' scores (n, k) plus `transition(t)`,
    the (k, k) score of moving from speaker i (rows) to j (columns) into frame t."""
    n, k = scores.shape
    best = scores[0].copy()
    back = np.zeros((n, k), dtype=int)
    for t in range(1, n):
        total = best[:, None] + transition(t)
        back[t] = np.argmax(total, axis=0)
        best = total[back[t], np.arange(k)] + scores[t]
    path = np.empty(n, dtype=int)
    path[-1] = int(np.argmax(best))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def frame_log_likelihoods(embeds: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """log p(frame | speaker), (n, k): each frame is described by its cosine similarity to each
    speaker's mean embedding, and each speaker's frames by a Gaussian over that k-vector (shared
    covariance, as in LDA). The model is fitted on the frames themselves, so the scores are
    calibrated per call: how far apart two voices sound on this line, not a fixed threshold."""
    means = _means(embeds, labels)
    x = embeds @ means.T  # (n, k)
    centres = np.stack([x[labels == j].mean(axis=0) for j in range(k)])
    resid = x - centres[labels]
    cov = resid.T @ resid / max(len(x) - k, 1) + 1e-6 * np.eye(k)
    inv = np.linalg.inv(cov)
    diff = x[:, None, :] - centres[None, :, :]  # (n, k, k)
    return -0.5 * np.einsum("nki,ij,nkj->nk", diff, inv, diff)


def viterbi(loglik: np.ndarray, p_switch: float, new_region: np.ndarray) -> np.ndarray:
    """Most likely speaker path under an HMM: inside a speech region the speaker changes with
    probability `p_switch` per frame; across a pause (new_region[t]) anyone may speak next, so
    every speaker is equally likely (turns change at pauses)."""
    k = loglik.shape[1]
    inside = np.where(np.eye(k, dtype=bool), np.log(1 - p_switch), np.log(p_switch / (k - 1)))
    across = np.full((k, k), -np.log(k))
    return best_path(loglik, lambda t: across if new_region[t] else inside)


def fine_resegment(embeds: np.ndarray, labels: np.ndarray, region_of: np.ndarray,
                   options: DiarizationOptions) -> np.ndarray:
    """Re-segment short frames (`fine_window` s every `fine_hop` s) with an HMM whose speakers are
    Gaussians over the frames' similarity to each speaker (`frame_log_likelihoods`), re-fitted
    `fine_iterations` times (VB-HMM style). Overlapping windows hear the same audio, so each
    frame's evidence counts for fine_hop / fine_window of an independent one. A speaker change
    has the probability of a turn ending within one hop when turns last `mean_turn` seconds on
    average: a back-channel of real length survives, a one-frame flip does not."""
    k = int(labels.max()) + 1 if len(labels) else 0
    if k < 2 or len(embeds) < 2:
        return labels
    p_switch = min(0.5, options.fine_hop / options.mean_turn)
    weight = min(1.0, options.fine_hop / options.fine_window)
    for _ in range(options.fine_iterations):
        if min(np.bincount(labels, minlength=k)) < 2:
            break
        loglik = weight * frame_log_likelihoods(embeds, labels, k)
        new = viterbi(loglik, p_switch, np.r_[False, region_of[1:] != region_of[:-1]])
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


def nearest_index(sorted_points: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """For each query, the index of the nearest of `sorted_points` (ascending; the first on a tie).
    Not a queries x points distance matrix: an hour's call has ~10^4 of each."""
    right = np.clip(np.searchsorted(sorted_points, queries), 1, len(sorted_points) - 1)
    left = right - 1
    if len(sorted_points) == 1:
        return np.zeros(len(queries), dtype=int)
    return np.where(np.abs(queries - sorted_points[left]) <= np.abs(sorted_points[right] - queries), left, right)


def _segments_from_windows(regions, centres, labels, options) -> list[SpeakerSegment]:
    """Label each speech region's stretches by the nearest window, then merge short runs."""
    raw: list[list] = []
    for start, end in regions:
        inside = np.where((centres >= start) & (centres <= end))[0]
        if len(inside) == 0:
            continue
        bounds = [start] + [(centres[a] + centres[b]) / 2 for a, b in zip(inside, inside[1:])] + [end]
        for k, idx in enumerate(inside):
            label = int(labels[idx])
            if raw and raw[-1][2] == label and abs(raw[-1][1] - bounds[k]) < 1e-6:
                raw[-1][1] = bounds[k + 1]
            else:
                raw.append([bounds[k], bounds[k + 1], label])
    changed = True
    while changed and len(raw) > 1:  # fold the shortest too-short run into a neighbour
        changed = False
        shortest = min(range(len(raw)), key=lambda i: raw[i][1] - raw[i][0])
        if raw[shortest][1] - raw[shortest][0] < options.min_segment:
            i = shortest
            prev_gap = raw[i][0] - raw[i - 1][1] if i > 0 else np.inf
            next_gap = raw[i + 1][0] - raw[i][1] if i + 1 < len(raw) else np.inf
            j = i - 1 if prev_gap <= next_gap else i + 1
            raw[j] = [min(raw[i][0], raw[j][0]), max(raw[i][1], raw[j][1]), raw[j][2]]
            del raw[i]
            merged = [raw[0]]  # neighbours that now share a label become one run
            for seg in raw[1:]:
                if seg[2] == merged[-1][2] and seg[0] - merged[-1][1] < 0.5:
                    merged[-1][1] = seg[1]
                else:
                    merged.append(seg)
            raw, changed = merged, True
    return [SpeakerSegment(float(s), float(e), f"spk{lab}") for s, e, lab in raw]


def cluster_diarization(samples: np.ndarray, options: DiarizationOptions = DiarizationOptions(),
                        bounds: tuple[int, int] | None = None, engines: Engines | None = None) -> Diarization:
    from resemblyzer import audio as rz_audio

    engines = or_default(engines)
    regions = speech_regions(samples, options.vad_threshold, options.min_silence, engines)
    mel = rz_audio.wav_to_mel_spectrogram(samples)  # once: both passes window the same spectrogram
    centres, embeds = window_embeddings(samples, regions, options, mel=mel, engines=engines)
    if len(embeds) == 0:
        return Diarization((), "clustering", 0)
    labels, means, evidence = choose_speaker_count(embeds, options, bounds)
    region_of = np.searchsorted([start for start, _ in regions], centres, side="right")
    labels = resegment(embeds, means, region_of, options.switch_penalty)
    _, labels = np.unique(labels, return_inverse=True)
    if options.fine_window > 0 and labels.max() >= 1:
        fine_centres, fine_embeds = window_embeddings(samples, regions, options, options.fine_window,
                                                      options.fine_hop, mel, engines=engines)
        # Each frame starts from the label of the nearest coarse window.
        nearest = nearest_index(centres, fine_centres)
        fine_region_of = np.searchsorted([start for start, _ in regions], fine_centres, side="right")
        fine_labels = fine_resegment(fine_embeds, labels[nearest], fine_region_of, options)
        _, fine_labels = np.unique(fine_labels, return_inverse=True)
        segments = _segments_from_windows(regions, fine_centres, fine_labels,
                                          replace(options, min_segment=options.fine_min_segment))
        # The speaker means stay those of the long windows (voiceprints are matched against them).
        labels = fine_labels[nearest_index(fine_centres, centres)]
    else:
        segments = _segments_from_windows(regions, centres, labels, options)
    # Name speakers by first appearance, so spk0 is whoever spoke first.
    order: dict[str, str] = {}
    for seg in segments:
        order.setdefault(seg.speaker, f"spk{len(order)}")
    segments = [SpeakerSegment(s.start, s.end, order[s.speaker]) for s in segments]
    centroids = {}
    for k in range(int(labels.max()) + 1):
        if f"spk{k}" in order and np.any(labels == k):
            mean = embeds[labels == k].mean(axis=0)
            centroids[order[f"spk{k}"]] = [round(float(x), 5) for x in mean / np.linalg.norm(mean)]
    evidence["speakers_after_resegmentation"] = len(order)
    method = "clustering" if len(order) > 1 else "single"
    return Diarization(tuple(segments), method, len(order), evidence, centroids)


# --- optional pyannote.audio backend ---------------------------------------------------------

def pyannote_diarization(samples: np.ndarray, pipeline_ref: str, token: str | None = None) -> Diarization:
    """A pyannote.audio pretrained pipeline (local path, or hub name + token where there is internet).

    Optional: pyannote.audio needs torchaudio, which has no build for the pinned torch here.
    """
    os.environ["PYANNOTE_METRICS_ENABLED"] = "0"  # no telemetry: call recordings are confidential
    try:
        from pyannote.audio import Pipeline
    except Exception as exc:  # ImportError, or torchaudio failing inside it
        raise RuntimeError(
            "the pyannote diarization backend needs pyannote.audio with a matching torchaudio "
            f"(pip install pyannote.audio); it does not import here: {exc}") from exc
    import torch

    pipeline = Pipeline.from_pretrained(pipeline_ref, token=token)
    output = pipeline({"waveform": torch.from_numpy(samples[None].astype(np.float32)), "sample_rate": SAMPLE_RATE})
    annotation = getattr(output, "speaker_diarization", output)  # pyannote.audio 4 wraps it
    names: dict[str, str] = {}
    segments = []
    for turn, _, label in annotation.itertracks(yield_label=True):
        names.setdefault(label, f"spk{len(names)}")
        segments.append(SpeakerSegment(float(turn.start), float(turn.end), names[label]))
    return Diarization(tuple(segments), "pyannote", len(names))


def diarize(samples: np.ndarray, options: DiarizationOptions = DiarizationOptions(),
            speakers: tuple[int, int] | None = None, engines: Engines | None = None) -> Diarization:
    """Channels when the recording really is two-channel; otherwise clustering, or a pyannote.audio
    pipeline when the settings name one (`pyannote_pipeline`: path or hub name; `pyannote_token`,
    else HF_TOKEN), carried by `engines`.
    `speakers` = (min, max) from the manifest bounds the count the clustering may choose."""
    engines = or_default(engines)
    if samples.ndim == 2 and samples.shape[0] >= 2 and not is_fake_stereo(samples):
        return channel_diarization(samples, options, engines)
    mono = samples.mean(axis=0) if samples.ndim == 2 else samples
    if engines.pyannote_pipeline:
        return pyannote_diarization(mono, engines.pyannote_pipeline, engines.pyannote_token)
    return cluster_diarization(mono, options, speakers, engines)
