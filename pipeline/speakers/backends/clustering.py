"""The speaker stage's own mono backend: resemblyzer windows over speech, a count of 1, 2 or 3
voices chosen on calibrated evidence, Viterbi re-segmentation, then a finer pass that places
back-channels (docs/speakers.md)."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from pipeline.engines import Engines, or_default
from pipeline.intake.audio import SAMPLE_RATE
from pipeline.records import Diarization, SpeakerSegment
from pipeline.speakers.embeddings import embed_mels, window_embeddings
from pipeline.speakers.options import DiarizationOptions
from pipeline.speakers.vad import speech_regions


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
    from sklearn.cluster import AgglomerativeClustering  # heavy: loaded by the first mono call that clusters voices

    if k <= 1 or len(embeds) <= k:
        labels = np.zeros(len(embeds), dtype=int)
        return labels, _means(embeds, labels)
    return _refine(embeds, AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(embeds))


def _silhouette(embeds: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.metrics import silhouette_score  # heavy: loaded by the first mono call that clusters voices

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


def mixture_means(samples: np.ndarray, centres: np.ndarray, labels: np.ndarray, segments: list[SpeakerSegment],
                  window: float, options: DiarizationOptions, engines: Engines | None = None) -> dict:
    """{(a, b): the unit mean embedding of speaker a's audio with speaker b's added}, from the call
    itself: `overlap_mixtures` pairs of `window`-second clips that lie wholly inside one speaker's
    segment, each scaled to unit power, b's 0 to `overlap_quieter_db` dB below a's (a back-channel
    is quieter than the turn it rides on). An embedding of two voices is not the sum of their
    embeddings, so the mixture is heard, not computed. Seeded: the same call gives the same means."""
    from resemblyzer import audio as rz_audio  # heavy (torch): loaded when a model first runs
    from resemblyzer import hparams

    half = window / 2
    whole = [[] for _ in range(int(labels.max()) + 1)]
    for t, c in enumerate(centres):
        own = f"spk{labels[t]}"
        if any(s.speaker == own and s.start <= c - half and c + half <= s.end for s in segments):
            whole[labels[t]].append(float(c))
    rng = np.random.default_rng(0)
    width = int(window * SAMPLE_RATE)
    out = {}
    for a, clips_a in enumerate(whole):
        for b, clips_b in enumerate(whole):
            if a == b or len(clips_a) < 2 or len(clips_b) < 2:
                continue
            mels = []
            for _ in range(options.overlap_mixtures):
                x, y = (samples[int((rng.choice(cs) - half) * SAMPLE_RATE):][:width] for cs in (clips_a, clips_b))
                x, y = x / (np.sqrt(np.mean(x ** 2)) + 1e-9), y / (np.sqrt(np.mean(y ** 2)) + 1e-9)
                mix = x + 10 ** (-rng.uniform(0, options.overlap_quieter_db) / 20) * y
                mels.append(rz_audio.wav_to_mel_spectrogram((0.5 * mix / np.abs(mix).max()).astype(np.float32)))
            mean = embed_mels(mels, int(round(window * 1000 / hparams.mel_window_step)), engines).mean(axis=0)
            out[(a, b)] = mean / np.linalg.norm(mean)
    return out


def overlap_frames(embeds: np.ndarray, labels: np.ndarray, mixtures: dict) -> tuple[np.ndarray, np.ndarray]:
    """For each frame: the other speaker whose voice, mixed into the frame's own, sounds most like
    the frame, and by how much (cosine to the mixture's mean minus cosine to the frame's own mean).
    A frame of one voice sits nearer its own mean (negative gain); a frame of two voices nearer
    the mixture's."""
    means = _means(embeds, labels)
    own = np.einsum("nd,nd->n", embeds, means[labels])
    other = np.zeros(len(embeds), dtype=int)
    gain = np.full(len(embeds), -np.inf)
    for (a, b), mix in mixtures.items():
        score = np.where(labels == a, embeds @ mix - own, -np.inf)
        better = score > gain
        other[better], gain[better] = b, score[better]
    return other, gain


def overlap_segments(centres: np.ndarray, embeds: np.ndarray, labels: np.ndarray, mixtures: dict,
                     segments: list[SpeakerSegment], hop: float, options: DiarizationOptions) -> list[SpeakerSegment]:
    """Second-speaker segments over overlapped speech: frames whose `overlap_frames` gain exceeds
    `overlap_margin`. Each flagged frame stands for its hop around its centre, clipped to its own
    speaker's segment (the second voice is only added where speech was found); runs shorter than
    `fine_min_segment` are dropped. `labels` name speakers "spk{k}"."""
    if options.overlap_margin is None or not mixtures:
        return []
    other, gain = overlap_frames(embeds, labels, mixtures)
    runs: list[list] = []
    for t in np.where(gain > options.overlap_margin)[0]:
        c, own, second = float(centres[t]), f"spk{labels[t]}", f"spk{other[t]}"
        home = next((s for s in segments if s.speaker == own and s.start <= c <= s.end), None)
        if home is None:
            continue
        lo, hi = max(home.start, c - hop / 2), min(home.end, c + hop / 2)
        if runs and runs[-1][2] == second and lo <= runs[-1][1] + 1e-6:
            runs[-1][1] = max(runs[-1][1], hi)
        else:
            runs.append([lo, hi, second])
    return [SpeakerSegment(lo, hi, who, overlap=True) for lo, hi, who in runs if hi - lo >= options.fine_min_segment]


def cluster_diarization(samples: np.ndarray, options: DiarizationOptions = DiarizationOptions(),
                        bounds: tuple[int, int] | None = None, engines: Engines | None = None) -> Diarization:
    from resemblyzer import audio as rz_audio  # heavy (torch): loaded when a model first runs

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
        if options.overlap_margin is not None:
            # Overlapped speech: the second voice gets segments of its own over the first one's.
            mixtures = mixture_means(samples, fine_centres, fine_labels, segments, options.fine_window, options,
                                     engines)
            segments += overlap_segments(fine_centres, fine_embeds, fine_labels, mixtures, segments,
                                         options.fine_hop, options)
            segments.sort(key=lambda s: s.start)
        # The speaker means stay those of the long windows (voiceprints are matched against them).
        labels = fine_labels[nearest_index(fine_centres, centres)]
    else:
        segments = _segments_from_windows(regions, centres, labels, options)
    # Name speakers by first appearance, so spk0 is whoever spoke first.
    order: dict[str, str] = {}
    for seg in sorted(segments, key=lambda s: s.overlap):  # a voice's own speech names it, not an overlap
        order.setdefault(seg.speaker, f"spk{len(order)}")
    segments = [replace(s, speaker=order[s.speaker]) for s in segments]
    centroids = {}
    for k in range(int(labels.max()) + 1):
        if f"spk{k}" in order and np.any(labels == k):
            mean = embeds[labels == k].mean(axis=0)
            centroids[order[f"spk{k}"]] = [round(float(x), 5) for x in mean / np.linalg.norm(mean)]
    evidence["speakers_after_resegmentation"] = len(order)
    method = "clustering" if len(order) > 1 else "single"
    return Diarization(tuple(segments), method, len(order), evidence, centroids)
