"""Whisper's retry of a badly decoded segment, without sampling: a call transcribes the same
way whatever the process decoded before it.

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
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from faster_whisper import WhisperModel
from faster_whisper.transcribe import TranscriptionOptions

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


def retry_options(options: TranscriptionOptions, retry: Retry) -> TranscriptionOptions:
    """faster-whisper's options for one retry: temperature 0 only, so it never samples."""
    beam_size, patience = options.beam_size, options.patience
    if retry.greedy:
        beam_size, patience = 1, 1.0
    elif retry.wider:
        beam_size, patience = 2 * beam_size, max(2.0, patience)
    return replace(options, temperatures=[0.0], beam_size=beam_size, patience=patience,
                   repetition_penalty=retry.repetition_penalty, no_repeat_ngram_size=retry.no_repeat_ngram_size)


def passes(avg_logprob: float, compression_ratio: float, no_speech_prob: float,
           options: TranscriptionOptions) -> bool:
    """faster-whisper's test of a decode: silence (unsure, and the no-speech probability high:
    the caller then skips the window), or neither a loop nor unsure."""
    loop = options.compression_ratio_threshold is not None and compression_ratio > options.compression_ratio_threshold
    unsure = options.log_prob_threshold is not None and avg_logprob < options.log_prob_threshold
    silence = options.no_speech_threshold is not None and no_speech_prob > options.no_speech_threshold
    return (unsure and silence) or not (loop or unsure)


class DeterministicWhisperModel(WhisperModel):
    """faster-whisper's model with the retries above in place of temperature sampling."""

    def generate_with_fallback(self, encoder_output, prompt, tokenizer, options):
        retries = RETRIES[:sum(t > 0 for t in options.temperatures)]
        steps = [(0.0, replace(options, temperatures=[0.0]))]
        # The nominal temperature of a retry: faster-whisper resets the prompt after a hot one.
        steps += [(t, retry_options(options, r)) for t, r in zip(sorted(t for t in options.temperatures if t > 0),
                                                                  retries)]
        decodes = []
        for temperature, step_options in steps:
            result, avg_logprob, _, compression_ratio = super().generate_with_fallback(
                encoder_output, prompt, tokenizer, step_options)
            decode = (result, avg_logprob, temperature, compression_ratio)
            if passes(avg_logprob, compression_ratio, result.no_speech_prob, options):
                return decode
            decodes.append(decode)
        not_loops = [d for d in decodes if options.compression_ratio_threshold is None
                     or d[3] <= options.compression_ratio_threshold]
        result, avg_logprob, _, compression_ratio = max(not_loops or decodes, key=lambda d: d[1])
        # With the last temperature tried, as faster-whisper does: a window that failed every
        # attempt resets the prompt (when text conditions the next window).
        return result, avg_logprob, steps[-1][0], compression_ratio
