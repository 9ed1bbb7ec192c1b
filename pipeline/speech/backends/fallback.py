"""Whisper's retry of a badly decoded window, without sampling, and Mandarin's wider beam spent
only on the windows that need it: a call transcribes the same way whatever the process decoded
before it, and pays for a wide search only where the normal one was unsure.

faster-whisper decodes each 30 s window at temperature 0 (beam search) and, when the result is
too repetitive (gzip compression ratio above the threshold: a loop) or too unsure (average log
probability under the threshold, and not silence), decodes it again at rising temperatures,
sampling. CTranslate2 has no per-call seed: its sampler's random generator belongs to the model's
worker thread and is seeded once, so what a retry draws depends on every call that worker
decoded before (another order of calls, another Dask worker: another transcript).

Here each retry is a deterministic decode unlikely to fail the way the first one did:
  1. the same beam, no n-gram of `NO_REPEAT_NGRAM` tokens twice: a loop within a segment cannot
     form (a loop of short timestamped segments still fails the compression check);
  2. a beam twice as wide, patience at least 2, also without repeated n-grams: more of the search
     for an unsure window;
  3. greedy with a repetition penalty: another path altogether.
The first decode that passes faster-whisper's checks is kept; when none does, the one with the
best average log probability among those that are not loops (faster-whisper's own rule). The
number of retries is the number of temperatures above 0 that were asked for, at most three.
A retry sets its own repetition penalty and n-gram size in place of the options'.

Before any retry, a Mandarin window whose first decode (at the normal beam) is unsure by a
looser bar (`WideBeam.below`) is decoded again at the wide beam, and that decode stands in for
the first: the wide beam everywhere cost a third of the pipeline's throughput, and most windows
decode the same at beam 5 (docs/measurements.md, "Speed").
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Callable, NamedTuple

from faster_whisper import WhisperModel
from faster_whisper.transcribe import TranscriptionOptions

from pipeline.speech.asr import WideBeam

# Tokens: a Chinese character is one to three of them, so 10 leaves a short phrase said twice
# ("我要投诉，我要投诉") to be written, and stops a loop ten tokens into its second turn.
NO_REPEAT_NGRAM = 10


@dataclass(frozen=True)
class Retry:
    """One deterministic re-decode (see the module docstring)."""

    greedy: bool = False  # beam size 1
    wider: bool = False  # twice the first decode's beam, patience at least 2
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = NO_REPEAT_NGRAM


RETRIES = (Retry(), Retry(wider=True), Retry(greedy=True, repetition_penalty=1.2))


class Decode(NamedTuple):
    """One decode of a window, as faster-whisper's generate_with_fallback returns it."""

    result: object  # ctranslate2 WhisperGenerationResult (or its batched equivalent)
    avg_logprob: float
    temperature: float
    compression_ratio: float


# The wide beam of the transcription running in this thread (the engine sets it for one call of
# faster-whisper's transcribe: the model is shared by the calls of a run, its options are not).
WIDE_BEAM: ContextVar[WideBeam | None] = ContextVar("wide_beam", default=None)


@contextmanager
def wide_beam(wide: WideBeam | None):
    token = WIDE_BEAM.set(wide)
    try:
        yield
    finally:
        WIDE_BEAM.reset(token)


def retry_options(options: TranscriptionOptions, retry: Retry) -> TranscriptionOptions:
    """faster-whisper's options for one retry: temperature 0 only, so it never samples."""
    beam_size, patience = options.beam_size, options.patience
    if retry.greedy:
        beam_size, patience = 1, 1.0
    elif retry.wider:
        beam_size, patience = 2 * beam_size, max(2.0, patience)
    return replace(options, temperatures=[0.0], beam_size=beam_size, patience=patience,
                   repetition_penalty=retry.repetition_penalty, no_repeat_ngram_size=retry.no_repeat_ngram_size)


def wide_options(options: TranscriptionOptions, wide: WideBeam) -> TranscriptionOptions:
    return replace(options, temperatures=[0.0], beam_size=wide.beam_size, patience=wide.patience)


def _silence(d: Decode, options: TranscriptionOptions) -> bool:
    return (options.no_speech_threshold is not None and d.result.no_speech_prob > options.no_speech_threshold
            and options.log_prob_threshold is not None and d.avg_logprob < options.log_prob_threshold)


def passes(avg_logprob: float, compression_ratio: float, no_speech_prob: float,
           options: TranscriptionOptions) -> bool:
    """faster-whisper's test of a decode: silence (unsure, and the no-speech probability high:
    the caller then skips the window), or neither a loop nor unsure."""
    loop = options.compression_ratio_threshold is not None and compression_ratio > options.compression_ratio_threshold
    unsure = options.log_prob_threshold is not None and avg_logprob < options.log_prob_threshold
    silence = options.no_speech_threshold is not None and no_speech_prob > options.no_speech_threshold
    return (unsure and silence) or not (loop or unsure)


def wants_wide(d: Decode, options: TranscriptionOptions, wide: WideBeam | None) -> bool:
    """Is this first decode unsure enough (and not silence) to be decoded again at the wide beam?"""
    if wide is None or _silence(d, options):
        return False
    return d.avg_logprob < wide.below or (options.compression_ratio_threshold is not None
                                          and d.compression_ratio > options.compression_ratio_threshold)


def settle(current: Decode, decode: Callable[[TranscriptionOptions], Decode],
           options: TranscriptionOptions) -> Decode:
    """The retries after `current` (the window's decode so far): the first that passes, else the
    best of those that are not loops. `decode(options)` decodes the window again."""
    if passes(current.avg_logprob, current.compression_ratio, current.result.no_speech_prob, options):
        return current
    retries = RETRIES[:sum(t > 0 for t in options.temperatures)]
    temperatures = sorted(t for t in options.temperatures if t > 0)
    decodes = [current]
    for temperature, retry in zip(temperatures, retries):
        d = decode(retry_options(options, retry))._replace(temperature=temperature)
        if passes(d.avg_logprob, d.compression_ratio, d.result.no_speech_prob, options):
            return d
        decodes.append(d)
    not_loops = [d for d in decodes if options.compression_ratio_threshold is None
                 or d.compression_ratio <= options.compression_ratio_threshold]
    best = max(not_loops or decodes, key=lambda d: d.avg_logprob)
    # With the last temperature tried, as faster-whisper does: a window that failed every
    # attempt resets the prompt (when text conditions the next window).
    return best._replace(temperature=decodes[-1].temperature)


class DeterministicWhisperModel(WhisperModel):
    """faster-whisper's model with the retries above in place of temperature sampling, and the
    wide beam of this thread's transcription (`wide_beam`) for unsure windows."""

    def generate_with_fallback(self, encoder_output, prompt, tokenizer, options):
        def decode(step_options: TranscriptionOptions) -> Decode:
            return Decode(*super(DeterministicWhisperModel, self).generate_with_fallback(
                encoder_output, prompt, tokenizer, step_options))

        wide = WIDE_BEAM.get()
        current = decode(replace(options, temperatures=[0.0]))
        if wants_wide(current, options, wide):
            current = decode(wide_options(options, wide))
        return tuple(settle(current, decode, options))
