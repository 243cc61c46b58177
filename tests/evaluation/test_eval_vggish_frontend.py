"""The VGGish log-mel front end against the published parameters, with values worked out by hand.

Published (AudioSet VGGish, vggish_params.py / mel_features.py): 16 kHz mono; 25 ms window (400
samples), 10 ms hop (160), FFT length 512 (next power of two), periodic Hann, magnitude spectrum;
64 mel bands on the HTK scale ``1127 ln(1 + f / 700)`` between 125 and 7500 Hz, triangles with unit
peak; ``ln(mel + 0.01)``; examples of 96 frames (0.96 s) without overlap.
"""
import math

import numpy as np
import pytest
import torch

from mm_diffusion.evaluation.audio_features import log_mel_spectrogram, mel_filterbank, periodic_hann
from mm_diffusion.evaluation.vggish import VGGISH_EXAMPLE_SAMPLES, waveform_to_examples


def test_frame_counts_and_example_length():
    # frames = 1 + (L - 400) // 160
    assert log_mel_spectrogram(torch.zeros(1, 16000, dtype=torch.float64)).shape == (1, 98, 64)
    assert log_mel_spectrogram(torch.zeros(1, 15600, dtype=torch.float64)).shape == (1, 96, 64)
    assert log_mel_spectrogram(torch.zeros(1, 15599, dtype=torch.float64)).shape == (1, 95, 64)
    assert VGGISH_EXAMPLE_SAMPLES == 15600
    assert waveform_to_examples(torch.zeros(2, 2 * 15360 + 240)).shape == (2, 2, 96, 64)  # 192 frames -> 2


def test_silence_is_the_log_offset():
    out = log_mel_spectrogram(torch.zeros(1, 15600, dtype=torch.float64))
    assert torch.all(out == math.log(0.01))  # -4.605170185988091
    assert math.log(0.01) == pytest.approx(-4.605170185988091, abs=1e-15)


def test_periodic_hann_values():
    w = periodic_hann(400).numpy()
    # w[n] = 0.5 - 0.5 cos(2 pi n / 400): 0 at n = 0, 0.5 at n = 100, 1 at n = 200, sum 200
    assert w[0] == 0.0 and w[100] == pytest.approx(0.5, abs=1e-15) and w[200] == 1.0
    assert w.sum() == pytest.approx(200.0, abs=1e-9)
    assert w[1] == pytest.approx(w[399], abs=1e-15)  # periodic: symmetric around n = 200, w[400] would be 0


def test_mel_filterbank_by_hand():
    w = mel_filterbank().numpy()  # [257 FFT bins of 31.25 Hz, 64 bands]
    assert w.shape == (257, 64)
    # edges: 66 points equally spaced in mel between mel(125) = 185.1695 and mel(7500) = 2773.3319,
    # spacing 39.81788 mel. Bin 4 (125 Hz) and bin 240 (7500 Hz) sit on the outer edges: weight 0.
    nonzero = np.nonzero(w.sum(axis=1))[0]
    assert nonzero[0] == 5 and nonzero[-1] == 239
    # bin 32 = 1000 Hz: mel 999.9907, i.e. 20.4637 spacings above mel(125): on the falling side of
    # band 19 (weight 21 - 20.4637 = 0.5363) and the rising side of band 20 (0.4637); no other band.
    assert np.nonzero(w[32])[0].tolist() == [19, 20]
    assert w[32, 19] == pytest.approx(0.5363006, abs=1e-6)
    assert w[32, 20] == pytest.approx(0.4636994, abs=1e-6)
    # every band is a triangle with its peak below 1 (no bin exactly on a centre) and no normalisation
    assert np.all(w.max(axis=0) <= 1.0) and np.all(w.max(axis=0) > 0.5)


def test_a_1000_hz_tone_by_hand():
    """amplitude a at exactly bin 32 (1000 Hz): |X[32]| = a * sum(w) / 2 = 100 a, up to the leakage of
    the image at -1000 Hz (< 0.1 percent); the tone's energy lands in band 19 (weight 0.5363 > 0.4637)."""
    from mm_diffusion.evaluation.audio_features import stft_magnitude

    a = 0.5
    t = np.arange(15600) / 16000.0
    wave = torch.from_numpy(a * np.cos(2 * np.pi * 1000.0 * t))[None]
    mag = stft_magnitude(wave, 400, 160, 512)[0]
    assert mag.shape == (96, 257)
    assert torch.allclose(mag[:, 32], torch.full((96,), 100 * a, dtype=torch.float64), rtol=1e-3)
    out = log_mel_spectrogram(wave)[0]
    assert out.shape == (96, 64)
    assert torch.all(out.argmax(dim=1) == 19)
    assert float(out[0, 0]) < float(out[0, 19]) - 4  # far bands stay far below
