"""Training losses (per modality and summed), the learned-sigma VB term against a direct KL,
quartile logging and the timestep samplers."""
import math

import pytest
import torch
from scipy.stats import norm

from mm_diffusion.diffusion import create_gaussian_diffusion, create_named_schedule_sampler
from mm_diffusion.diffusion.tree import channel_dim


def _pair(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = {"video": torch.rand(n, 2, 3, 2, 2, generator=g, dtype=torch.float64) * 2 - 1,
          "audio": torch.rand(n, 1, 8, generator=g, dtype=torch.float64) * 2 - 1}
    noise = {k: torch.randn(v.shape, generator=g, dtype=torch.float64) for k, v in x0.items()}
    return x0, noise


def test_mse_losses_per_modality_and_sum():
    d = create_gaussian_diffusion(steps=100)
    x0, noise = _pair()
    t = torch.tensor([0, 40, 99])
    zero = lambda x, t: {k: torch.zeros_like(v) for k, v in x.items()}
    terms = d.training_losses(zero, x0, t, noise)
    assert set(terms) == {"loss", "mse", "video_mse", "audio_mse"}
    for key in x0:
        expected = (noise[key] ** 2).reshape(3, -1).mean(1)
        assert torch.allclose(terms[f"{key}_mse"], expected)
        assert terms[f"{key}_mse"].shape == (3,)
    assert torch.allclose(terms["mse"], terms["video_mse"] + terms["audio_mse"])
    assert torch.equal(terms["loss"], terms["mse"])


def test_perfect_model_has_zero_loss_and_x0_target():
    d = create_gaussian_diffusion(steps=100, predict_xstart=True)
    x0, noise = _pair()
    t = torch.tensor([5, 50, 95])
    oracle = lambda x, tt: x0  # predicts the clean data exactly
    terms = d.training_losses(oracle, x0, t, noise)
    assert torch.allclose(terms["loss"], torch.zeros(3, dtype=torch.float64))
    eps_model = create_gaussian_diffusion(steps=100)
    terms = eps_model.training_losses(lambda x, tt: noise, x0, t, noise)
    assert float(terms["loss"].abs().max()) == 0.0


def test_bare_tensor_loss_keys():
    d = create_gaussian_diffusion(steps=10)
    x0 = torch.zeros(2, 3, 4, 4)
    terms = d.training_losses(lambda x, t: torch.zeros_like(x), x0, torch.tensor([1, 2]))
    assert set(terms) == {"loss", "mse"}


def _direct_vb(d, x0, xt, t, var_values, eps):
    """KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) in bits per dim, element by element with torch.distributions."""
    i = t
    ab, ab_prev, beta = d.alphas_cumprod[i], d.alphas_cumprod_prev[i], d.betas[i]
    x0_pred = (xt - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    c1, c2 = beta * math.sqrt(ab_prev) / (1 - ab), (1 - ab_prev) * math.sqrt(1 - beta) / (1 - ab)
    true_var = beta * (1 - ab_prev) / (1 - ab)
    min_log = math.log(d.posterior_variance[1] if i == 0 else true_var)
    frac = (var_values + 1) / 2
    model_log_var = frac * math.log(beta) + (1 - frac) * min_log
    model_mean = c1 * x0_pred + c2 * xt
    if i == 0:
        # discretised Gaussian decoder, bins of width 2/255, edges open
        std = torch.exp(0.5 * model_log_var)
        upper = norm.cdf(((x0 - model_mean + 1 / 255) / std).numpy())
        lower = norm.cdf(((x0 - model_mean - 1 / 255) / std).numpy())
        return -torch.log(torch.as_tensor(upper - lower)).mean() / math.log(2)
    q = torch.distributions.Normal(c1 * x0 + c2 * xt, math.sqrt(true_var))
    p = torch.distributions.Normal(model_mean, torch.exp(0.5 * model_log_var))
    return torch.distributions.kl_divergence(q, p).mean() / math.log(2)


@pytest.mark.parametrize("step", [0, 1, 37, 99])
def test_learned_sigma_vb_matches_direct_kl(step):
    d = create_gaussian_diffusion(steps=100, learn_sigma=True)
    x0, noise = _pair(n=1, seed=step)
    # keep x0 inside the bins (no open edge) so the decoder term is the plain CDF difference
    x0 = {k: v * 0.9 for k, v in x0.items()}
    g = torch.Generator().manual_seed(10 + step)
    eps_out = {k: torch.randn(v.shape, generator=g, dtype=torch.float64) for k, v in x0.items()}
    if step == 0:  # keep the decoder mean within a bin or two of x0, where the CDF approximation is tight
        eps_out = {k: noise[k] + 0.3 * v for k, v in eps_out.items()}
    var_out = {k: torch.rand(v.shape, generator=g, dtype=torch.float64) * 2 - 1 for k, v in x0.items()}

    def model(x, tt):
        assert tt.tolist() == [step]
        return {k: torch.cat([eps_out[k], var_out[k]], dim=channel_dim(k)) for k in x}

    t = torch.tensor([step])
    terms = d.training_losses(model, x0, t, noise)
    assert {"vb", "video_vb", "audio_vb", "video_mse", "audio_mse", "mse", "loss"} <= set(terms)
    xt = d.q_sample(x0, t, noise)
    tol = 5e-3 if step == 0 else 1e-9  # the decoder uses a tanh approximation of the normal CDF
    for key in x0:
        direct = _direct_vb(d, x0[key][0], xt[key][0], step, var_out[key][0], eps_out[key][0])
        assert float(terms[f"{key}_vb"][0]) == pytest.approx(float(direct), rel=tol, abs=tol)
    assert torch.allclose(terms["loss"], terms["mse"] + terms["vb"])


def test_vb_trains_only_the_variance():
    d = create_gaussian_diffusion(steps=100, learn_sigma=True)
    x0, noise = _pair(n=2)
    out = {k: torch.zeros(v.shape[:channel_dim(k)] + (2 * v.shape[channel_dim(k)],) + v.shape[channel_dim(k) + 1:],
                          dtype=torch.float64, requires_grad=True) for k, v in x0.items()}
    terms = d.training_losses(lambda x, t: out, x0, torch.tensor([10, 60]), noise)
    grads = torch.autograd.grad(terms["vb"].sum(), [out["video"], out["audio"]])
    for key, gr in zip(("video", "audio"), grads):
        c = x0[key].shape[channel_dim(key)]
        mean_part = gr.narrow(channel_dim(key), 0, c)
        var_part = gr.narrow(channel_dim(key), c, c)
        assert float(mean_part.abs().max()) == 0.0 and float(var_part.abs().max()) > 0.0


def test_use_kl_and_rescaled_losses():
    x0, noise = _pair(n=2)
    t = torch.tensor([3, 70])
    model = lambda x, tt: {k: torch.cat([torch.zeros_like(v)] * 2, dim=channel_dim(k)) for k, v in x.items()}
    plain = create_gaussian_diffusion(steps=100, learn_sigma=True).training_losses(model, x0, t, noise)
    rescaled = create_gaussian_diffusion(steps=100, learn_sigma=True, rescale_learned_sigmas=True).training_losses(model, x0, t, noise)
    assert torch.allclose(rescaled["vb"], plain["vb"] * 0.1)
    kl = create_gaussian_diffusion(steps=100, learn_sigma=True, use_kl=True).training_losses(model, x0, t, noise)
    assert "mse" not in kl and torch.allclose(kl["loss"], plain["vb"] * 100)


def test_uniform_sampler():
    d = create_gaussian_diffusion(steps=8)
    sampler = create_named_schedule_sampler("uniform", d)
    t, w = sampler.sample(16000, "cpu", generator=torch.Generator().manual_seed(0))
    assert t.dtype == torch.int64 and w.dtype == torch.float32 and torch.all(w == 1.0)
    counts = torch.bincount(t, minlength=8).double()
    # binomial(16000, 1/8): sd = sqrt(16000 * 1/8 * 7/8) ~ 41.8
    assert (counts - 2000).abs().max() < 5 * 41.9
    t2, _ = sampler.sample(16000, "cpu", generator=torch.Generator().manual_seed(0))
    assert torch.equal(t, t2)


def test_loss_second_moment_sampler():
    d = create_gaussian_diffusion(steps=4)
    sampler = create_named_schedule_sampler("loss-second-moment", d)
    assert not sampler.warmed_up()
    for _ in range(10):
        # update without torch.distributed initialised: the local losses are used directly
        sampler.update_with_local_losses(torch.arange(4), torch.tensor([1.0, 1.0, 2.0, 4.0]))
    assert sampler.warmed_up()
    w = sampler.weights()
    expected = torch.tensor([1.0, 1.0, 2.0, 4.0]) / 8.0 * (1 - 0.001) + 0.001 / 4
    assert torch.allclose(torch.as_tensor(w, dtype=torch.float32), expected)
    t, weights = sampler.sample(20000, "cpu", generator=torch.Generator().manual_seed(1))
    assert torch.allclose(weights, (1.0 / (4 * expected[t])).float())
    freq = torch.bincount(t, minlength=4).double() / 20000
    assert (freq - expected.double()).abs().max() < 0.015
    # importance weights make the loss estimate unbiased: E_p[w * loss_t] = mean_t loss_t
    loss_t = torch.tensor([1.0, 1.0, 2.0, 4.0])
    assert float((weights * loss_t[t]).mean()) == pytest.approx(float(loss_t.mean()), rel=0.03)
    with pytest.raises(ValueError, match="loss-second-moment"):
        create_named_schedule_sampler("importance", d)
