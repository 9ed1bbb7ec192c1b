"""Transcribe each speaker on their own: one stream per channel (stereo) or per diarized speaker (mono).

Whisper decoding a window in which two voices overlap tends to skip one of them (measured on
en-2002: the customer's interruption "I want to speak to a supervisor" vanished from the
down-mix). Feeding it one speaker at a time avoids that, and every word comes out already
attributed. A mono speaker's stream is their diarized segments joined by short pauses;
timestamps are mapped back to the recording.

The streams are decoded in windows of up to 30 s cut at the speaker's pauses, all the call's
windows of one language in batches (`engine.transcribe_windows`, speech/backends/batch.py): each
second of speech is decoded once, no window overlaps the next (faster-whisper's own loop seeks
back to the last timestamp and decodes the rest again), and a batch keeps both cores busy.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from pipeline.intake.audio import SAMPLE_RATE
from pipeline.records import Diarization, Segment, Transcript, Word, join_words
from pipeline.speech.asr import AsrEngine, Progress, TranscribeOptions
from pipeline.speech.language import (
    MIN_STRETCH_S,
    SURE_PROB,
    Stretch,
    cut_stretches,
    detect_clips,
    dominant,
    runs,
    shifted,
    smooth,
    stream_stretches,
    transcribe_stretches,
)

JOIN_PAUSE = 0.4  # seconds of silence between one speaker's segments in their stream
# A stream may be in another language than the call's main one (an English-speaking customer on
# a Mandarin line), but Whisper's detection on little speech is unreliable: a stream keeps a
# language of its own only when detected with at least this probability.
OWN_LANGUAGE_MIN_PROB = 0.7


@dataclass(frozen=True)
class SpeakerStream:
    speaker: str
    audio: np.ndarray
    channel: int | None
    # Piecewise map from stream time to recording time: piece i starts at stream_starts[i],
    # which is recording time recording_starts[i], and lasts lengths[i].
    stream_starts: np.ndarray
    recording_starts: np.ndarray
    lengths: np.ndarray

    def to_recording_time(self, t: float, edge: str = "start") -> float:
        """Map stream time to recording time. A time inside a joining pause belongs to the next
        piece if it starts a word (Whisper stamps first words a little early), else to the last."""
        i = max(0, int(np.searchsorted(self.stream_starts, t, side="right")) - 1)
        offset = t - self.stream_starts[i]
        if offset > self.lengths[i]:  # in the pause after piece i
            if edge == "start" and i + 1 < len(self.stream_starts):
                return float(self.recording_starts[i + 1])
            return float(self.recording_starts[i] + self.lengths[i])
        return float(self.recording_starts[i] + max(offset, 0.0))

    def within_one_piece(self, word: Word) -> Word:
        """A word that Whisper stamped across a join (it starts in the padding at the end of one
        piece and ends in the next) is clamped to the piece holding most of it: mapped as it is,
        it would span the other speaker's turn in between and open this speaker's next turn
        seconds early."""
        first = max(0, int(np.searchsorted(self.stream_starts, word.start, side="right")) - 1)
        last = max(0, int(np.searchsorted(self.stream_starts, word.end, side="left")) - 1)
        if last <= first:
            return word
        ends = self.stream_starts + self.lengths
        spans = [min(word.end, ends[i]) - max(word.start, self.stream_starts[i]) for i in range(first, last + 1)]
        best = first + int(np.argmax(spans))
        if spans[best - first] <= 0:  # all of it in pauses: leave it to to_recording_time
            return word
        return replace(word, start=max(word.start, float(self.stream_starts[best])),
                       end=min(word.end, float(ends[best])))


# A speaker's stream is cut into parts of at most this much audio, at the joins between their
# segments: Whisper's features are computed over a whole input at once (about 20 bytes per sample
# at its peak), so an hour-long stream would cost GBs; parts keep memory flat in call length.
MAX_STREAM_SECONDS = 300.0


def speaker_streams(samples: np.ndarray, diarization: Diarization, pad: float = 0.15,
                    max_seconds: float = MAX_STREAM_SECONDS) -> list[SpeakerStream]:
    """One stream per speaker (cut in parts of at most `max_seconds`, see MAX_STREAM_SECONDS):
    their speech segments (padded a little), joined by pauses, cut from their own channel
    (stereo) or from the mix (mono). Streams hold speech only, so Whisper's own voice-activity
    pass can be skipped."""
    samples = samples if samples.ndim == 2 else samples[None, :]
    mix = None  # the down-mix, made only when a segment has no channel of its own
    streams = []
    pause = np.zeros(int(JOIN_PAUSE * SAMPLE_RATE), dtype=np.float32)
    total = samples.shape[1] / SAMPLE_RATE
    for speaker in diarization.speakers():
        pieces, stream_starts, rec_starts, lengths, cursor, channel = [], [], [], [], 0.0, None

        def close() -> None:
            if pieces:
                streams.append(SpeakerStream(speaker, np.concatenate(pieces), channel, np.array(stream_starts),
                                             np.array(rec_starts), np.array(lengths)))

        for seg in (s for s in diarization.voice_segments() if s.speaker == speaker):
            channel = seg.channel
            if seg.channel is None and mix is None:
                mix = samples.mean(axis=0) if samples.shape[0] > 1 else samples[0]
            source = samples[seg.channel] if seg.channel is not None else mix
            start, end = max(0.0, seg.start - pad), min(total, seg.end + pad)
            piece = source[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)]
            if pieces and cursor + len(piece) / SAMPLE_RATE > max_seconds:
                close()
                pieces, stream_starts, rec_starts, lengths, cursor = [], [], [], [], 0.0
            stream_starts.append(cursor)
            rec_starts.append(start)
            lengths.append(len(piece) / SAMPLE_RATE)
            pieces += [piece, pause]
            cursor += len(piece) / SAMPLE_RATE + JOIN_PAUSE
        close()
    return streams


def stream_seconds(streams: list[SpeakerStream]) -> float:
    return sum(len(s.audio) for s in streams) / SAMPLE_RATE


def _remap(seg: Segment, stream: SpeakerStream) -> list[Segment]:
    """The segment in recording time, split where it crosses from one piece of the stream to the
    next (pieces may be far apart in the recording, with the other speaker in between)."""
    to = stream.to_recording_time
    pieces: dict[int, list[Word]] = {}
    for w in map(stream.within_one_piece, seg.words):
        start = to(w.start, "start")
        piece = max(0, int(np.searchsorted(stream.recording_starts, start, side="right")) - 1)
        pieces.setdefault(piece, []).append(replace(w, start=start, end=max(start, to(w.end, "end"))))
    if not pieces:
        start = to(seg.start, "start")
        return [replace(seg, start=start, end=max(start, to(seg.end, "end")), channel=stream.channel,
                        speaker=stream.speaker)]
    if len(pieces) == 1:  # one piece: keep the decoder's own text (its spacing, "QQ.com")
        (words,) = pieces.values()
        return [replace(seg, start=words[0].start, end=max(w.end for w in words), words=tuple(words),
                        channel=stream.channel, speaker=stream.speaker)]
    return [replace(seg, start=words[0].start, end=max(w.end for w in words), words=tuple(words),
                    text=join_words(w.text for w in words), channel=stream.channel, speaker=stream.speaker)
            for _, words in sorted(pieces.items())]


def transcribe_streams(engine: AsrEngine, streams: list[SpeakerStream], options: TranscribeOptions,
                       per_stretch: bool = True, on_progress: Progress | None = None) -> Transcript:
    """Each speaker in their own language, stretch by stretch: unless the manifest fixes the
    language, every stream is cut at its pauses and each stretch's language detected
    (pipeline/speech/language.py); unsure stretches take their sure neighbours' language, and a stream
    with no sure stretch takes the call's (the longest stream's) language. The call's language
    is the one with most speech. The streams are speech already (from our voice activity), so
    Whisper's own VAD pass is not repeated. No streams (voice activity found no speech, e.g. a
    ringback tone) gives an empty transcript, which the batch stores as a failed call ("no speech
    detected"). Each run of one language is decoded in windows cut at its pauses, the call's
    windows in batches (see the module docstring); an engine without `transcribe_windows`
    (openai-whisper) transcribes stream after stream. `per_stretch=False` gives one language per
    stream (how it was before stretches; kept to measure the two side by side: python -m
    evaluation.eval_language). `on_progress` gets seconds done of all the streams' audio
    (`stream_seconds` in all)."""
    if not streams:
        return Transcript(language=options.language or "", language_probability=0.0, segments=(), duration=0.0,
                          model_id=engine.model_id, engine=getattr(engine, "name", type(engine).__name__))
    options = replace(options, vad_filter=False)
    ordered = sorted(streams, key=lambda s: -len(s.audio))
    if per_stretch and hasattr(engine, "transcribe_windows"):
        parts = list(zip(ordered, _transcribe_in_windows(engine, ordered, options, on_progress)))
    else:
        parts = _transcribe_one_by_one(engine, ordered, options, per_stretch, on_progress)
    first = parts[0][1]
    segments = sorted((piece for stream, part in parts for seg in part.segments for piece in _remap(seg, stream)),
                      key=lambda seg: seg.start)
    duration = max(float(s.recording_starts[-1] + s.lengths[-1]) for s in streams)
    language = dominant((seg.language or first.language, seg.end - seg.start) for seg in segments) or first.language
    return replace(first, language=language, segments=tuple(segments), duration=duration,
                   dropped=tuple(d for _, part in parts for d in part.dropped))


# A window is cut at most this long (Whisper's window is 30 s; a little room for the rounding of
# its frames), at the last pause between the speaker's segments that fits.
MAX_WINDOW_SECONDS = 29.5


def window_cuts(stream: SpeakerStream, start: float, end: float,
                max_seconds: float = MAX_WINDOW_SECONDS) -> list[tuple[float, float]]:
    """(start, end) in stream time: the span cut into windows of at most `max_seconds`, each cut
    in the middle of a joining pause where one fits, else at the quietest moment (no word is cut
    at a pause; a word is rarely said through the quietest 20 ms of 15 s)."""
    pauses = [float(t) - JOIN_PAUSE / 2 for t in stream.stream_starts[1:] if start < float(t) - JOIN_PAUSE / 2 < end]
    out, cursor = [], start
    while end - cursor > max_seconds:
        # The last pause that fits, if it leaves the window at least half full (no tiny window).
        fitting = [t for t in pauses if cursor + max_seconds / 2 < t <= cursor + max_seconds]
        # Speech that runs on without a pause: cut at its quietest 20 ms in the window's second half.
        cut = fitting[-1] if fitting else _quietest(stream.audio, cursor + max_seconds / 2, cursor + max_seconds)
        out.append((cursor, cut))
        cursor = cut
    out.append((cursor, end))
    return out


def _quietest(audio: np.ndarray, start: float, end: float, frame: float = 0.02) -> float:
    clip = audio[int(start * SAMPLE_RATE): int(end * SAMPLE_RATE)]
    n = int(frame * SAMPLE_RATE)
    if len(clip) < 2 * n:
        return end
    energy = (clip[: len(clip) // n * n].reshape(-1, n) ** 2).mean(axis=1)
    return start + (int(np.argmin(energy)) + 0.5) * frame


# Windows encoded (and their languages checked) at once; speech/backends/batch.py decodes them.
WINDOW_BATCH = 8


def _transcribe_in_windows(engine, streams: list[SpeakerStream], options: TranscribeOptions,
                           on_progress: Progress | None) -> list[Transcript]:
    """Every stream cut into windows at its pauses, and all the call's windows decoded in
    batches. Without the manifest's language, each window's language stretches
    (pipeline/speech/language.py) are first read from the window's own encoder output: a stretch
    that shows the window's language surely is taken as read; any other (unsure, or another
    language: a possible switch) is detected on its own audio, as every stretch was before. A
    window of one language is decoded from the encoding it has; one that switches is cut by
    language and decoded run by run. A transcript per stream, in stream time."""
    windows = [(k, a, b) for k, stream in enumerate(streams)
               for a, b in window_cuts(stream, 0.0, len(stream.audio) / SAMPLE_RATE)]
    clip = lambda k, a, b: streams[k].audio[int(a * SAMPLE_RATE): int(b * SAMPLE_RATE)]  # noqa: E731
    done = [0.0]

    def report(seconds: float) -> None:
        done[0] += seconds
        if on_progress:
            on_progress(done[0])

    # Each part: (stream, offset in the stream, transcript, [(language, probability, seconds)]).
    parts: list[tuple[int, float, Transcript, list]] = []
    if options.language is not None:
        found = engine.transcribe_windows([clip(*w) for w in windows], [options.language] * len(windows), options,
                                          on_progress)
        parts = [(k, a, t, [(t.language, 1.0, b - a)]) for (k, a, b), t in zip(windows, found)]
        return _stream_transcripts(engine, streams, parts, options.language)
    spans_of = {k: cut_stretches(s.stream_starts, s.lengths, len(s.audio) / SAMPLE_RATE) for k, s in enumerate(streams)}
    main_language = None  # the language of most speech decoded so far: the last resort of smoothing
    later: list[tuple[int, float, float, str]] = []  # windows that switch language, cut by run
    switched: list[tuple[int, float, None, list]] = []  # their stretches' languages, for the stream's
    for first in range(0, len(windows), WINDOW_BATCH):
        batch = windows[first:first + WINDOW_BATCH]
        encoded = engine.encode_windows([clip(*w) for w in batch])
        # Stretch by stretch: a window's language as a whole hides a switch (8 s of English
        # before 16 s of Mandarin left the window Mandarin at 0.991).
        spans = [_spans_within(spans_of[k], a, b) for k, a, b in batch]
        read = engine.read_spans(encoded, [[(x - a, y - a) for x, y in sp] for (_, a, _), sp in zip(batch, spans)])
        stretches = _window_stretches(engine, batch, spans, read, clip, main_language)
        by_language: dict[str, list[int]] = {}
        for i, ((k, a, b), found) in enumerate(zip(batch, stretches)):
            languages = runs(found)
            if len(languages) == 1:
                by_language.setdefault(languages[0][0].language, []).append(i)
            else:
                later += [(k, x, y, run[0].language) for run in languages
                          for x, y in window_cuts(streams[k], run[0].start, run[-1].end)]
                switched.append((k, 0.0, None, [(s.language, s.probability, s.seconds) for s in found]))
        for language, rows in by_language.items():
            for i, segments in zip(rows, engine.decode_encoded(encoded, rows, language, options)):
                k, a, b = batch[i]
                t = engine.window_transcript(clip(k, a, b), language, 1.0, segments, options)
                parts.append((k, a, t, [(s.language, s.probability, s.seconds) for s in stretches[i]]))
                report(b - a)  # window by window (a stop is heard); those that switch as they are decoded, below
        main_language = dominant((t.language, t.duration) for _, _, t, _ in parts) or main_language
    if later:
        before = done[0]
        found = engine.transcribe_windows([clip(k, a, b) for k, a, b, _ in later], [w[3] for w in later], options,
                                          lambda seconds: report(before + seconds - done[0]))
        parts += [(k, a, t, []) for (k, a, _, _), t in zip(later, found)]
    return _stream_transcripts(engine, streams, parts, None, switched)


def _spans_within(spans: list[tuple[float, float]], start: float, end: float) -> list[tuple[float, float]]:
    """The stream's language stretches cut to a window: slivers (a cut and a stretch's edge a hair
    apart) dropped, and a piece shorter than a stretch may be (MIN_STRETCH_S: detection needs a
    few seconds) joined to its neighbour in the window."""
    out: list[list[float]] = []
    for x, y in spans:
        x, y = max(x, start), min(y, end)
        if y - x < 0.05:
            continue
        if out and (out[-1][1] - out[-1][0] < MIN_STRETCH_S or y - x < MIN_STRETCH_S):
            out[-1][1] = y
        else:
            out.append([x, y])
    return [(x, y) for x, y in out]


def _window_stretches(engine, batch, spans, read, clip, fallback: str | None) -> list[list[Stretch]]:
    """Each window's smoothed stretches. A stretch read surely in the window's language (the one
    most of its surely read speech shows) is taken as read; any other (unsure, or another
    language: a possible switch) is detected on its own audio, all of the batch's at once."""
    window_language = [dominant((lang, y - x) for (x, y), (lang, prob) in zip(sp, found) if prob >= SURE_PROB)
                       for sp, found in zip(spans, read)]
    doubtful = [(i, j) for i, found in enumerate(read) for j, (lang, prob) in enumerate(found)
                if not (lang == window_language[i] and prob >= SURE_PROB)]
    own = detect_clips(engine, [clip(batch[i][0], *spans[i][j]) for i, j in doubtful]) or []
    detected = dict(zip(doubtful, own))
    return [smooth([Stretch(x, y, *detected.get((i, j), found[j])) for j, (x, y) in enumerate(spans[i])],
                   window_language[i] or fallback) for i, found in enumerate(read)]


def _stream_transcripts(engine, streams: list[SpeakerStream], parts, fixed: str | None,
                        switched=()) -> list[Transcript]:
    """A transcript per stream from its decoded windows (segments moved to stream time, marked
    with their window's language); its language the one with most speech, its probability the
    detector's mean over that speech (`switched`: the stretches of windows cut by language)."""
    out = []
    for k, stream in enumerate(streams):
        mine = sorted((p for p in parts if p[0] == k), key=lambda p: p[1])
        spoken = [e for p in mine for e in p[3]] + [e for p in switched if p[0] == k for e in p[3]]
        language = fixed or dominant((lang, seconds) for lang, _, seconds in spoken) \
            or dominant((t.language, t.duration) for _, _, t, _ in mine) or ""
        sure = [(prob, seconds) for lang, prob, seconds in spoken if lang == language]
        probability = sum(p * s for p, s in sure) / sum(s for _, s in sure) if sure else 1.0
        segments = tuple(shifted(seg, offset, t.language) for _, offset, t, _ in mine for seg in t.segments)
        out.append(Transcript(language=language, language_probability=probability, segments=segments,
                              duration=len(stream.audio) / SAMPLE_RATE, model_id=engine.model_id,
                              engine=getattr(engine, "name", type(engine).__name__),
                              dropped=tuple(d for _, _, t, _ in mine for d in t.dropped)))
    return out


def _transcribe_one_by_one(engine: AsrEngine, streams: list[SpeakerStream], options: TranscribeOptions,
                           per_stretch: bool, on_progress: Progress | None) -> list[tuple[SpeakerStream, Transcript]]:
    """Stream after stream with the engine's own transcribe: engines that cannot decode windows
    in batches (openai-whisper), and one language per stream (`per_stretch=False`)."""
    parts, main_language = [], options.language
    done = 0.0  # seconds of the streams before this one
    for stream in streams:
        report = (lambda t, before=done: on_progress(before + t)) if on_progress else None
        part = _transcribe_stream(engine, stream, options, main_language, per_stretch, report)
        done += len(stream.audio) / SAMPLE_RATE
        main_language = main_language or part.language
        parts.append((stream, part))
    return parts


def _transcribe_stream(engine: AsrEngine, stream: SpeakerStream, options: TranscribeOptions,
                       main_language: str | None, per_stretch: bool = True,
                       on_progress: Progress | None = None) -> Transcript:
    if options.language is None and per_stretch:
        stretches = stream_stretches(engine, stream.audio, stream.stream_starts, stream.lengths, main_language)
        if stretches is not None:
            return transcribe_stretches(engine, stream.audio, stretches, options, on_progress)
    # The language is fixed (manifest), or the engine cannot detect per stretch: the whole stream
    # at once; one detected unsurely in another language than the call's is redone in the call's.
    part = engine.transcribe(stream.audio, options, on_progress)
    if main_language and part.language != main_language and not part.language_probability >= OWN_LANGUAGE_MIN_PROB:
        part = engine.transcribe(stream.audio, replace(options, language=main_language))  # NaN prob: unsure
    return part
