"""Several 30 s windows through faster-whisper's model at once: one encoder pass and one beam
search over a batch, instead of one window after the other.

A call's speech, cut at its pauses into clips of at most 30 s (speech/streams.py), is decoded
clip by clip as one window each, `BATCH_SIZE` at a time. On a 2-core CPU the decoder of the base
model is bound by the many small steps of its search, not by arithmetic; a batch makes each step
do more (measured: docs/measurements.md, "Speed"). The decisions are those of the sequential
engine (speech/backends/fallback.py): every window at the normal beam, the unsure ones again at
the wide beam (one more batch), and the deterministic retries for those that still fail. What a
window decodes to does not depend on its batch: no sampling, no text carried between windows.

faster-whisper's own `BatchedInferencePipeline` does the first step but neither the wide beam nor
the retries, and finds its own speech with its own VAD; here the clips come from the call's
speaker streams, cut where the speakers paused. As there, every window is decoded after the same
prompt (hotwords, `initial_prompt`) and no text is carried between windows
(`condition_on_previous_text` has no effect here; the default is off). The openai-whisper engine
decodes stream by stream and has no wide re-decode: it decodes Mandarin at beam 5.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import ctranslate2
import numpy as np
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import TranscriptionOptions, get_compression_ratio, get_suppressed_tokens

from pipeline.intake.audio import SAMPLE_RATE
from pipeline.records import Segment, Word
from pipeline.speech.asr import Progress, TranscribeOptions, WideBeam
from pipeline.speech.backends.fallback import Decode, settle, wants_wide, wide_options

# Windows decoded at once (faster-whisper's BatchedInferencePipeline on a 2-minute Mandarin call:
# batches of 4 2.1x the sequential engine, of 8 5% more). The encoder's attention over a batch is
# its largest buffer (~70 MB a window); 8 keeps a call's peak under 2 GB.
BATCH_SIZE = 8
WINDOW_SECONDS = 30.0


def fw_options(options: TranscribeOptions, tokenizer: Tokenizer) -> TranscriptionOptions:
    """faster-whisper's options for `options`, its own defaults for the rest (as its transcribe)."""
    return TranscriptionOptions(
        beam_size=options.beam_size, best_of=5, patience=options.patience, length_penalty=1,
        repetition_penalty=1, no_repeat_ngram_size=0, log_prob_threshold=options.log_prob_threshold,
        no_speech_threshold=options.no_speech_threshold,
        compression_ratio_threshold=options.compression_ratio_threshold,
        condition_on_previous_text=False, prompt_reset_on_temperature=0.5, temperatures=list(options.temperature),
        initial_prompt=options.initial_prompt, prefix=None, suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]), without_timestamps=False, max_initial_timestamp=1.0,
        word_timestamps=options.word_timestamps, prepend_punctuations="\"'“¿([{-",
        append_punctuations="\"'.。,，!！?？:：”)]}、", multilingual=False, max_new_tokens=None,
        clip_timestamps="0", hallucination_silence_threshold=None, hotwords=options.hotwords)


def _generate(model, encoded: np.ndarray, prompt: list[int], tokenizer: Tokenizer,
              options: TranscriptionOptions) -> list[Decode]:
    """One decode of each row of `encoded` (encoder output, a batch) with `options`, at temperature 0."""
    results = model.model.generate(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded)), [list(prompt)] * len(encoded),
        beam_size=options.beam_size, patience=options.patience, length_penalty=options.length_penalty,
        repetition_penalty=options.repetition_penalty, no_repeat_ngram_size=options.no_repeat_ngram_size,
        max_length=model.max_length, return_scores=True, return_no_speech_prob=True,
        suppress_blank=options.suppress_blank, suppress_tokens=options.suppress_tokens,
        max_initial_timestamp_index=int(round(options.max_initial_timestamp / model.time_precision)))
    out = []
    for result in results:
        tokens = result.sequences_ids[0]
        # The average log probability as faster-whisper recovers it from the score.
        avg_logprob = result.scores[0] * (len(tokens) ** options.length_penalty) / (len(tokens) + 1)
        out.append(Decode(result, avg_logprob, 0.0, get_compression_ratio(tokenizer.decode(tokens).strip())))
    return out


def _skipped(d: Decode, options: TranscriptionOptions) -> bool:
    """No speech in the window (faster-whisper's rule): the no-speech probability high, and the
    decode not sure enough to overrule it."""
    if options.no_speech_threshold is None or d.result.no_speech_prob <= options.no_speech_threshold:
        return False
    return not (options.log_prob_threshold is not None and d.avg_logprob > options.log_prob_threshold)


@dataclass(frozen=True)
class Encoded:
    """Windows through the encoder once: what their decoding and language detection share."""

    output: np.ndarray  # (windows, 1500, width): Whisper's encoder output, each window padded to 30 s
    frames: tuple[int, ...]  # each window's own log-mel frames (100 per second)


# Encoder output positions per second of audio (1500 for Whisper's 30 s).
ENCODED_PER_SECOND = 50


def encode_windows(model, clips: list[np.ndarray]) -> Encoded:
    """The clips (at most WINDOW_SECONDS each; longer ones are cut there) through the encoder, as one batch."""
    limit = int(WINDOW_SECONDS * SAMPLE_RATE)
    features = [model.feature_extractor(np.ascontiguousarray(c[:limit], dtype=np.float32))[..., :-1] for c in clips]
    frames = tuple(min(f.shape[-1], model.feature_extractor.nb_max_frames) for f in features)
    return Encoded(np.asarray(model.encode(np.stack([pad_or_trim(f) for f in features]))), frames)


# A span's language is read from this many positions of its window's encoder output (3 s, the
# shortest stretch, speech/language.MIN_STRETCH_S), centred on the span: equal lengths go through
# the decoder's step as one batch.
READ_POSITIONS = 3 * ENCODED_PER_SECOND


def read_spans(model, encoded: Encoded, spans: list[list[tuple[float, float]]]) -> list[list[tuple[str, float]]]:
    """(language, probability) of each span (seconds of its window) read from the window's own
    encoder output (which already hears the window around it): READ_POSITIONS positions at its
    centre, all spans of equal length in one decoder step; no encoder pass."""
    slices: dict[int, list[tuple[int, int, np.ndarray]]] = {}  # length -> (window, span, positions)
    for k, window_spans in enumerate(spans):
        content = max(1, encoded.frames[k] // 2)  # positions holding audio, not padding
        for j, (start, end) in enumerate(window_spans):
            centre = int((start + end) / 2 * ENCODED_PER_SECOND)
            lo = max(0, min(centre - READ_POSITIONS // 2, content - READ_POSITIONS))
            hi = min(content, lo + READ_POSITIONS)
            slices.setdefault(hi - lo, []).append((k, j, encoded.output[k, lo:hi]))
    out: list[list[tuple[str, float]]] = [[("", 0.0)] * len(window_spans) for window_spans in spans]
    for group in slices.values():
        found = model.model.detect_language(ctranslate2.StorageView.from_array(
            np.ascontiguousarray(np.stack([positions for *_, positions in group]))))
        for (k, j, _), result in zip(group, found):
            out[k][j] = (result[0][0][2:-2], float(result[0][1]))
    return out


def decode_encoded(model, encoded: Encoded, rows: list[int], language: str,
                   options: TranscribeOptions) -> list[tuple[Segment, ...]]:
    """The windows `rows` of `encoded` decoded in `language`: segments with word times, in window time."""
    options = options.for_language(language)
    wide = options.wide_beam(language)
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
    fw = fw_options(options, tokenizer)
    previous = tokenizer.encode(" " + options.initial_prompt.strip()) if options.initial_prompt else []
    prompt = model.get_prompt(tokenizer, previous, without_timestamps=False, hotwords=options.hotwords)
    return _decode_rows(model, encoded.output[rows], [encoded.frames[k] for k in rows], tokenizer, fw, prompt, wide)


def decode_windows(model, clips: list[np.ndarray], languages: list[str], options: TranscribeOptions,
                   on_done: Progress | None = None) -> list[tuple[Segment, ...]]:
    """Each clip decoded as one window in its language, in batches of BATCH_SIZE."""
    out: list[tuple[Segment, ...]] = []
    done = 0.0
    for first in range(0, len(clips), BATCH_SIZE):
        batch, langs = clips[first:first + BATCH_SIZE], languages[first:first + BATCH_SIZE]
        encoded = encode_windows(model, batch)
        found: dict[int, tuple[Segment, ...]] = {}
        for language in dict.fromkeys(langs):
            rows = [k for k, lang in enumerate(langs) if lang == language]
            found |= dict(zip(rows, decode_encoded(model, encoded, rows, language, options)))
            for k in rows:  # window by window: a listener (a stop) hears of each
                done += len(batch[k]) / SAMPLE_RATE
                if on_done:
                    on_done(done)
        out += [found[k] for k in range(len(batch))]
    return out


def _decode_rows(model, encoded: np.ndarray, frames: list[int], tokenizer: Tokenizer, options: TranscriptionOptions,
                 prompt: list[int], wide: WideBeam | None) -> list[tuple[Segment, ...]]:
    """The windows of one language (rows of encoder output) decoded: the first pass, the unsure
    ones wide, the retries; segments with word times."""
    decodes = _generate(model, encoded, prompt, tokenizer, options)
    unsure = [k for k, d in enumerate(decodes) if wants_wide(d, options, wide)]
    if unsure:  # the unsure windows again, wide, as one more batch
        for k, d in zip(unsure, _generate(model, encoded[unsure], prompt, tokenizer, wide_options(options, wide))):
            decodes[k] = d
    for k, d in enumerate(decodes):  # retries, one window at a time (rare)
        decodes[k] = settle(d, lambda step, k=k: _generate(model, encoded[k:k + 1], prompt, tokenizer,
                                                          replace(step, temperatures=[0.0]))[0], options)

    windows, kept = [], []
    for k, d in enumerate(decodes):
        if _skipped(d, options):
            windows.append([])
            continue
        tokens = d.result.sequences_ids[0]
        pieces, _, single_ending = model._split_segments_by_timestamps(
            tokenizer=tokenizer, tokens=tokens, time_offset=0.0, segment_size=frames[k],
            segment_duration=frames[k] / model.frames_per_second, seek=0)
        pieces += _unfinished(tokens, tokenizer, single_ending, frames[k] / model.frames_per_second,
                              model.time_precision)
        for p in pieces:
            p["text"] = tokenizer.decode(p["tokens"])
            p["avg_logprob"], p["no_speech_prob"] = d.avg_logprob, d.result.no_speech_prob
        windows.append(pieces)
        if pieces:
            kept.append(k)
    # Word times window by window: faster-whisper carries the end of the last speech from one
    # window to the next (its rules for a first word after a pause use it); each window here
    # starts in a pause of its own, so each starts from 0, whatever else is in its batch.
    for k in kept if options.word_timestamps else ():
        model.add_word_timestamps([windows[k]], tokenizer, ctranslate2.StorageView.from_array(
            np.ascontiguousarray(encoded[k:k + 1])), [frames[k]], options.prepend_punctuations,
            options.append_punctuations, 0.0)
    # As faster-whisper's own loop: a segment with no length or no text is not kept.
    return [tuple(_segment(p) for p in pieces if p["start"] != p["end"] and p["text"].strip()) for pieces in windows]


def _unfinished(tokens: list[int], tokenizer: Tokenizer, single_ending: bool, duration: float,
                precision: float) -> list[dict]:
    """The text after the last complete timestamped segment, as a segment to the window's end.
    faster-whisper's own loop seeks back and decodes that audio again in the next window; a
    window here is all there is of its audio, so the words are kept (speech that runs to a cut)."""
    begin = tokenizer.timestamp_begin
    pairs = [i for i in range(1, len(tokens)) if tokens[i] >= begin and tokens[i - 1] >= begin]
    if not pairs or single_ending:
        return []
    rest = tokens[pairs[-1]:]
    if not any(t < tokenizer.eot for t in rest):
        return []
    return [{"seek": 0, "start": (rest[0] - begin) * precision if rest[0] >= begin else 0.0, "end": duration,
             "tokens": rest}]


def _segment(piece: dict) -> Segment:
    return Segment(start=float(piece["start"]), end=float(piece["end"]), text=piece["text"].strip(),
                   avg_logprob=float(piece["avg_logprob"]), no_speech_prob=float(piece["no_speech_prob"]),
                   words=tuple(Word(w["word"].strip(), w["start"], w["end"], w["probability"])
                               for w in piece.get("words", ())))
