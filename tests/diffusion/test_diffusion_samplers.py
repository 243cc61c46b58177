"""Every sampler against the closed-form optimal denoiser of Gaussian data.

Tolerances: with n independent samples the sample mean of a dimension with variance S_ii has
standard error sqrt(S_ii / n) and a sample-covariance entry sqrt((S_ii S_jj + S_ij^2) / n); we
allow 5 standard errors per entry (a false alarm over the 12 + 78 entries has probability
below 1e-4), and the seeds are fixed so each check is deterministic. Discretisation error is
checked separately, path by path, against DDIM with all 1000 steps (the converged probability-flow
ODE solution from the same noise).
"""
import pytest
import torch

from mm_diffusion.diffusion import create_gaussian_diffusion, dpm_solver_timesteps, sample
from mm_diffusion.diffusion.samplers import dynamic_threshold, singlestep_orders

from .diffusion_oracles import (SHAPES, GaussianOracle, MixtureOracle, correlated_gaussian, cov_tolerance, flatten,
                                mean_tolerance, sample_stats)

N = 3000


@pytest.fixture(scope="module")
def problem():
    torch.set_num_threads(1)
    mu, cov = correlated_gaussian()
    d = create_gaussian_diffusion(steps=1000)
    oracle = GaussianOracle(mu, cov, d.alphas_cumprod)
    g = torch.Generator().manual_seed(123)
    noise = {k: torch.randn((N,) + s, generator=g) for k, s in SHAPES.items()}
    ode = flatten(sample(oracle, noise, diffusion=d, method="ddim", clip_denoised=False, progress=False))
    ddpm = flatten(sample(oracle, noise, diffusion=d, method="ddpm", clip_denoised=False, progress=False,
                          generator=torch.Generator().manual_seed(7)))
    return dict(mu=mu, cov=cov, d=d, oracle=oracle, noise=noise, ode=ode, ddpm=ddpm)


def _run(problem, method, **kw):
    kw.setdefault("clip_denoised", False)
    kw.setdefault("thresholding", False)  # dpm_solver++ thresholds by default; the Gaussian's values exceed 1
    out = sample(problem["oracle"], problem["noise"], diffusion=problem["d"], method=method, progress=False,
                 generator=torch.Generator().manual_seed(5), **kw)
    assert set(out) == {"video", "audio"} and out["video"].shape == (N,) + SHAPES["video"]
    return flatten(out)


def _assert_matches_gaussian(flat, mu, cov):
    m, c = sample_stats(flat)
    assert torch.all((m - mu).abs() < mean_tolerance(cov, flat.shape[0])), (m - mu).abs().max()
    assert torch.all((c - cov).abs() < cov_tolerance(cov, flat.shape[0])), (c - cov).abs().max()


CONFIGS = [
    ("ddim", dict(steps=50)),
    ("ddim", dict(steps=250, eta=1.0)),
    ("dpm_solver", dict()),  # 20 steps, order 3, singlestep, logSNR
    ("dpm_solver++", dict()),  # adaptive, order 2, logSNR
    ("dpm_solver++", dict(order=2, solver_method="multistep")),
    ("dpm_solver", dict(order=3, solver_method="multistep", skip_type="time_quadratic")),
    # uniform-in-t inner points are poor for low-dimensional data (0.03 off the ODE at 40 NFE): more steps
    ("dpm_solver", dict(order=2, solver_method="singlestep", skip_type="time_uniform", steps=100)),
    ("dpm_solver", dict(order=3, solver_method="singlestep_fixed", skip_type="logSNR", steps=21)),
    ("dpm_solver++", dict(order=3, solver_method="singlestep")),
    ("dpm_solver", dict(order=2, solver_method="adaptive")),
    ("dpm_solver++", dict(order=3, solver_method="adaptive")),
]


def test_ddpm_1000_recovers_the_gaussian(problem):
    _assert_matches_gaussian(problem["ddpm"], problem["mu"], problem["cov"])
    _assert_matches_gaussian(problem["ode"], problem["mu"], problem["cov"])


@pytest.mark.parametrize("method,kw", CONFIGS, ids=[f"{m}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for m, kw in CONFIGS])
def test_sampler_recovers_the_gaussian(problem, method, kw):
    _assert_matches_gaussian(_run(problem, method, **kw), problem["mu"], problem["cov"])


def test_ddpm_on_respaced_diffusion_recovers_the_gaussian(problem):
    d = create_gaussian_diffusion(steps=1000, timestep_respacing="250")  # fixed-large variance
    out = sample(problem["oracle"], problem["noise"], diffusion=d, method="ddpm", clip_denoised=False,
                 progress=False, generator=torch.Generator().manual_seed(9))
    _assert_matches_gaussian(flatten(out), problem["mu"], problem["cov"])


def test_ddim_eta1_is_ddpm_with_posterior_variance(problem):
    # DDIM's sigma at eta=1 is the posterior std, so with the same random draws the two chains coincide
    d = create_gaussian_diffusion(steps=1000, sigma_small=True, timestep_respacing="50")
    noise = {k: v[:300] for k, v in problem["noise"].items()}
    a = sample(problem["oracle"], noise, diffusion=d, method="ddpm", clip_denoised=False, progress=False,
               generator=torch.Generator().manual_seed(3))
    b = sample(problem["oracle"], noise, diffusion=d, method="ddim", eta=1.0, clip_denoised=False, progress=False,
               generator=torch.Generator().manual_seed(3))
    for k in noise:
        assert torch.allclose(a[k], b[k], atol=1e-4)


@pytest.mark.parametrize("method", ["dpm_solver", "dpm_solver++"])
def test_dpm_solver_20_steps_lands_close_to_ddpm_1000(problem, method):
    flat = _run(problem, method)
    m1, c1 = sample_stats(flat)
    m2, c2 = sample_stats(problem["ddpm"])
    # difference of two independent estimates: sqrt(2) standard errors
    assert torch.all((m1 - m2).abs() < 2 ** 0.5 * mean_tolerance(problem["cov"], N))
    assert torch.all((c1 - c2).abs() < 2 ** 0.5 * cov_tolerance(problem["cov"], N))
    # and path by path it solves the same ODE as 1000-step DDIM: mean error under 5% of the data's
    # spread (~0.45 per dim); 20-step DDIM (order 1) is about 0.06 off on this problem
    assert float((flat - problem["ode"]).abs().mean()) < 0.02


@pytest.mark.parametrize("method", ["singlestep", "multistep"])
@pytest.mark.parametrize("algorithm", ["dpm_solver", "dpm_solver++"])
def test_higher_order_is_more_accurate(problem, method, algorithm):
    errors = []
    for order in (1, 2, 3):
        flat = _run(problem, algorithm, steps=24, order=order, solver_method=method, skip_type="logSNR")
        errors.append(float((flat - problem["ode"]).abs().mean()))
    assert errors[2] < errors[1] < errors[0], errors
    assert errors[2] < 0.35 * errors[0], errors


def test_ddim_eta0_is_deterministic_given_noise(problem):
    noise = {k: v[:100] for k, v in problem["noise"].items()}
    runs = [sample(problem["oracle"], noise, diffusion=problem["d"], method="ddim", steps=20, progress=False,
                   generator=torch.Generator().manual_seed(s)) for s in (1, 2)]
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in noise)
    noisy = [sample(problem["oracle"], noise, diffusion=problem["d"], method="ddim", steps=20, eta=1.0, progress=False,
                    generator=torch.Generator().manual_seed(s)) for s in (1, 1, 2)]
    assert torch.equal(noisy[0]["video"], noisy[1]["video"]) and not torch.equal(noisy[0]["video"], noisy[2]["video"])


def test_learned_sigma_and_x0_models_match_the_eps_model(problem):
    mu, cov = problem["mu"], problem["cov"]
    noise = {k: v[:100] for k, v in problem["noise"].items()}
    ab = problem["d"].alphas_cumprod
    ref = sample(GaussianOracle(mu, cov, ab), noise, diffusion=problem["d"], method="dpm_solver", progress=False)
    for flags, predict, learn in ((dict(learn_sigma=True), "eps", True), (dict(predict_xstart=True), "x0", False)):
        d = create_gaussian_diffusion(steps=1000, **flags)
        out = sample(GaussianOracle(mu, cov, ab, predict=predict, learn_sigma=learn), noise, diffusion=d,
                     method="dpm_solver", progress=False)
        for k in noise:
            assert torch.allclose(out[k], ref[k], atol=1e-4)


def test_two_gaussian_mixture_on_a_bare_tensor():
    d = create_gaussian_diffusion(steps=1000)
    m, s = 0.6, 0.15
    oracle = MixtureOracle(m, s, d.alphas_cumprod)
    n = 4000
    noise = torch.randn(n, 4, generator=torch.Generator().manual_seed(0))
    # a nonlinear denoiser: 20-step solvers are a few % off in E[x^2] (its standard error is ~0.002)
    for method, kw in (("dpm_solver++", {}), ("dpm_solver", {}), ("ddim", dict(steps=100)),
                       ("dpm_solver++", dict(order=3, solver_method="adaptive"))):
        x = sample(oracle, noise, diffusion=d, method=method, clip_denoised=False, progress=False, **kw).double()
        assert x.shape == (n, 4)
        # each element: 0.5 N(-0.6, 0.15^2) + 0.5 N(0.6, 0.15^2); mean 0, E[x^2] = m^2 + s^2 = 0.3825
        assert abs(float(x.mean())) < 5 * (0.3825 / (4 * n)) ** 0.5
        assert float((x ** 2).mean()) == pytest.approx(m * m + s * s, abs=0.02)
        # bimodal: P(|x| < 0.3) = P(z < -2) ~ 0.023 for the true mixture, 0.38 for a Gaussian of that variance
        assert float((x.abs() < 0.3).double().mean()) < 0.045
        assert float((x > 0).double().mean()) == pytest.approx(0.5, abs=0.02)


def test_clipping_and_thresholding_bound_the_output(problem):
    noise = {k: v[:200] * 3.0 for k, v in problem["noise"].items()}
    # the DPM-Solvers end at t = 1/N (sigma = 0.01) unless they denoise to zero
    for method, kw in (("ddpm", dict(steps=50)), ("ddim", dict(steps=20)),
                       ("dpm_solver", dict(clip_denoised=True, denoise_to_zero=True)),
                       ("dpm_solver++", dict(denoise_to_zero=True)),  # dynamic thresholding by default
                       ("dpm_solver++", dict(thresholding=True, clip_denoised=False, solver_method="multistep",
                                             denoise_to_zero=True))):
        out = sample(problem["oracle"], noise, diffusion=problem["d"], method=method, progress=False,
                     generator=torch.Generator().manual_seed(0), **kw)
        assert all(float(v.abs().max()) <= 1.0 + 1e-6 for v in out.values()), method
    x = torch.tensor([[0.5, -3.0, 2.0, 0.1], [0.2, 0.3, -0.4, 0.5]])
    y = dynamic_threshold(x, ratio=0.75)
    # s = 2.25: the 0.75 quantile of |x| = (0.1, 0.5, 2, 3) interpolated as torch.quantile does
    assert torch.allclose(y[0], torch.tensor([0.5, -2.25, 2.0, 0.1]) / 2.25)
    assert torch.equal(y[1], x[1])  # s < 1: plain clamp to [-1, 1]


def test_callback_progress_and_evaluation_count(problem, capsys):
    noise = {k: v[:10] for k, v in problem["noise"].items()}
    seen = []
    problem["oracle"].calls.clear()
    sample(problem["oracle"], noise, diffusion=problem["d"], method="dpm_solver", progress=False,
           callback=lambda info: seen.append((info["i"], info["t"], tuple(info["x"]))))
    assert [s[0] for s in seen] == list(range(len(singlestep_orders(20, 3))))  # no final denoising step
    assert seen[-1][1] == 0.0 and all(s[2] == ("video", "audio") for s in seen)
    assert len(problem["oracle"].calls) == 20 and problem["oracle"].calls[0] == 999.0
    assert capsys.readouterr().err == ""
    problem["oracle"].calls.clear()
    sample(problem["oracle"], noise, diffusion=problem["d"], method="dpm_solver++", solver_method="multistep",
           denoise_to_zero=True, progress=False)
    calls = problem["oracle"].calls
    grid = dpm_solver_timesteps(problem["d"], 20, "logSNR")
    # multistep: one evaluation per step (none at the end), then the final denoising at t = 1/N (timestep 0)
    assert calls == pytest.approx([1000.0 * t - 1.0 for t in grid[:-1]] + [0.0], abs=1e-3)
    problem["oracle"].calls.clear()
    sample(problem["oracle"], noise, diffusion=problem["d"], method="ddim", steps=10, progress=True)
    assert "ddim" in capsys.readouterr().err and len(problem["oracle"].calls) == 10


def test_shapes_spec_and_generator_reproducibility(problem):
    shapes = {"video": (3, 2, 1, 2, 2), "audio": (3, 1, 4)}
    a = sample(problem["oracle"], shapes, diffusion=problem["d"], method="ddim", steps=5, progress=False,
               generator=torch.Generator().manual_seed(4))
    b = sample(problem["oracle"], shapes, diffusion=problem["d"], method="ddim", steps=5, progress=False,
               generator=torch.Generator().manual_seed(4))
    assert a["video"].shape == (3, 2, 1, 2, 2) and torch.equal(a["audio"], b["audio"])


def test_bad_arguments_raise_clear_errors(problem):
    o, d = problem["oracle"], problem["d"]
    shapes = {"video": (2, 2, 1, 2, 2), "audio": (2, 1, 4)}
    with pytest.raises(ValueError, match="dpm_solver\\+\\+"):
        sample(o, shapes, diffusion=d, method="euler", progress=False)
    with pytest.raises(ValueError, match="logSNR"):
        sample(o, shapes, diffusion=d, method="dpm_solver", skip_type="karras", progress=False)
    with pytest.raises(ValueError, match="1, 2 or 3"):
        sample(o, shapes, diffusion=d, method="dpm_solver", order=4, progress=False)
    with pytest.raises(ValueError, match="2 or 3"):
        sample(o, shapes, diffusion=d, method="dpm_solver", order=1, solver_method="adaptive", progress=False)
    with pytest.raises(ValueError, match="singlestep, singlestep_fixed, multistep, adaptive"):
        sample(o, shapes, diffusion=d, method="dpm_solver", solver_method="rk4", progress=False)
    with pytest.raises(ValueError, match="DPM-Solver"):
        sample(o, shapes, diffusion=d, method="ddim", order=2, progress=False)
    with pytest.raises(ValueError, match="dpm_solver, taylor"):
        sample(o, shapes, diffusion=d, method="dpm_solver", solver_type="heun", progress=False)
    with pytest.raises(ValueError, match="steps >= 3"):
        sample(o, shapes, diffusion=d, method="dpm_solver", steps=2, order=3, solver_method="singlestep_fixed",
               progress=False)
    with pytest.raises(ValueError, match=r"\[1, 1000\]"):
        sample(o, shapes, diffusion=d, method="ddpm", steps=5000, progress=False)
    with pytest.raises(ValueError, match="shape_or_noise"):
        sample(o, "video", diffusion=d, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("method", ["ddpm", "ddim", "dpm_solver", "dpm_solver++"])
def test_samplers_and_losses_on_cuda(method):
    mu, cov = correlated_gaussian()
    d = create_gaussian_diffusion(steps=1000, timestep_respacing="100" if method == "ddpm" else "")
    base = GaussianOracle(mu, cov, create_gaussian_diffusion(steps=1000).alphas_cumprod)
    model = lambda x, t: {k: v.cuda() for k, v in base(x, t).items()}
    shapes = {k: (64,) + s for k, s in SHAPES.items()}
    g = torch.Generator(device="cuda").manual_seed(0)
    cond = {"audio": torch.zeros(shapes["audio"], device="cuda")}
    out = sample(model, shapes, diffusion=d, method=method, generator=g, progress=False, condition=cond,
                 classifier_scale=1.0, thresholding=(method == "dpm_solver++"))
    assert out["video"].is_cuda and torch.isfinite(out["video"]).all() and torch.equal(out["audio"], cond["audio"])
    x0 = {k: torch.zeros(s, device="cuda") for k, s in shapes.items()}
    t = torch.randint(0, d.num_timesteps, (64,), device="cuda")
    losses = d.training_losses(model, x0, t)
    assert losses["loss"].is_cuda and losses["loss"].shape == (64,)
