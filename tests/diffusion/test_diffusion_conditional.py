"""Zero-shot conditional generation against the closed-form conditional of a joint Gaussian.

Video and audio are strongly correlated (``correlated_gaussian``); the known audio is fixed 1.5 standard
deviations from its mean, so the true p(video | audio) is far from the marginal. The error of a
sample set is ``|mean - true mean| + |cov - true cov|_F``; with N=1500 samples its statistical part is
about 0.05, against ~5 for unconditional samples.
"""
import pytest
import torch

from mm_diffusion.diffusion import create_gaussian_diffusion, sample

from .diffusion_oracles import SHAPES, GaussianOracle, conditional_gaussian, correlated_gaussian, dims, sample_stats

N = 1500
SAMPLERS = [("ddpm", dict(steps=250)), ("ddim", dict(steps=100)), ("dpm_solver", {}), ("dpm_solver++", {})]


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    mu, cov = correlated_gaussian()
    d = create_gaussian_diffusion(steps=1000)
    oracle = GaussianOracle(mu, cov, d.alphas_cumprod)
    g = torch.Generator().manual_seed(11)
    noise = {k: torch.randn((N,) + s, generator=g) for k, s in SHAPES.items()}
    return dict(mu=mu, cov=cov, d=d, oracle=oracle, noise=noise)


def _known(setup, key):
    d = dims()
    start = 0 if key == "video" else d["video"]
    sl = slice(start, start + d[key])
    value = (setup["mu"][sl] + 1.5 * torch.diagonal(setup["cov"])[sl].sqrt()).float()
    return value, {key: value.reshape(1, *SHAPES[key]).expand(N, *SHAPES[key]).clone()}


def _error(out, key, true_mean, true_cov):
    m, c = sample_stats(out[key].reshape(N, -1))
    return float((m - true_mean).norm() + (c - true_cov).norm())


def _run(setup, method, kw, **extra):
    return sample(setup["oracle"], setup["noise"], diffusion=setup["d"], method=method, clip_denoised=False,
                  progress=False, generator=torch.Generator().manual_seed(2), **kw, **extra)


@pytest.mark.parametrize("method,kw", SAMPLERS, ids=[m for m, _ in SAMPLERS])
def test_audio_to_video_beats_unconditional(setup, method, kw):
    value, condition = _known(setup, "audio")
    true_mean, true_cov = conditional_gaussian(setup["mu"], setup["cov"], "audio", value)
    uncond = _error(_run(setup, method, kw), "video", true_mean, true_cov)
    replaced = _run(setup, method, kw, condition=condition)
    guided = _run(setup, method, kw, condition=condition, classifier_scale=2.0)
    # the known modality comes back exactly
    assert torch.equal(replaced["audio"], condition["audio"]) and torch.equal(guided["audio"], condition["audio"])
    err_replaced = _error(replaced, "video", true_mean, true_cov)
    err_guided = _error(guided, "video", true_mean, true_cov)
    # replacement alone is an approximation (it ignores how x_t of video should depend on the audio);
    # it must still remove a good part of the error, and gradient guidance must remove more
    assert err_replaced < 0.75 * uncond, (err_replaced, uncond)
    assert err_guided < 0.8 * err_replaced, (err_guided, err_replaced)


def test_video_to_audio(setup):
    value, condition = _known(setup, "video")
    true_mean, true_cov = conditional_gaussian(setup["mu"], setup["cov"], "video", value)
    uncond = _error(_run(setup, "dpm_solver++", {}), "audio", true_mean, true_cov)
    guided = _run(setup, "dpm_solver++", {}, condition=condition, classifier_scale=2.0)
    assert torch.equal(guided["video"], condition["video"])
    assert _error(guided, "audio", true_mean, true_cov) < 0.6 * uncond


def test_adaptive_solver_with_condition(setup):
    value, condition = _known(setup, "audio")
    true_mean, true_cov = conditional_gaussian(setup["mu"], setup["cov"], "audio", value)
    uncond = _error(_run(setup, "dpm_solver", dict(solver_method="adaptive", order=2)), "video", true_mean, true_cov)
    out = _run(setup, "dpm_solver", dict(solver_method="adaptive", order=2), condition=condition, classifier_scale=2.0)
    assert torch.equal(out["audio"], condition["audio"])
    assert _error(out, "video", true_mean, true_cov) < 0.6 * uncond


def test_model_sees_noised_known_modality(setup):
    """Replacement: at index t the model's audio input is sqrt(ab_t) * known + sqrt(1 - ab_t) * noise."""
    value, condition = _known(setup, "audio")
    d = setup["d"]
    seen = []

    def spy(x, t):
        seen.append((int(t[0]), x["audio"].clone()))
        return setup["oracle"](x, t)

    noise = {k: v[:N] for k, v in setup["noise"].items()}
    sample(spy, noise, diffusion=d, method="ddim", steps=10, condition=condition, progress=False,
           generator=torch.Generator().manual_seed(0))
    for t, audio in seen:
        a, s = d.sqrt_alphas_cumprod[t], d.sqrt_one_minus_alphas_cumprod[t]
        resid = (audio - a * condition["audio"]) / s  # should be standard normal noise
        assert abs(float(resid.mean())) < 5 / (resid.numel() ** 0.5)
        assert float(resid.std()) == pytest.approx(1.0, abs=0.03)


def test_condition_errors(setup):
    o, d = setup["oracle"], setup["d"]
    shapes = {"video": (2,) + SHAPES["video"], "audio": (2,) + SHAPES["audio"]}
    with pytest.raises(ValueError, match="not modalities"):
        sample(o, shapes, diffusion=d, condition={"text": torch.zeros(2, 3)}, progress=False)
    with pytest.raises(ValueError, match=r"shape \(2, 1, 5\)"):
        sample(o, shapes, diffusion=d, condition={"audio": torch.zeros(2, 1, 5)}, progress=False)
    with pytest.raises(ValueError, match="at least one"):
        sample(o, shapes, diffusion=d, condition={"audio": torch.zeros(2, 1, 4), "video": torch.zeros(shapes["video"])},
               progress=False)
    with pytest.raises(ValueError, match="needs a condition"):
        sample(o, shapes, diffusion=d, classifier_scale=1.0, progress=False)
    with pytest.raises(ValueError, match="bare tensor"):
        sample(o, (2, 12), diffusion=d, condition={"audio": torch.zeros(2, 1, 4)}, progress=False)


SETTINGS = [(a, m, o, ty) for a in ("dpm_solver", "dpm_solver++") for m in ("singlestep", "singlestep_fixed", "multistep", "adaptive")
            for o in (1, 2, 3) for ty in ("dpm_solver", "taylor") if not (m == "adaptive" and o == 1)]


@pytest.mark.parametrize("algorithm,method,order,solver_type", SETTINGS, ids=["-".join(map(str, c)) for c in SETTINGS])
def test_every_solver_setting_keeps_the_known_modality(setup, algorithm, method, order, solver_type):
    _, condition = _known(setup, "audio")
    noise = {k: v[:16] for k, v in setup["noise"].items()}
    cond = {"audio": condition["audio"][:16]}
    for scale, extra in ((0.0, dict(thresholding=True)), (1.0, dict(denoise_to_zero=True, skip_type="time_uniform"))):
        out = sample(setup["oracle"], noise, diffusion=setup["d"], method=algorithm, steps=6, order=order,
                     solver_method=method, solver_type=solver_type, condition=cond, classifier_scale=scale,
                     progress=False, generator=torch.Generator().manual_seed(1), **extra)
        assert torch.equal(out["audio"], cond["audio"]) and torch.isfinite(out["video"]).all()
        assert not torch.equal(out["video"], noise["video"])
