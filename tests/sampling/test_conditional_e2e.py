"""Zero-shot audio-to-video and video-to-audio: CLIs end to end on synthetic reference clips, and the library."""
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from mm_diffusion import audio2video, video2audio
from mm_diffusion.data import ClipDataset, media
from mm_diffusion.data.synthetic.cli import main as synthetic_main
from mm_diffusion.diffusion import create_gaussian_diffusion
from mm_diffusion.cli import flags
from mm_diffusion.sampling.conditional import ConditionSource, generate_conditional
from mm_diffusion.sampling.layout import OutputLayout, conditional_products
from mm_diffusion.testing.checkpoints import TEST_SR_FLAGS, randomize_, write_random_checkpoint, \
    write_random_sr_checkpoint

FRAMES, SIZE, LENGTH, FPS, RATE = 4, 16, 1600, 10, 4000


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("cond")
    ref = root / "ref"
    assert synthetic_main(["--out", str(ref), "--num", "3", "--video_size", f"{FRAMES},3,{SIZE},{SIZE}",
                           "--audio_size", f"1,{LENGTH}", "--fps", str(FPS), "--audio_rate", str(RATE),
                           "--no_progress"]) in (0, None)
    mm = write_random_checkpoint(str(root / "run" / "model000003.pt"), "tiny")
    sr = write_random_sr_checkpoint(str(root / "sr" / "sr.pt"))
    clips = ClipDataset(str(ref), video_size=(FRAMES, 3, SIZE, SIZE), audio_size=(1, LENGTH), video_fps=FPS,
                        audio_fps=RATE, deterministic=True, progress=False)
    return {"root": root, "ref": ref, "mm": mm, "sr": sr, "clips": clips}


def _argv(setup, out, *extra):
    return ["--multimodal_model_path", setup["mm"], "--ref_path", str(setup["ref"]), "--output_dir", str(out),
            "--all_save_num", "2", "--batch_size", "2", "--steps", "1", "--progress", "False", *extra]


@pytest.fixture(scope="module")
def a2v_run(setup):
    out = setup["root"] / "a2v"
    audio2video.main(_argv(setup, out, "--sr_model_path", setup["sr"], "--sr_steps", "1"))
    return OutputLayout(out / "model000003.pt", "dpm_solver", conditional_products(FRAMES, "mp4", with_sr=True))


@pytest.fixture(scope="module")
def v2a_run(setup):
    out = setup["root"] / "v2a"
    video2audio.main(_argv(setup, out, "--sample_fn", "ddpm", "--timestep_respacing", "3", "--classifier_scale", "1.0"))
    return OutputLayout(out / "model000003.pt", "ddpm", conditional_products(FRAMES, "mp4"))


def _decoded(path):
    frames, audio, _, _ = media.read_video(path, fps=FPS, audio_rate=RATE)
    return frames, audio[:LENGTH]


def test_audio_to_video_keeps_the_audio(setup, a2v_run):
    assert a2v_run.complete(5) == [0, 1]
    for k in range(2):
        paths = a2v_run.paths(k)
        clip = setup["clips"][k]
        wav, rate = sf.read(paths["audio"][0], dtype="float32")
        assert rate == RATE
        np.testing.assert_allclose(wav, clip["audio"][0].numpy(), atol=1.0 / 32767 + 1e-6)   # PCM-16 of the condition
        gt_frames, gt_audio = _decoded(paths["gt"][0])
        rec_frames, rec_audio = _decoded(paths["reconstruct"][0])
        np.testing.assert_array_equal(rec_audio, gt_audio)      # the same condition, encoded the same way
        # gt/ holds the reference clip: its frames are the condition's (up to H.264)
        want = media.video_to_uint8(clip["video"]).astype(np.float64)
        assert np.abs(gt_frames.astype(np.float64) - want).mean() < 6.0
        assert np.abs(rec_frames.astype(np.float64) - gt_frames).mean() > 10.0   # the video was generated
        sr_info = media.probe_video(paths["sr"][0])
        assert sr_info["num_source_frames"] == FRAMES
        assert (sr_info["width"], sr_info["height"]) == (TEST_SR_FLAGS["large_size"],) * 2
        np.testing.assert_array_equal(_decoded(paths["sr"][0])[1], gt_audio)


def test_video_to_audio_keeps_the_video(setup, v2a_run):
    assert v2a_run.complete(5) == [0, 1]
    assert not os.path.exists(os.path.join(v2a_run.root, "sr"))
    for k in range(2):
        paths = v2a_run.paths(k)
        clip = setup["clips"][k]
        pngs = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths["frames"]])
        np.testing.assert_array_equal(pngs, media.video_to_uint8(clip["video"]))   # exactly the condition's frames
        gt_frames, gt_audio = _decoded(paths["gt"][0])
        rec_frames, rec_audio = _decoded(paths["reconstruct"][0])
        np.testing.assert_array_equal(rec_frames, gt_frames)
        wav, _ = sf.read(paths["audio"][0], dtype="float32")
        assert np.abs(wav - clip["audio"][0].numpy()).mean() > 0.05                 # the audio was generated


def test_rerun_and_bad_ref(setup, a2v_run, tmp_path):
    summary = audio2video.main(_argv(setup, a2v_run.root.rsplit(os.sep, 1)[0], "--sr_model_path", setup["sr"],
                                     "--sr_steps", "1"))
    stats = next(iter(summary["models"].values()))
    assert stats["existing"] == 2 and stats["made"] == 0
    with pytest.raises(FileNotFoundError, match="not_there"):
        video2audio.main(_argv(setup, tmp_path / "o", "--ref_path", str(tmp_path / "not_there")))
    with pytest.raises(ValueError, match="ref_path is required"):
        video2audio.main(["--multimodal_model_path", setup["mm"], "--output_dir", str(tmp_path / "p"),
                          "--all_save_num", "1"])


# ------------------------------------------------------------------------------------------ library level
@pytest.fixture(scope="module")
def tiny(setup):
    model, _ = flags.create_model_and_diffusion(flags.config_to_flags("tiny"))
    randomize_(model).eval()
    source = ConditionSource(str(setup["ref"]), (FRAMES, 3, SIZE, SIZE), (1, LENGTH), FPS, RATE, progress=False)
    return model, source.batch([0, 1])


@pytest.mark.parametrize("method", ["ddpm", "ddim", "dpm_solver", "dpm_solver++"])
@pytest.mark.parametrize("mode", ["audio2video", "video2audio"])
def test_every_sampler_keeps_the_condition(tiny, method, mode):
    model, ref = tiny
    diffusion = create_gaussian_diffusion(steps=1000, timestep_respacing="2" if method in ("ddpm", "ddim") else "")
    out = generate_conditional(model, diffusion, ref, [0, 1], mode=mode, method=method, steps=1, seed=3)
    known, gen = ("audio", "video") if mode == "audio2video" else ("video", "audio")
    assert torch.equal(out[known], ref[known])
    assert out[gen].shape == ref[gen].shape and torch.isfinite(out[gen]).all()
    assert out[gen].abs().max() <= 1.0 and out[gen].std() > 0.05


def test_seeded_runs_repeat_and_guidance_changes_them(tiny):
    model, ref = tiny
    diffusion = create_gaussian_diffusion(steps=1000)
    kw = dict(mode="audio2video", method="dpm_solver", steps=2)
    a = generate_conditional(model, diffusion, ref, [0, 1], seed=7, **kw)
    b = generate_conditional(model, diffusion, ref, [0, 1], seed=7, **kw)
    assert torch.equal(a["video"], b["video"])
    c = generate_conditional(model, diffusion, ref, [0, 1], seed=8, **kw)
    assert (a["video"] - c["video"]).abs().mean() > 1e-2
    guided = generate_conditional(model, diffusion, ref, [0, 1], seed=7, classifier_scale=5.0, **kw)
    assert torch.equal(guided["audio"], ref["audio"])
    assert (guided["video"] - a["video"]).abs().mean() > 1e-3
    again = generate_conditional(model, diffusion, ref, [0, 1], seed=7, classifier_scale=5.0, **kw)
    assert torch.equal(guided["video"], again["video"])


def test_synthetic_reference_source():
    from mm_diffusion.data import SyntheticAVDataset

    source = ConditionSource("synthetic:3:5", (FRAMES, 3, SIZE, SIZE), (1, LENGTH), FPS, RATE)
    batch = source.batch([2, 0])
    want = SyntheticAVDataset(3, (FRAMES, 3, SIZE, SIZE), (1, LENGTH), fps=FPS, audio_rate=RATE, seed=5)[2]
    assert batch["video"].shape == (2, FRAMES, 3, SIZE, SIZE) and batch["audio"].shape == (2, 1, LENGTH)
    assert torch.equal(batch["video"][0], want["video"]) and torch.equal(batch["audio"][0], want["audio"])
    with pytest.warns(UserWarning, match="only 3 clips"):
        again = source.batch([3])
    assert torch.equal(again["audio"][0], batch["audio"][1])      # clip 3 wraps to clip 0
    with pytest.raises(ValueError, match="synthetic:N"):
        ConditionSource("synthetic:x", (FRAMES, 3, SIZE, SIZE), (1, LENGTH), FPS, RATE)
