"""Voice embeddings: resemblyzer's pretrained encoder (its weights ship inside the PyPI package)
over short windows of speech, L2-normalised, for clustering voices and for voiceprints."""
from __future__ import annotations

import numpy as np

from pipeline.engines import Engines, or_default
from pipeline.speakers.options import DiarizationOptions

ENCODER = "voice-encoder"  # its key in an Engines


def voice_encoder(engines: Engines | None = None):
    """resemblyzer's encoder, loaded once per `engines` (pretrained.pt ships inside the package)."""
    def build():
        from resemblyzer import VoiceEncoder  # heavy (torch): loaded when the first mono call needs it

        return VoiceEncoder(device="cpu", verbose=False)
    return or_default(engines).load(ENCODER, build)


EMBED_BATCH = 256  # windows per encoder call


def window_embeddings(samples: np.ndarray, regions: list[tuple[float, float]], options: DiarizationOptions,
                      window: float | None = None, hop: float | None = None, mel: np.ndarray | None = None,
                      engines: Engines | None = None, max_windows: int | None = None):
    """Centres (s) and L2-normalised 256-d embeddings of `window`-second windows every `hop` seconds
    inside speech regions (the options' window and hop unless given); with `max_windows`, only
    that many, spread evenly, are embedded."""
    # Heavy (torch): loaded when the first call needs voice embeddings.
    from resemblyzer import audio as rz_audio
    from resemblyzer import hparams

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
    return np.array(centres), embed_mels(slices, width, engines)


def embed_mels(slices: list[np.ndarray], width: int, engines: Engines | None = None) -> np.ndarray:
    """L2-normalised embeddings of mel spectrogram slices (frames, 40), each cut or zero-padded
    to `width` frames."""
    import torch  # heavy: loaded when the first call needs voice embeddings

    engines = or_default(engines)
    encoder = voice_encoder(engines)
    embeds = []
    # In batches: the LSTM keeps every step's output of a batch (windows x frames x 256 floats),
    # which for all the windows of an hour's call would be GBs.
    for first in range(0, len(slices), EMBED_BATCH):
        chunk = slices[first:first + EMBED_BATCH]
        batch = np.zeros((len(chunk), width, chunk[0].shape[1]), dtype=np.float32)  # short slices: zero-padded
        for k, piece in enumerate(chunk):
            batch[k, :len(piece)] = piece[:width]
        # resemblyzer's torch module is not safe to share between threads: one call at a time.
        with engines.lock(ENCODER), torch.no_grad():
            embeds.append(encoder(torch.from_numpy(batch)).numpy())
    embeds = np.concatenate(embeds)
    return embeds / np.linalg.norm(embeds, axis=1, keepdims=True)
