"""Per-modality timesteps in the diffusion (q_sample, predict, losses) and in training."""
import pytest
import torch

from mm_diffusion.diffusion import create_gaussian_diffusion
from mm_diffusion.diffusion.data_scale import clip_bounds, parse_data_scale, scale_data, unscale_data
from mm_diffusion.diffusion.modality_timesteps import draw_modality_timesteps, shared_timesteps
from mm_diffusion.diffusion.timestep_sampler import UniformSampler


def _pair(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"video": torch.randn(n, 2, 3, 4, 4, generator=g), "audio": torch.randn(n, 1, 32, generator=g)}


def test_q_sample_and_losses_with_a_dict_of_timesteps_act_per_leaf():
    d = create_gaussian_diffusion(steps=100, predict_xstart=True)
    x0, noise = _pair(), _pair(seed=1)
    tv, ta = torch.tensor([0, 50, 99]), torch.tensor([99, 10, 0])
    xt = d.q_sample(x0, {"video": tv, "audio": ta}, noise)
    assert torch.equal(xt["video"], d.q_sample(x0, tv, noise)["video"])
    assert torch.equal(xt["audio"], d.q_sample(x0, ta, noise)["audio"])
    seen = []

    def fn(x, t):
        seen.append(t)
        return {k: v * 0.5 for k, v in x.items()}

    both = d.training_losses(fn, x0, {"video": tv, "audio": ta}, noise=noise)
    assert torch.equal(seen[0]["video"], tv) and torch.equal(seen[0]["audio"], ta)
    same = d.training_losses(fn, x0, tv, noise=noise)
    assert torch.equal(both["video_mse"], same["video_mse"])
    shared = d.training_losses(fn, x0, {"video": tv, "audio": tv}, noise=noise)
    assert torch.equal(shared["loss"], same["loss"])
    with pytest.raises(ValueError, match="per-modality timesteps"):
        d.q_sample(x0, {"video": tv}, noise)


def test_draw_modality_timesteps():
    d = create_gaussian_diffusion(steps=1000)
    sched = UniformSampler(d)
    t = torch.arange(64)
    state = torch.get_rng_state()
    assert draw_modality_timesteps(sched, t, 0.0) is t
    assert torch.equal(torch.get_rng_state(), state)  # nothing drawn: runs without the option are unchanged
    both = draw_modality_timesteps(sched, t, 1.0)
    assert torch.equal(both["video"], t) and (both["audio"] != t).float().mean() > 0.9
    half = draw_modality_timesteps(sched, t, 0.5, generator=torch.Generator().manual_seed(0))
    assert 0.2 < (half["audio"] != t).float().mean() < 0.8
    assert shared_timesteps(half) is half["video"] and shared_timesteps(t) is t
    with pytest.raises(ValueError, match="independent_t_prob"):
        draw_modality_timesteps(sched, t, 1.5)


def test_data_scale_parse_and_round_trip():
    assert parse_data_scale("") is None and parse_data_scale("1,1") is None
    assert parse_data_scale("1,2.5") == {"video": 1.0, "audio": 2.5}
    with pytest.raises(ValueError, match="two positive numbers"):
        parse_data_scale("1,0")
    with pytest.raises(ValueError, match="two numbers"):
        parse_data_scale("a,b")
    x, s = _pair(), {"video": 1.0, "audio": 4.0}
    y = scale_data(x, s)
    assert torch.equal(y["audio"], x["audio"] * 4) and torch.equal(y["video"], x["video"])
    assert torch.allclose(unscale_data(y, s)["audio"], x["audio"])
    assert scale_data(x, None) is x and clip_bounds(None) is None and clip_bounds(s) == s
