"""VGGish: key layout, log-mel front end against a naive numpy version, network order, PCA, files."""
import math

import numpy as np
import pytest
import torch

from mm_diffusion.evaluation import encoders as enc
from mm_diffusion.testing import encoders as fakes
from mm_diffusion.evaluation.audio_features import log_mel_spectrogram, mel_filterbank, resample
from mm_diffusion.evaluation.vggish import VGGish, waveform_to_examples


def read_tsv(path):
    rows = []
    for line in open(path, encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        key, shape = line.rstrip("\n").split("\t")
        rows.append((key, () if shape == "scalar" else tuple(int(d) for d in shape.split("x"))))
    return rows


@pytest.fixture(scope="module")
def vggish_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vggish")
    weights = fakes.make_random_vggish_file(folder / "vggish-10086976.pth",
                                          pca_path=folder / "vggish_pca_params-970ea276.pth", seed=0)
    return weights, folder / "vggish_pca_params-970ea276.pth"


@pytest.fixture(scope="module")
def encoder(vggish_files):
    return enc.load_audio_encoder("vggish", vggish_files[0])


def test_state_dict_matches_published_tsv(fixtures_dir):
    expected = read_tsv(fixtures_dir / "vggish_state_dict.tsv")
    net = VGGish()
    assert [(k, tuple(v.shape)) for k, v in net.state_dict().items()] == expected
    assert sum(p.numel() for p in net.parameters()) == 72157696
    assert not net.pproc.pca_eigen_vectors.requires_grad


def naive_log_mel(wave):
    """numpy, straight from the notes: 400/160 periodic-Hann frames, |rfft 512|, HTK mel 125-7500 Hz, ln(+0.01)."""
    n_frames = 1 + (len(wave) - 400) // 160
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)
    frames = np.stack([wave[i * 160:i * 160 + 400] * window for i in range(n_frames)])
    mag = np.abs(np.fft.rfft(frames, 512))
    mel = lambda f: 1127.0 * np.log(1 + f / 700.0)  # noqa: E731
    bins = mel(np.linspace(0, 8000, 257))
    edges = np.linspace(mel(125.0), mel(7500.0), 66)
    weights = np.zeros((257, 64))
    for i in range(64):
        lo, c, hi = edges[i:i + 3]
        for b in range(257):
            weights[b, i] = max(0.0, min((bins[b] - lo) / (c - lo), (hi - bins[b]) / (hi - c)))
    weights[0] = 0.0
    return np.log(mag @ weights + 0.01)


def test_log_mel_matches_naive_reference():
    wave = np.random.default_rng(0).uniform(-0.5, 0.5, 25600)
    ours = log_mel_spectrogram(torch.from_numpy(wave)[None])[0].numpy()
    ref = naive_log_mel(wave)
    assert ours.shape == ref.shape == (158, 64)  # 1.6 s at 16 kHz: 158 frames
    np.testing.assert_allclose(ours, ref, atol=1e-9)
    bank = mel_filterbank()
    assert bank.shape == (257, 64) and bank[0].abs().sum() == 0
    assert abs(bank.max().item() - 0.996) < 1e-3  # the largest sampled weight the notes report


def test_tone_lands_in_the_right_mel_band():
    t = np.arange(16000) / 16000.0
    frames = log_mel_spectrogram(torch.from_numpy(np.sin(2 * np.pi * 1000.0 * t))[None])[0]
    band = int(frames.mean(0).argmax())
    edges = np.linspace(1127 * np.log(1 + 125 / 700), 1127 * np.log(1 + 7500 / 700), 66)
    centre_hz = 700 * (np.exp(edges[band + 1] / 1127) - 1)
    assert abs(centre_hz - 1000.0) < 100.0


def test_examples():
    assert waveform_to_examples(torch.zeros(2, 25600)).shape == (2, 1, 96, 64)  # 1.6 s -> one example
    assert waveform_to_examples(torch.zeros(1, 15600)).shape == (1, 1, 96, 64)
    assert waveform_to_examples(torch.zeros(1, 16000 * 3)).shape == (1, 3, 96, 64)
    with pytest.raises(ValueError, match="15600"):
        waveform_to_examples(torch.zeros(1, 15599))


def test_network_flattens_in_tensorflow_order_and_relu_option():
    torch.manual_seed(0)
    net = fakes.randomize_weights(VGGish(), 0).eval()
    x = torch.randn(3, 1, 96, 64)
    with torch.no_grad():
        out = net(x)
        feat = net.features(x)
        assert feat.shape == (3, 512, 6, 4)
        flat = torch.transpose(torch.transpose(feat, 1, 3), 1, 2).reshape(3, -1)  # torchvggish's NHWC order
        ref = net.embeddings[4](torch.relu(net.embeddings[2](torch.relu(net.embeddings[0](flat)))))
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
        assert (out < 0).any()  # no final ReLU by default (common FAD)
        net.final_relu = True
        torch.testing.assert_close(net(x), torch.relu(ref), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r"\[N, 1, 96, 64\]"):
        net(torch.zeros(1, 1, 64, 96))


def test_encoder_round_trip_and_shapes(vggish_files, encoder):
    saved = torch.load(vggish_files[0], weights_only=True)
    assert len(saved) == 18 and not any(k.startswith("pproc") for k in saved)
    for key, value in saved.items():
        assert torch.equal(encoder.network.state_dict()[key], value), key
    assert encoder.sample_rate == 16000 and encoder.feature_dim == 128 and encoder.name == "vggish"
    assert encoder.fad_scale == 1.0 and "unscaled" in encoder.fad_scale_note
    audio = torch.rand(4, 1, 25600) * 2 - 1
    emb = encoder(audio, 16000)
    assert emb.shape == (4, 128) and emb.dtype == torch.float32 and torch.isfinite(emb).all()
    # "first": the first 0.96-s example; the rest of the clip does not matter
    changed = audio.clone()
    changed[..., 15600:] = 0
    # batch-size-dependent oneDNN kernels differ in the last float32 bits on some CPUs: bounds relative to the scale
    tight = dict(atol=1e-5 * emb.abs().max().item(), rtol=1.3e-6)
    torch.testing.assert_close(encoder(changed, 16000), emb, **tight)
    # stereo -> channel mean; other rates are resampled to 16 kHz
    stereo = torch.cat([audio[:1], audio[:1]], dim=1)
    torch.testing.assert_close(encoder(stereo, 16000), emb[:1], **tight)
    at_44k = resample(audio[:1], 16000, 44100)
    torch.testing.assert_close(encoder(at_44k, 44100), emb[:1], atol=0.05 * emb.abs().max().item(), rtol=0)
    with pytest.raises(ValueError, match="sample_rate"):
        encoder(audio, 0)
    with pytest.raises(ValueError, match=r"\[N, C, L\]"):
        encoder(torch.zeros(1, 1, 1, 100), 16000)


def test_mean_over_examples_option(vggish_files, encoder):
    mean_enc = enc.load_audio_encoder("vggish", vggish_files[0], examples="mean", clip_seconds=2.0)
    assert mean_enc.clip_samples == 32000
    audio = torch.rand(2, 1, 32000) * 2 - 1
    ex = waveform_to_examples(audio[:, 0])
    assert ex.shape[1] == 2
    with torch.no_grad():
        per = encoder.network(ex.reshape(4, 1, 96, 64)).view(2, 2, 128)
    torch.testing.assert_close(mean_enc(audio, 16000), per.mean(1), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="examples"):
        enc.load_audio_encoder("vggish", vggish_files[0], examples="all")


@pytest.mark.parametrize("fmt", ["torch", "numpy", "npz"])
def test_pca_postprocessing(tmp_path, vggish_files, encoder, fmt):
    weights, pca_file = vggish_files
    pca = torch.load(pca_file, weights_only=True)
    if fmt == "numpy":  # torchvggish's published PCA file may hold numpy arrays
        pca_path = tmp_path / "vggish_pca_params-970ea276.pth"
        torch.save({k: v.numpy() for k, v in pca.items()}, pca_path)
    elif fmt == "npz":  # Google's original vggish_pca_params.npz
        pca_path = tmp_path / "vggish_pca_params.npz"
        np.savez(pca_path, pca_eigen_vectors=pca["pca_eigen_vectors"].numpy(), pca_means=pca["pca_means"].numpy())
    else:
        pca_path = None  # found next to the weights by its published name
    pca_enc = enc.load_audio_encoder("vggish", weights, pca=True, pca_path=pca_path)
    audio = torch.rand(3, 1, 16000) * 2 - 1
    raw = encoder(audio, 16000).double()
    ev = pca["pca_eigen_vectors"].double()
    means = pca["pca_means"].double().reshape(-1, 1)
    ref = torch.round((torch.clamp((ev @ (raw.T - means)).T, -2, 2) + 2) * 255 / 4)
    out = pca_enc(audio, 16000)
    assert out.shape == (3, 128)
    assert ((out.double() - ref).abs() <= 1).all()  # quantisation may round the other way at a boundary
    assert out.min() >= 0 and out.max() <= 255
    assert pca_enc.settings["pca"] is True and "pca" in pca_enc.settings["weights"]


def test_pca_file_missing(tmp_path, vggish_files):
    lone = tmp_path / "vggish-10086976.pth"
    lone.symlink_to(vggish_files[0])
    with pytest.raises(FileNotFoundError, match="vggish_pca_params-970ea276.pth"):
        enc.load_audio_encoder("vggish", lone, pca=True)
    enc.load_audio_encoder("vggish", lone)  # without PCA the file is not needed
