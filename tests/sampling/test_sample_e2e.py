"""``python -m mm_diffusion.sample`` end to end on a tiny random model and a tiny SR model (CPU, in-process)."""
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from mm_diffusion import sample as sample_job
from mm_diffusion.data import media
from mm_diffusion.cli import flags
from mm_diffusion.sampling.layout import OutputLayout, unconditional_products
from mm_diffusion.testing.checkpoints import TEST_SR_FLAGS, write_random_checkpoint, write_random_sr_checkpoint
from mm_diffusion.sampling.sr_stage import SRStage

FRAMES, SIZE, LENGTH, FPS, RATE, LARGE = 4, 16, 1600, 10, 4000, TEST_SR_FLAGS["large_size"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    mm = write_random_checkpoint(str(root / "run" / "model000007.pt"), "tiny")
    sr = write_random_sr_checkpoint(str(root / "sr" / "sr_model.pt"))
    return {"mm": mm, "sr": sr, "root": root}


def _argv(checkpoints, out, *extra):
    # no model flags: the architecture comes from the run's config.json next to each checkpoint
    return ["--multimodal_model_path", checkpoints["mm"], "--sr_model_path", checkpoints["sr"], "--output_dir", str(out),
            "--all_save_num", "3", "--batch_size", "2", "--steps", "1", "--sr_steps", "1", "--progress", "False",
            *extra]


@pytest.fixture(scope="module")
def first_run(checkpoints, tmp_path_factory):
    out = tmp_path_factory.mktemp("samples")
    summary = sample_job.main(_argv(checkpoints, out))
    return out, summary


def _layout(out):
    return OutputLayout(out / "model000007.pt", "dpm_solver", unconditional_products(FRAMES, "mp4", with_sr=True))


def _luma(x):
    return x.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def test_expected_files(first_run):
    out, summary = first_run
    stats = summary["models"][next(iter(summary["models"]))]
    assert stats["existing"] == 0 and stats["made"] == 3
    layout = _layout(out)
    assert layout.complete(10) == [0, 1, 2]
    for sub in ("original", "sr_mp4", "audios", "img"):
        names = sorted(n for n in os.listdir(out / "model000007.pt" / sub) if not n.startswith("."))
        assert len(names) == (3 * FRAMES if sub == "img" else 3), (sub, names)
    assert (out / "log.txt").read_text().count("making 3") == 1


@pytest.mark.parametrize("index", [0, 2])
def test_media_properties(first_run, index):
    out, _ = first_run
    paths = _layout(out).paths(index)
    info = media.probe_video(paths["original"][0])
    assert info["num_source_frames"] == FRAMES and (info["width"], info["height"]) == (SIZE, SIZE)
    assert info["video_end"] - info["video_start"] == pytest.approx(FRAMES / FPS, abs=1e-3)
    assert info["has_audio"]
    wav, rate = sf.read(paths["audio"][0], dtype="float32")
    assert rate == RATE and wav.shape == (LENGTH,)           # 0.4 s at 4 kHz, the video's duration
    frames, audio, fps, _ = media.read_video(paths["original"][0], audio_rate=RATE)
    assert fps == pytest.approx(FPS) and frames.shape == (FRAMES, SIZE, SIZE, 3)
    # the mp4's audio is the wav, up to AAC coding error
    assert np.corrcoef(wav, audio[:LENGTH])[0, 1] > 0.9
    assert np.sqrt(np.mean((wav - audio[:LENGTH]) ** 2)) < 0.35 * np.sqrt(np.mean(wav ** 2))
    # the PNG frames are the mp4's frames, in order (H.264 keeps the luma)
    for i in range(FRAMES):
        png = np.asarray(Image.open(paths["frames"][i]).convert("RGB"))
        assert png.shape == (SIZE, SIZE, 3)
        assert np.corrcoef(_luma(png).ravel(), _luma(frames[i]).ravel())[0, 1] > 0.95
    # SR: the same number of frames at large_size, the same audio
    sr_info = media.probe_video(paths["sr"][0])
    assert sr_info["num_source_frames"] == FRAMES and (sr_info["width"], sr_info["height"]) == (LARGE, LARGE)
    sr_frames, sr_audio, _, _ = media.read_video(paths["sr"][0], audio_rate=RATE)
    assert sr_frames.shape == (FRAMES, LARGE, LARGE, 3)
    np.testing.assert_allclose(sr_audio[:LENGTH], audio[:LENGTH], atol=1e-6)


def test_samples_are_distinct(first_run):
    out, _ = first_run
    layout = _layout(out)
    wavs = [sf.read(layout.paths(k)["audio"][0], dtype="float32")[0] for k in range(3)]
    assert not np.allclose(wavs[0], wavs[1]) and not np.allclose(wavs[1], wavs[2])


def test_rerun_makes_nothing_then_fills_gaps(first_run, checkpoints):
    out, _ = first_run
    layout = _layout(out)
    every = [p for k in range(3) for ps in layout.paths(k).values() for p in ps]
    before = {p: os.stat(p).st_mtime_ns for p in every}
    summary = sample_job.main(_argv(checkpoints, out))
    stats = next(iter(summary["models"].values()))
    assert stats["existing"] == 3 and stats["made"] == 0
    assert {p: os.stat(p).st_mtime_ns for p in every} == before
    # a sample with a missing file is made again (only that one), and --all_save_num 4 adds one more
    os.remove(layout.paths(1)["frames"][2])
    summary = sample_job.main(_argv(checkpoints, out) + ["--all_save_num", "4"])
    stats = next(iter(summary["models"].values()))
    assert stats["existing"] == 2 and stats["made"] == 2
    assert layout.complete(10) == [0, 1, 2, 3]
    assert os.stat(layout.paths(0)["original"][0]).st_mtime_ns == before[layout.paths(0)["original"][0]]


class _NearestUpsampler(torch.nn.Module):
    """Stand-in SR model whose x0 prediction is the nearest-neighbour upsampled low-resolution frame."""

    num_classes = None

    def forward(self, x, t, low_res=None, y=None):
        return torch.nn.functional.interpolate(low_res, x.shape[-2:], mode="nearest")


@pytest.mark.parametrize("method", ["ddim", "dpm_solver", "dpm_solver++"])
def test_super_resolve_follows_each_frame(method):
    from mm_diffusion.diffusion import create_gaussian_diffusion
    from mm_diffusion.sampling.sr_stage import super_resolve

    diffusion = create_gaussian_diffusion(steps=100, predict_xstart=True, timestep_respacing="ddim4")
    video = torch.rand(2, 3, 3, 4, 4) * 2 - 1
    noise = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    out = super_resolve(_NearestUpsampler(), video, diffusion=diffusion, large_size=8, method=method, steps=3,
                        noise=noise, generator=torch.Generator().manual_seed(0), frame_batch=4)
    want = video.repeat_interleave(2, dim=-1).repeat_interleave(2, dim=-2)
    if method != "ddim":
        # the published SR solver stops at t = 1/N: x = alpha x0 + sigma eps_T exactly for a constant x0 model
        ab = diffusion.alphas_cumprod
        eps = (noise.reshape(want.shape) - ab[-1] ** 0.5 * want) / (1 - ab[-1]) ** 0.5
        want = (ab[0] ** 0.5 * want + (1 - ab[0]) ** 0.5 * eps).clamp(-1, 1)
    assert out.shape == (2, 3, 3, 8, 8)
    torch.testing.assert_close(out, want, rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="large_size 2"):
        super_resolve(_NearestUpsampler(), video, diffusion=diffusion, large_size=2)


def test_load_noise_makes_sr_deterministic(tmp_path, checkpoints):
    model, diffusion = flags.create_sr_model_and_diffusion(TEST_SR_FLAGS)
    model.load_state_dict(torch.load(checkpoints["sr"], weights_only=True))
    model.eval()
    video = torch.rand(1, 2, 3, SIZE, SIZE) * 2 - 1
    two = video.expand(2, -1, -1, -1, -1)
    shared = torch.randn(3, LARGE, LARGE)
    kw = dict(large_size=LARGE, steps=1)
    a = SRStage(model, diffusion, seed=1, shared_noise=shared, **kw)(two, [0, 1])
    b = SRStage(model, diffusion, seed=2, shared_noise=shared, **kw)(video, [5])
    assert a.shape == (2, 2, 3, LARGE, LARGE)
    # with a saved noise image the result depends only on the low-resolution frames (not seed, index, batch)
    torch.testing.assert_close(a[0], a[1], rtol=0, atol=1e-5)
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=1e-5)
    c = SRStage(model, diffusion, seed=1, **kw)(two, [0, 1])
    assert (c[0] - c[1]).abs().max() > 1e-3    # per-clip noise otherwise
    # the same noise for every frame of a clip, batched over frames: frame_batch does not change the result
    d = SRStage(model, diffusion, seed=1, frame_batch=3, **kw)(two, [0, 1])
    torch.testing.assert_close(c, d, rtol=0, atol=1e-5)


def test_load_noise_flag_end_to_end(tmp_path, checkpoints):
    rng = np.random.RandomState(0)
    for name in ("a", "b"):
        np.save(tmp_path / f"{name}.npy", rng.randn(3, LARGE, LARGE).astype(np.float32))
    base, sr = [], []
    for name in ("a", "b"):
        out = tmp_path / name
        sample_job.main(_argv(checkpoints, out, "--load_noise", str(tmp_path / f"{name}.npy"), "--all_save_num", "1",
                              "--batch_size", "1"))
        base.append(np.stack([np.asarray(Image.open(p)) for p in _layout(out).paths(0)["frames"]]))
        sr.append(media.read_video(_layout(out).paths(0)["sr"][0])[0].astype(np.float64))
    assert np.array_equal(base[0], base[1])            # same seed: same base sample
    assert np.abs(sr[0] - sr[1]).mean() > 2.0           # the SR stage started from the saved noise
    np.save(tmp_path / "bad.npy", np.zeros((3, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"\[3, 32, 32\]"):
        sample_job.main(_argv(checkpoints, tmp_path / "c", "--load_noise", str(tmp_path / "bad.npy")))


def test_bad_inputs(tmp_path, checkpoints, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        sample_job.main(["--multimodal_model_path", str(tmp_path / "nowhere.pt"), "--output_dir", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="sr_model_path"):
        sample_job.main(_argv(checkpoints, tmp_path / "x") + ["--sr_model_path", str(tmp_path / "no_sr.pt")])
    from mm_diffusion.runs import locate as sc

    monkeypatch.setattr(sc, "ASSETS_DIR", str(tmp_path / "no_assets"))
    with pytest.raises(FileNotFoundError, match="bash ssh_scripts/multimodal_train.sh"):
        sample_job.main(["--search_dir", str(tmp_path / "outputs"), "--output_dir", str(tmp_path / "o")])
