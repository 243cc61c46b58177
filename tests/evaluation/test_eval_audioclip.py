"""AudioCLIP audio branch: key layout, FBSP / spectrogram against a naive reading of the reference notes,
encoder preprocessing, loading from a full AudioCLIP-style file."""
import logging
import math

import numpy as np
import pytest
import torch

from mm_diffusion.evaluation import encoders as enc
from mm_diffusion.testing import encoders as fakes
from mm_diffusion.evaluation.audio_features import periodic_blackman_harris
from mm_diffusion.evaluation.audioclip import ESResNeXtFBSP, LinearFBSP


def read_tsv(path):
    rows = []
    for line in open(path, encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        key, shape = line.rstrip("\n").split("\t")
        rows.append((key, () if shape == "scalar" else tuple(int(d) for d in shape.split("x"))))
    return rows


@pytest.fixture(scope="module")
def ac_file(tmp_path_factory):
    return fakes.make_random_audioclip_file(tmp_path_factory.mktemp("ac") / "AudioCLIP-Full-Training.pt", seed=0)


@pytest.fixture(scope="module")
def encoder(ac_file):
    return enc.load_audio_encoder("audioclip", ac_file)


def test_state_dict_matches_published_tsv(fixtures_dir):
    expected = read_tsv(fixtures_dir / "audioclip_audio_state_dict.tsv")
    net = ESResNeXtFBSP()
    got = [("audio." + k, tuple(v.shape)) for k, v in net.state_dict().items()]
    assert got == expected
    assert len(got) == 370
    assert sum(p.numel() for p in net.parameters()) == 32104771
    assert net.state_dict()["fbsp.bias"].numel() == 0
    # every audio.* row of the full-model listing is covered, nothing else
    full = [k for k, _ in read_tsv(fixtures_dir / "audioclip_full_state_dict.tsv") if k.startswith("audio.")]
    assert full == [k for k, _ in expected]


def test_window_is_scipy_periodic_blackman_harris():
    from scipy.signal import get_window

    ref = get_window("blackmanharris", 1654, fftbins=True)
    np.testing.assert_allclose(periodic_blackman_harris(1654).numpy(), ref, atol=1e-12)
    np.testing.assert_allclose(ESResNeXtFBSP().window.numpy(), ref, atol=1e-7)


def naive_fbsp_weight(m, fb, fc, n_fft=2048):
    """Complex W [K, n_fft] written straight from the notes (numpy complex128)."""
    t = np.pi * np.linspace(-1, 1, n_fft) + 1e-8
    m, fb, fc = (np.asarray(v, np.float64)[:, None] for v in (m, fb, fc))
    kernel = np.exp(-1j * fc * t)
    arg = fb * t / (m + 1e-8)
    win = np.where(arg == 0, 1.0, np.sin(arg) / np.where(arg == 0, 1.0, arg))
    win_pow = np.abs(win) ** m * np.exp(1j * m * np.arctan2(0.0, win))
    return np.sqrt(fb) * win_pow * kernel / np.sqrt(n_fft)


def test_fbsp_weight_matches_the_formula():
    fbsp = LinearFBSP(1025, 2048)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        fbsp.m.copy_(torch.rand(1025, generator=gen) * 2.0)
        fbsp.fb.copy_(0.5 + torch.rand(1025, generator=gen))
        fbsp.fc.add_(torch.randn(1025, generator=gen))
    re, im = fbsp.complex_weight()
    ref = naive_fbsp_weight(fbsp.m.detach().numpy(), fbsp.fb.detach().numpy(), fbsp.fc.detach().numpy())
    t = np.pi * np.linspace(-1, 1, 2048)
    arg = fbsp.fb.detach().numpy()[:, None] * t / (fbsp.m.detach().numpy()[:, None] + 1e-8)
    assert (np.sin(arg) / arg < 0).mean() > 0.05  # the negative-base branch of the power is exercised
    np.testing.assert_allclose(re.numpy(), ref.real, atol=1e-9)
    np.testing.assert_allclose(im.numpy(), ref.imag, atol=1e-9)


def test_default_fbsp_is_a_dft():
    re, im = LinearFBSP(1025, 2048).complex_weight()
    k = np.arange(1025)[:, None]
    t = np.pi * np.linspace(-1, 1, 2048)[None, :] + 1e-8
    np.testing.assert_allclose(re.numpy(), np.cos(k * t) / np.sqrt(2048), atol=1e-6)
    np.testing.assert_allclose(im.numpy(), -np.sin(k * t) / np.sqrt(2048), atol=1e-6)


def naive_spectrogram(net, wave):
    """[L] int16-range numpy -> [3, 341, frames] dB, step by step as the notes describe."""
    x = (wave.astype(np.float64) + 32768) * 2 / 65535 - 1
    length = len(x)
    n_frames = 1 + math.ceil((length - 1654) / 561)
    total = (n_frames - 1) * 561 + 1654
    left = (total - length) // 2
    x = np.concatenate([np.zeros(left), x, np.zeros(total - length - left)])
    window = net.window.double().numpy()
    frames = np.stack([x[i * 561:i * 561 + 1654] * window for i in range(n_frames)])
    frames = np.pad(frames, ((0, 0), (197, 197)))
    w = naive_fbsp_weight(net.fbsp.m.detach().numpy(), net.fbsp.fb.detach().numpy(), net.fbsp.fc.detach().numpy())
    spec = frames @ w.T  # [frames, 1025] complex (Re = x W_re^T, Im = x W_im^T)
    power = spec.real ** 2 + spec.imag ** 2
    power = power.T[:1023]  # [1023, frames]
    power = np.where(power <= 0, 1e-18, power)
    return (10 * np.log10(power)).reshape(3, 341, n_frames)


def test_spectrogram_matches_naive_reference(ac_file):
    net = enc.load_audio_encoder("audioclip", ac_file).network
    rng = np.random.default_rng(0)
    wave = rng.uniform(-8000, 8000, size=70560)
    spec = net.spectrogram(torch.from_numpy(wave)[None].float())
    assert spec.shape == (1, 3, 341, 124)
    ref = naive_spectrogram(net, wave)
    np.testing.assert_allclose(spec[0].double().numpy(), ref, atol=2e-2)
    # another length: frame count 1 + ceil((L - 1654) / 561)
    short = net.spectrogram(torch.zeros(2, 5000))
    assert short.shape == (2, 3, 341, 1 + math.ceil((5000 - 1654) / 561))


def test_forward_shape_and_channel_sum(ac_file):
    net = enc.load_audio_encoder("audioclip", ac_file).network
    wave = torch.randn(1, 2, 4000) * 3000
    with torch.no_grad():
        both = net(wave)
        pooled = [net.embed_image(net.spectrogram(wave[:, c])) for c in range(2)]
        ref = net.fc(pooled[0] + pooled[1])
    assert both.shape == (1, 1024)
    torch.testing.assert_close(both, ref, atol=1e-3, rtol=1e-4)
    assert torch.isfinite(both).all()


def test_encoder_preprocessing(encoder):
    assert encoder.sample_rate == 44100 and encoder.clip_samples == 70560
    assert encoder.feature_dim == 1024 and encoder.name == "audioclip"
    assert encoder.fad_scale == 1e4 and "1e4" in encoder.fad_scale_note
    t = torch.arange(25600) / 16000.0
    tone = 0.5 * torch.sin(2 * math.pi * 440.0 * t)
    stereo = torch.stack([tone, -tone * 0.5], 0)[None]  # [1, 2, 25600] at 16 kHz
    wave = encoder.preprocess(stereo, 16000)
    assert wave.shape == (1, 70560)  # 1.6 s at 44.1 kHz
    # mono by channel mean (0.25 * tone = 0.125 sin), resampled: the 440 Hz tone at 44.1 kHz
    expected = 0.125 * torch.sin(2 * math.pi * 440.0 * torch.arange(70560) / 44100.0)
    torch.testing.assert_close(wave[0, 1000:-1000], expected[1000:-1000], atol=2e-3, rtol=0)
    # crop / zero-pad at the end
    long = encoder.preprocess(torch.ones(2, 1, 80000), 44100)
    assert long.shape == (2, 70560) and torch.all(long == 1)
    short = encoder.preprocess(torch.ones(1, 1000), 44100)
    assert short.shape == (1, 70560) and short[0, :1000].eq(1).all() and short[0, 1000:].eq(0).all()


def test_encoder_output_is_per_clip_and_deterministic(encoder):
    audio = torch.rand(2, 1, 25600) * 2 - 1
    batch = encoder(audio, 16000)
    single = encoder(audio[1:2], 16000)
    assert batch.shape == (2, 1024) and batch.dtype == torch.float32
    # BatchNorm in eval mode: a clip's embedding does not depend on the other clips of the batch. The embedding
    # entries reach ~900, and oneDNN picks batch-size-dependent kernels (on some CPUs they differ in the last
    # float32 bits), so the absolute bound is relative to the embedding's scale: 1e-5 of its largest entry.
    torch.testing.assert_close(batch[1:2], single, atol=1e-5 * batch.abs().max().item(), rtol=1e-4)
    assert not torch.allclose(batch[0], batch[1])
    assert not encoder.network.bn1.training


class Recorder(torch.nn.Module):
    """Stand-in network that records what the encoder feeds it."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, wave):
        self.seen.append(wave.clone())
        return torch.zeros(wave.shape[0], 1024)


def test_waveform_scale_option():
    audio = torch.rand(2, 1, 16000) * 2 - 1
    for scale in (32768.0, 1.0):
        rec = Recorder()
        encoder = enc.AudioCLIPEncoder(rec, waveform_scale=scale)
        assert encoder(audio, 44100).shape == (2, 1024)
        fed = rec.seen[0]
        assert fed.shape == (2, 1, 70560)  # [N, C=1, 1.6 s at 44.1 kHz]
        torch.testing.assert_close(fed[:, 0, :16000], audio[:, 0] * scale)
        assert encoder.settings["waveform_scale"] == scale


def test_loads_only_audio_keys_and_logs_the_rest(ac_file, caplog):
    with caplog.at_level(logging.DEBUG, logger="mm_diffusion.evaluation.encoders"):
        encoder = enc.load_audio_encoder("audioclip", ac_file)
    assert "logit_scale_ai" in caplog.text and "visual.conv1.weight" in caplog.text
    saved = torch.load(ac_file, weights_only=True)
    for key, value in encoder.network.state_dict().items():
        assert torch.equal(value, saved["audio." + key]), key


def test_bare_audio_state_dict_loads(tmp_path, encoder):
    torch.save(encoder.network.state_dict(), tmp_path / "audio_only.pt")
    again = enc.load_audio_encoder("audioclip", tmp_path / "audio_only.pt")
    for key, value in encoder.network.state_dict().items():
        assert torch.equal(again.network.state_dict()[key], value), key


def test_bad_audioclip_file(tmp_path):
    state = {"audio." + k: v for k, v in ESResNeXtFBSP().state_dict().items()}
    state["audio.fc.weight"] = torch.zeros(512, 2048)
    del state["audio.window"]
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError) as err:
        enc.load_audio_encoder("audioclip", tmp_path / "bad.pt")
    assert "missing keys (1): window" in str(err.value)
    assert "fc.weight: file (512, 2048) vs model (1024, 2048)" in str(err.value)

