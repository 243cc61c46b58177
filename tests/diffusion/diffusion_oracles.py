"""Closed-form optimal denoisers for Gaussian data, used as analytic oracles by the diffusion tests.

For ``x0 ~ N(mu, Sigma)`` (all modalities flattened and concatenated, D dims) and
``x_t = a x0 + s eps`` (``a = sqrt(alpha_bar_t)``, ``s = sqrt(1 - alpha_bar_t)``):
``E[x0 | x_t] = mu + a Sigma (a^2 Sigma + s^2 I)^-1 (x_t - a mu)`` and the optimal
``eps = (x_t - a E[x0 | x_t]) / s``. ``alpha_bar`` is indexed by ORIGINAL timesteps, so these
oracles also check that respaced diffusions pass the right timesteps to the model.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import torch

SHAPES = {"video": (2, 1, 2, 2), "audio": (1, 4)}  # per-sample shapes: video [F, C, H, W], audio [C, L]


def dims(shapes=SHAPES) -> Dict[str, int]:
    return {k: int(np.prod(s)) for k, s in shapes.items()}


def flatten(x: Dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([v.reshape(v.shape[0], -1) for v in x.values()], dim=1)


def unflatten(flat: torch.Tensor, shapes=SHAPES) -> Dict[str, torch.Tensor]:
    out, start = {}, 0
    for k, s in shapes.items():
        n = int(np.prod(s))
        out[k] = flat[:, start:start + n].reshape(flat.shape[0], *s)
        start += n
    return out


def correlated_gaussian(seed: int = 0, shapes=SHAPES, coupling: float = 0.8) -> Tuple[torch.Tensor, torch.Tensor]:
    """A mean ``[D]`` and covariance ``[D, D]`` (float64) where audio strongly predicts video."""
    g = torch.Generator().manual_seed(seed)
    d = dims(shapes)
    dv, da = d["video"], d["audio"]
    mu = (torch.rand(dv + da, generator=g, dtype=torch.float64) - 0.5) * 0.6
    # video = coupling * B audio + independent part; audio itself correlated
    la = torch.randn(da, da, generator=g, dtype=torch.float64) * 0.2 + torch.eye(da, dtype=torch.float64) * 0.3
    cov_a = la @ la.T
    b = torch.randn(dv, da, generator=g, dtype=torch.float64) * coupling
    lv = torch.randn(dv, dv, generator=g, dtype=torch.float64) * 0.05 + torch.eye(dv, dtype=torch.float64) * 0.15
    cov_v = b @ cov_a @ b.T + lv @ lv.T
    cov_va = b @ cov_a
    cov = torch.zeros(dv + da, dv + da, dtype=torch.float64)
    cov[:dv, :dv], cov[:dv, dv:], cov[dv:, :dv], cov[dv:, dv:] = cov_v, cov_va, cov_va.T, cov_a
    return mu, cov


def conditional_gaussian(mu, cov, known: str, value: torch.Tensor, shapes=SHAPES):
    """Mean and covariance (float64) of the other modality given ``known`` = ``value`` (one sample)."""
    d = dims(shapes)
    idx, start = {}, 0
    for k, n in d.items():
        idx[k] = torch.arange(start, start + n)
        start += n
    other = [k for k in d if k != known][0]
    o, kn = idx[other], idx[known]
    s_oo, s_ok, s_kk = cov[o][:, o], cov[o][:, kn], cov[kn][:, kn]
    gain = s_ok @ torch.linalg.inv(s_kk)
    m = mu[o] + gain @ (value.reshape(-1).double() - mu[kn])
    return m, s_oo - gain @ s_ok.T


def alpha_bar_at(alphas_cumprod: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``alpha_bar`` (float64 ``[N]``) at model timesteps ``t``: the table entry for int64 ``t``; for a float
    ``t`` (DPM-Solver's fractional timesteps) ``log sqrt(alpha_bar)`` interpolated linearly between entries."""
    if t.dtype == torch.int64:
        return alphas_cumprod[t.cpu()]
    if t.dtype not in (torch.float32, torch.float64):  # float64: the float64 reference solver of the tests
        raise AssertionError(f"model got timesteps of dtype {t.dtype}, expected int64 or float32")
    tau = t.double().cpu()
    grid = np.arange(alphas_cumprod.numel(), dtype=np.float64)
    log_a = np.interp(tau.numpy(), grid, 0.5 * np.log(alphas_cumprod.numpy()))
    return torch.from_numpy(np.exp(2.0 * log_a))


class GaussianOracle:
    """``model_fn(x_t, t)`` returning the optimal eps (or x0) for ``N(mu, cov)`` data.

    Args:
        alphas_cumprod: the ORIGINAL schedule ``[T]`` (float64).
        predict: ``"eps"`` or ``"x0"``; ``learn_sigma`` appends zero variance channels.
        tensor: work on a bare tensor ``[N, D]`` instead of the AV dict.
    """

    def __init__(self, mu, cov, alphas_cumprod, predict: str = "eps", learn_sigma: bool = False, shapes=SHAPES,
                 tensor: bool = False):
        self.mu, self.cov = mu.double(), cov.double()
        self.ab = torch.as_tensor(np.asarray(alphas_cumprod), dtype=torch.float64)
        self.predict, self.learn_sigma, self.shapes, self.tensor = predict, learn_sigma, shapes, tensor
        d = self.mu.numel()
        a = self.ab.sqrt()[:, None, None]
        s2 = (1.0 - self.ab)[:, None, None]
        eye = torch.eye(d, dtype=torch.float64)
        inner = a * a * self.cov + s2 * eye
        self.gain = (a * self.cov) @ torch.linalg.inv(inner)  # [T, D, D]
        self.calls = []

    def _gain(self, ab: float) -> torch.Tensor:
        eye = torch.eye(self.mu.numel(), dtype=torch.float64)
        return (ab ** 0.5 * self.cov) @ torch.linalg.inv(ab * self.cov + (1.0 - ab) * eye)

    def posterior_mean(self, flat: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``E[x0 | x_t]`` (float64 ``[N, D]``) at model timesteps ``t`` (int64, or float32 fractional)."""
        x = flat.double().cpu()
        ab = alpha_bar_at(self.ab, t)
        centred = x - ab.sqrt()[:, None] * self.mu
        if t.dtype == torch.int64 and bool((t == t[0]).all()):
            return self.mu + centred @ self.gain[t[0].cpu()].T
        if t.dtype == torch.int64:
            return self.mu + torch.einsum("nij,nj->ni", self.gain[t.cpu()], centred)
        if not bool((t == t[0]).all()):
            raise AssertionError("float timesteps must be the same for the whole batch")
        return self.mu + centred @ self._gain(float(ab[0])).T

    def __call__(self, x_t, t):
        self.calls.append(int(t[0]) if t.dtype == torch.int64 else float(t[0]))
        flat = x_t if self.tensor else flatten(x_t)
        x0 = self.posterior_mean(flat, t)
        if self.predict == "x0":
            out = x0
        else:
            ab = alpha_bar_at(self.ab, t)[:, None]
            out = (flat.double().cpu() - ab.sqrt() * x0) / (1.0 - ab).sqrt()
        out = out.to(flat.dtype).to(flat.device)
        if self.tensor:
            return torch.cat([out, torch.zeros_like(out)], dim=1) if self.learn_sigma else out
        tree = unflatten(out, self.shapes)
        if self.learn_sigma:
            from mm_diffusion.diffusion.tree import channel_dim

            tree = {k: torch.cat([v, torch.zeros_like(v)], dim=channel_dim(k)) for k, v in tree.items()}
        return tree


class MixtureOracle:
    """Optimal eps for i.i.d. elements ``x0 ~ 0.5 N(-m, s^2) + 0.5 N(m, s^2)`` (bare tensor)."""

    def __init__(self, m: float, s: float, alphas_cumprod):
        self.m, self.s = m, s
        self.ab = torch.as_tensor(np.asarray(alphas_cumprod), dtype=torch.float64)

    def __call__(self, x_t, t):
        shape = [-1] + [1] * (x_t.dim() - 1)
        ab = alpha_bar_at(self.ab, t).reshape(shape)
        a, var_n = ab.sqrt(), 1.0 - ab
        x = x_t.double().cpu()
        tot = a * a * self.s ** 2 + var_n
        logw = torch.stack([-(x - a * c) ** 2 / (2 * tot) for c in (-self.m, self.m)])
        w = torch.softmax(logw, dim=0)
        means = torch.stack([c + a * self.s ** 2 / tot * (x - a * c) for c in (-self.m, self.m)])
        x0 = (w * means).sum(0)
        return ((x - a * x0) / var_n.sqrt()).to(x_t.dtype)


def sample_stats(flat: torch.Tensor):
    x = flat.double()
    m = x.mean(0)
    c = (x - m).T @ (x - m) / (x.shape[0] - 1)
    return m, c


def mean_tolerance(cov, n: int, z: float = 5.0) -> torch.Tensor:
    """``z`` standard errors of a sample mean of ``n`` draws, per dimension."""
    return z * torch.sqrt(torch.diagonal(cov) / n)


def cov_tolerance(cov, n: int, z: float = 5.0) -> torch.Tensor:
    """``z`` standard errors of each sample-covariance entry: ``sqrt((S_ii S_jj + S_ij^2) / n)``."""
    d = torch.diagonal(cov)
    return z * torch.sqrt((d[:, None] * d[None, :] + cov ** 2) / n)
