"""Timestep respacing: the original syntax, exactness of an all-steps respacing, timestep mapping."""
import numpy as np
import pytest
import torch

from mm_diffusion.diffusion import create_gaussian_diffusion, sample, space_timesteps

from .diffusion_oracles import SHAPES, GaussianOracle, correlated_gaussian


def test_space_timesteps_syntax():
    assert space_timesteps(1000, "") == set(range(1000))
    assert space_timesteps(1000, "ddim25") == set(range(0, 1000, 40))
    assert space_timesteps(1000, "ddim50") == set(range(0, 1000, 20))
    two_fifty = sorted(space_timesteps(1000, "250"))
    assert len(two_fifty) == 250 and two_fifty[0] == 0 and two_fifty[-1] == 999
    assert np.all(np.diff(two_fifty) >= 4) and np.all(np.diff(two_fifty) <= 5)
    sections = sorted(space_timesteps(300, "10,15,20"))
    assert len(sections) == 45
    assert sum(i < 100 for i in sections) == 10 and sum(100 <= i < 200 for i in sections) == 15
    assert sections[0] == 0 and sections[9] == 99 and sections[10] == 100 and sections[-1] == 299


@pytest.mark.parametrize("bad", ["ddim30x", "ddimfoo", "abc", "0", "2000", "ddim7000"])
def test_space_timesteps_errors(bad):
    with pytest.raises(ValueError, match=r"timestep_respacing|stride|section|positive|ddim"):
        space_timesteps(1000, bad)


def test_all_steps_respacing_equals_unspaced():
    base = create_gaussian_diffusion(steps=200)
    full = base.respace(list(range(200)))
    assert np.allclose(full.betas, base.betas, rtol=1e-9, atol=1e-12)
    assert np.allclose(full.alphas_cumprod, base.alphas_cumprod, rtol=1e-12)
    assert np.array_equal(full.timestep_map, np.arange(200))
    mu, cov = correlated_gaussian()
    oracle = GaussianOracle(mu, cov, base.alphas_cumprod)
    noise = {k: torch.randn((64,) + s, generator=torch.Generator().manual_seed(0)) for k, s in SHAPES.items()}
    outs = [sample(oracle, noise, diffusion=d, method="ddpm", generator=torch.Generator().manual_seed(1),
                   clip_denoised=False, progress=False) for d in (base, full)]
    for k in noise:
        assert torch.allclose(outs[0][k], outs[1][k], atol=1e-5)


def test_ddim25_calls_the_model_at_original_timesteps():
    d = create_gaussian_diffusion(steps=1000, timestep_respacing="ddim25")
    assert d.num_timesteps == 25
    assert sorted(d.timestep_map.tolist()) == list(range(0, 1000, 40))
    base = create_gaussian_diffusion(steps=1000)
    assert np.allclose(d.alphas_cumprod, base.alphas_cumprod[::40])
    mu, cov = correlated_gaussian()
    oracle = GaussianOracle(mu, cov, base.alphas_cumprod)
    sample(oracle, {k: (4,) + s for k, s in SHAPES.items()}, diffusion=d, method="ddim", progress=False)
    assert oracle.calls == list(range(960, -1, -40))


def test_respacing_composes_and_rescales():
    d = create_gaussian_diffusion(steps=1000, timestep_respacing="100")
    twice = d.respace("ddim10")  # indices of the 100-step process, mapped back to the original 1000
    assert twice.num_timesteps == 10
    assert np.array_equal(twice.timestep_map, d.timestep_map[::10])
    assert np.allclose(twice.alphas_cumprod, create_gaussian_diffusion(steps=1000).alphas_cumprod[twice.timestep_map])
    rescaled = create_gaussian_diffusion(steps=500, rescale_timesteps=True, timestep_respacing="ddim5")
    t = rescaled.model_timesteps(torch.tensor([0, 4]))
    assert t.dtype == torch.float32 and t.tolist() == [0.0, 800.0]  # 400 * 1000 / 500
    plain = create_gaussian_diffusion(steps=500, timestep_respacing="ddim5").model_timesteps(torch.tensor([4]))
    assert plain.dtype == torch.int64 and plain.tolist() == [400]
