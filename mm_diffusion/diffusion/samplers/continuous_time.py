"""The continuous-time view of a discrete diffusion that DPM-Solver integrates (Lu et al. 2022, appendix).

Index ``n`` of the ORIGINAL ``N``-step schedule sits at time ``t_n = (n + 1) / N`` (so ``t`` runs from
``1 / N`` to ``1``); between those knots ``log alpha_t`` (``alpha_t = sqrt(alpha_bar_t)``) is piecewise
linear in ``t``, ``sigma_t = sqrt(1 - alpha_t^2)`` and ``lambda_t = log(alpha_t / sigma_t)``. The model is
called at the fractional timestep ``tau = t N - 1`` (``tau * 1000 / N`` with ``rescale_timesteps``), so on a
knot it receives exactly that integer timestep. A respaced diffusion keeps only its knots (still at their
original times). Times and coefficients are plain float64 scalars (one time for the whole batch).
"""
from __future__ import annotations

import math
from typing import List

import numpy as np

__all__ = ["ContinuousSchedule", "SKIP_TYPES"]

SKIP_TYPES = ("time_uniform", "logSNR", "time_quadratic")


class ContinuousSchedule:
    """``alpha(t)``, ``sigma(t)``, ``lam(t)``, its inverse and the model time of a (possibly respaced) diffusion."""

    def __init__(self, diffusion):
        num = float(diffusion.original_num_steps)
        self.num = num
        self.rescale = bool(diffusion.rescale_timesteps)
        self.t_knots = (np.asarray(diffusion.timestep_map, dtype=np.float64) + 1.0) / num  # increasing
        self.log_alpha_knots = 0.5 * np.log(np.asarray(diffusion.alphas_cumprod, dtype=np.float64))
        if self.t_knots.size < 2:
            raise ValueError("DPM-Solver needs a diffusion with at least 2 timesteps")
        self.t_start = float(self.t_knots[-1])  # T (1 for an unspaced diffusion)
        self.t_end = float(self.t_knots[0])  # 1 / N

    def log_alpha(self, t: float) -> float:
        return float(np.interp(t, self.t_knots, self.log_alpha_knots))

    def alpha(self, t: float) -> float:
        return math.exp(self.log_alpha(t))

    def sigma(self, t: float) -> float:
        return math.sqrt(-math.expm1(2.0 * self.log_alpha(t)))

    def lam(self, t: float) -> float:
        log_a = self.log_alpha(t)
        return log_a - 0.5 * math.log(-math.expm1(2.0 * log_a))

    def inverse_lambda(self, lam: float) -> float:
        """The time ``t`` with ``lam(t) = lam`` (exact inverse of the piecewise-linear ``log alpha``)."""
        log_a = -0.5 * np.logaddexp(0.0, -2.0 * lam)
        return float(np.interp(log_a, self.log_alpha_knots[::-1], self.t_knots[::-1]))

    def model_time(self, t: float) -> float:
        """The timestep the model sees at time ``t``: ``t N - 1`` (an exact integer on a knot)."""
        tau = t * self.num - 1.0
        if abs(tau - round(tau)) < 1e-9:
            tau = float(round(tau))
        return tau * (1000.0 / self.num) if self.rescale else tau

    def timesteps(self, skip_type: str, t_from: float, t_to: float, n: int) -> List[float]:
        """``n + 1`` times from ``t_from`` down to ``t_to``: uniform in ``t`` (``time_uniform``), in ``sqrt(t)``
        (``time_quadratic``) or in ``lambda`` (``logSNR``)."""
        if skip_type == "time_uniform":
            out = np.linspace(t_from, t_to, n + 1)
        elif skip_type == "time_quadratic":
            out = np.linspace(math.sqrt(t_from), math.sqrt(t_to), n + 1) ** 2
        elif skip_type == "logSNR":
            lams = np.linspace(self.lam(t_from), self.lam(t_to), n + 1)
            out = np.array([t_from] + [self.inverse_lambda(v) for v in lams[1:-1]] + [t_to])
        else:
            raise ValueError(f"unknown skip_type {skip_type!r}; valid: {', '.join(SKIP_TYPES)}")
        return [float(v) for v in out]
