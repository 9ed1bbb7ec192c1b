"""Transcribe each speaker on their own: one stream per channel (stereo) or per diarized speaker (mono).

Whisper decoding a window in which two voices overlap tends to skip one of them (measured on
en-2002: the customer's interruption "I want to speak to a supervisor" vanished from the
down-mix). Feeding it one speaker at a time avoids that, and every word comes out already
attributed. A mono speaker's stream is their diarized segments joined by short pauses;
timestamps are mapped back to the recording.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from pipeline.intake.audio import SAMPLE_RATE
from pipeline.records import Diarization, Segment, Transcript, Word, join_words
from pipeline.speech.asr import AsrEngine, Progress, TranscribeOptions
from pipeline.speech.language import dominant, stream_stretches, transcribe_stretches

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

        for seg in (s for s in diarization.segments if s.speaker == speaker):
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
    detected"). `per_stretch=False` gives one language per stream (how it was before stretches;
    kept to measure the two side by side: python -m evaluation.eval_language). `on_progress` gets
    seconds done of all the streams' audio one after the other (`stream_seconds` in all)."""
    if not streams:
        return Transcript(language=options.language or "", language_probability=0.0, segments=(), duration=0.0,
                          model_id=engine.model_id, engine=getattr(engine, "name", type(engine).__name__))
    options = replace(options, vad_filter=False)
    parts, main_language = [], options.language
    done = 0.0  # seconds of the streams before this one
    for stream in sorted(streams, key=lambda s: -len(s.audio)):
        report = (lambda t, before=done: on_progress(before + t)) if on_progress else None
        part = _transcribe_stream(engine, stream, options, main_language, per_stretch, report)
        done += len(stream.audio) / SAMPLE_RATE
        main_language = main_language or part.language
        parts.append((stream, part))
    first = parts[0][1]
    segments = sorted((piece for stream, part in parts for seg in part.segments for piece in _remap(seg, stream)),
                      key=lambda seg: seg.start)
    duration = max(float(s.recording_starts[-1] + s.lengths[-1]) for s in streams)
    language = dominant((seg.language or first.language, seg.end - seg.start) for seg in segments) or first.language
    return replace(first, language=language, segments=tuple(segments), duration=duration,
                   dropped=tuple(d for _, part in parts for d in part.dropped))


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
