"""Sampling plumbing without a model: layout and resume, work plan, seeds, SR noise, checkpoint discovery, flags."""
import json
import os

import numpy as np
import pytest
import torch

from mm_diffusion.runs import locate as sc
from mm_diffusion.sampling.args import checkpoint_args, explicit_flags, finalize_args, parse_sample_args
from mm_diffusion.sampling.generate import initial_noise
from mm_diffusion.sampling.layout import (OutputLayout, conditional_products, derive_seed, plan_batches,
                                                  sampler_prefix, unconditional_products)
from mm_diffusion.sampling.sr_stage import clip_noise, load_sr_noise


def _touch(path, data=b"x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- layout / resume
def test_layout_names_and_paths(tmp_path):
    layout = OutputLayout(tmp_path, sampler_prefix("dpm_solver++"), unconditional_products(3, "mp4", with_sr=True))
    paths = layout.paths(7)
    assert layout.name(7) == "dpm_solver_pp_sample_000007"
    assert paths["original"] == [str(tmp_path / "original" / "dpm_solver_pp_sample_000007.mp4")]
    assert paths["sr"] == [str(tmp_path / "sr_mp4" / "dpm_solver_pp_sample_000007.mp4")]
    assert paths["audio"] == [str(tmp_path / "audios" / "dpm_solver_pp_sample_000007.wav")]
    assert paths["frames"] == [str(tmp_path / "img" / f"dpm_solver_pp_sample_000007_{i:04d}.png") for i in range(3)]
    gif = OutputLayout(tmp_path, "ddim", conditional_products(2, "gif", with_sr=True)).paths(0)
    assert sorted(gif) == ["audio", "frames", "gt", "reconstruct", "sr"]
    assert gif["gt"][0].endswith(os.path.join("gt", "ddim_sample_000000.gif"))
    assert gif["sr"][0].endswith(os.path.join("sr", "ddim_sample_000000.gif"))
    with pytest.raises(ValueError, match="save_type"):
        unconditional_products(3, "avi")


def test_layout_counts_only_complete_samples(tmp_path):
    layout = OutputLayout(tmp_path, "ddpm", unconditional_products(2, "mp4"))
    assert layout.missing(4) == [0, 1, 2, 3]
    for k in (0, 2):
        for paths in layout.paths(k).values():
            for p in paths:
                _touch(p)
    # sample 1: everything but one frame; sample 3: an empty (truncated) mp4
    for key, paths in layout.paths(1).items():
        for p in paths[:1] if key == "frames" else paths:
            _touch(p)
    for paths in layout.paths(3).values():
        for p in paths:
            _touch(p)
    _touch(layout.paths(3)["original"][0], b"")
    _touch(str(tmp_path / "original" / ".ddpm_sample_000001.tmp-1-abc.mp4"))  # a writer's temporary file
    assert layout.complete(4) == [0, 2]
    assert layout.missing(4) == [1, 3]
    assert layout.missing(2) == [1]
    assert layout.is_complete(0) and not layout.is_complete(1)


@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_plan_batches_covers_exactly(world):
    todo = [1, 4, 5, 6, 9, 10, 11]
    plans = [plan_batches(todo, 2, r, world) for r in range(world)]
    flat = [k for plan in plans for batch in plan for k in batch]
    assert sorted(flat) == todo and len(flat) == len(set(flat))
    assert all(1 <= len(b) <= 2 for plan in plans for b in plan)
    with pytest.raises(ValueError, match="batch_size"):
        plan_batches(todo, 0, 0, 1)
    with pytest.raises(ValueError, match="rank"):
        plan_batches(todo, 1, world, world)


def test_seeds_are_per_index():
    assert derive_seed(42, 1, 5) == derive_seed(42, 1, 5)
    assert len({derive_seed(42, 1, k) for k in range(100)}) == 100
    assert derive_seed(42, 1, 5) != derive_seed(43, 1, 5) != derive_seed(42, 2, 5)
    a = initial_noise([3, 4], 42, (2, 3, 4, 4), (1, 16))
    b = initial_noise([4, 9, 3], 42, (2, 3, 4, 4), (1, 16))
    # the noise of sample k does not depend on the batch it is drawn in
    assert torch.equal(a["video"][0], b["video"][2]) and torch.equal(a["audio"][1], b["audio"][0])
    assert not torch.equal(a["video"][0], a["video"][1])


# ---------------------------------------------------------------- SR noise
def test_clip_noise_shared_within_clip():
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    noise = clip_noise(2, 3, 3, 8, generators=gens)
    assert noise.shape == (6, 3, 8, 8)
    assert torch.equal(noise[0], noise[1]) and torch.equal(noise[0], noise[2])
    assert torch.equal(noise[3], noise[5]) and not torch.equal(noise[0], noise[3])
    shared = torch.randn(3, 8, 8)
    both = clip_noise(2, 3, 3, 8, shared=shared)
    assert all(torch.equal(both[i], shared) for i in range(6))


def test_load_sr_noise(tmp_path):
    good = np.random.randn(1, 3, 8, 8).astype(np.float32)
    np.save(tmp_path / "n.npy", good)
    assert torch.equal(load_sr_noise(str(tmp_path / "n.npy"), 3, 8), torch.from_numpy(good[0]))
    with pytest.raises(ValueError, match=r"\[3, 16, 16\]"):
        load_sr_noise(str(tmp_path / "n.npy"), 3, 16)
    with pytest.raises(FileNotFoundError, match="nope.npy"):
        load_sr_noise(str(tmp_path / "nope.npy"), 3, 8)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="plain .npy"):
        load_sr_noise(str(tmp_path / "obj.npy"), 3, 8)


# ---------------------------------------------------------------- checkpoints
def test_resolve_model_paths(tmp_path):
    run = tmp_path / "run"
    for name in ("model000100.pt", "ema_0.9999_000100.pt", "opt000100.pt", "model000200.pt",
                 "ema_0.9999_000200.pt", "opt000200.pt", "log.txt"):
        _touch(str(run / name))
    files = [os.path.basename(p) for p in sc.resolve_model_paths(str(run))]
    assert files == ["ema_0.9999_000100.pt", "model000100.pt", "ema_0.9999_000200.pt", "model000200.pt"]
    assert [os.path.basename(p) for p in sc.resolve_model_paths(str(run), skip_steps=150)] == \
        ["ema_0.9999_000200.pt", "model000200.pt"]
    with pytest.raises(FileNotFoundError, match="step >= 300"):
        sc.resolve_model_paths(str(run), skip_steps=300)
    one, two = str(run / "model000100.pt"), str(run / "model000200.pt")
    assert sc.resolve_model_paths(f"{one},{two}") == [one, two]
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        sc.resolve_model_paths(f"{one},{run / 'missing.pt'}")


def test_default_checkpoint_newest_then_error(tmp_path, monkeypatch):
    monkeypatch.setattr(sc, "ASSETS_DIR", str(tmp_path / "no_assets"))
    root = tmp_path / "outputs"
    with pytest.raises(FileNotFoundError, match="multimodal_train.sh"):
        sc.default_model_path(str(root))
    assert sc.default_sr_model_path(str(root)) is None
    _touch(str(root / "old" / "model000500.pt"))
    _touch(str(root / "new" / "model000010.pt"))
    _touch(str(root / "new" / "ema_0.999_000010.pt"))
    _touch(str(root / "new" / "ema_0.9999_000010.pt"))
    (root / "new" / "config.json").write_text(json.dumps({"job": "train", "args": {}}))
    _touch(str(root / "sr_run" / "model000004.pt"))       # an SR run, written last: not a coupled model
    (root / "sr_run" / "config.json").write_text(json.dumps({"job": "image_sr_train", "args": {}}))
    os.utime(root / "old" / "model000500.pt", (1_000_000, 1_000_000))
    assert sc.default_model_path(str(root)) == str(root / "new" / "ema_0.9999_000010.pt")
    assert sc.default_sr_model_path(str(root)) == str(root / "sr_run" / "model000004.pt")
    # without anything under outputs/, the shipped demo checkpoints are used
    assets = tmp_path / "assets"
    _touch(str(assets / "demo.pt"))
    _touch(str(assets / "demo_sr.pt"))
    monkeypatch.setattr(sc, "ASSETS_DIR", str(assets))
    assert sc.default_model_path(str(tmp_path / "empty")) == str(assets / "demo.pt")
    assert sc.default_sr_model_path(str(tmp_path / "empty")) == str(assets / "demo_sr.pt")


def test_run_config_fills_unspecified_flags(tmp_path):
    ckpt = tmp_path / "run" / "model000010.pt"
    _touch(str(ckpt))
    saved = {"video_size": [4, 3, 16, 16], "audio_size": [1, 1600], "num_channels": 32, "num_res_blocks": 1,
             "timestep_respacing": "ddim5", "video_fps": 10, "lr": 1e-4}
    (tmp_path / "run" / "config.json").write_text(json.dumps({"args": saved}))
    args = parse_sample_args("sample", ["--num_res_blocks", "3", "--multimodal_model_path", str(ckpt)])
    assert explicit_flags(["--a", "1", "--b=2", "x"]) == {"a", "b"}
    merged = finalize_args(checkpoint_args(args, str(ckpt)))
    assert merged.run_config_found
    assert merged.video_size == [4, 3, 16, 16] and merged.num_channels == 32
    assert merged.num_res_blocks == 3          # given on the command line: kept
    assert merged.timestep_respacing == ""     # how the run trained, not what it built: ignored
    assert merged.audio_fps == 4000            # inferred: 1600 samples over 4 frames at 10 fps
    assert args.video_size == [16, 3, 64, 64]  # the parsed flags are not modified


def test_flag_errors():
    with pytest.raises(SystemExit):
        parse_sample_args("sample", ["--sample_fn", "euler"])
    with pytest.raises(SystemExit):
        parse_sample_args("audio2video", ["--classifier_scale", "-1"])
    with pytest.raises(SystemExit):
        parse_sample_args("video2audio", ["--sr_model_path", "x.pt"])  # no SR stage for video-to-audio
    args = parse_sample_args("video2audio", ["--model_path", "a.pt", "--config", "tiny"])
    assert args.multimodal_model_path == "a.pt" and args.sample_fn == "ddpm"
    assert "video_size" in args.explicit  # set by --config: not overridden by a run's saved flags
