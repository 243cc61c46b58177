"""DPM-Solver (Lu et al. 2022, noise prediction) and DPM-Solver++ (Lu et al. 2022b, data prediction).

The solvers integrate the diffusion ODE on the continuous-time schedule of
:mod:`~.continuous_time` (``t`` from ``T = 1`` down to ``t_end = 1 / N``, model calls at fractional timesteps,
no rounding). With ``lambda = log(alpha / sigma)`` and a step ``s -> t`` (``h = lambda_t - lambda_s > 0``)
every update is an exponential integrator

* noise prediction ``m = eps``: ``x_t = (alpha_t / alpha_s) x_s - sigma_t [phi_1(h) m_s + phi_2(h) D1 + phi_3(h) D2]``;
* data prediction ``m = x0``: ``x_t = (sigma_t / sigma_s) x_s - alpha_t [phi_1(-h) m_s + phi_2(-h) D1 + phi_3(-h) D2]``;

with ``phi_1(u) = e^u - 1``, ``phi_2(u) = phi_1(u) / u - 1``, ``phi_3(u) = phi_2(u) / u - 1/2`` and the
differences ``D1 ~ h m'``, ``D2 ~ h^2 m'' / 2`` (the published convention) estimated from intermediate points
(singlestep, at ratios ``r1, r2`` of ``h``) or from earlier steps (multistep). ``solver_type="dpm_solver"`` is
the papers' update (orders 2-3 use one difference times ``phi_1 / (2 r1)`` or ``phi_2 / r2``);
``"taylor"`` keeps the full Taylor terms. Order 1 is DDIM. The final sample is the state at ``t_end`` (no
extra denoising call unless ``denoise_to_zero``).
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from tqdm.auto import tqdm

from ..tree import Tree, tree_items, tree_map
from .continuous_time import SKIP_TYPES, ContinuousSchedule
from .denoiser import as_denoiser
from .time_ops import ContinuousTime

__all__ = ["sample_dpm_solver", "dpm_solver_timesteps", "singlestep_orders", "SKIP_TYPES", "SOLVER_METHODS",
           "SOLVER_TYPES"]

SOLVER_METHODS = ("singlestep", "singlestep_fixed", "multistep", "adaptive")
SOLVER_TYPES = ("dpm_solver", "taylor")


def dpm_solver_timesteps(diffusion, steps: int, skip_type: str = "logSNR") -> List[float]:
    """``steps + 1`` decreasing continuous times from ``T`` to ``1 / N`` spaced by ``skip_type``
    (``time_uniform``: uniform in ``t``; ``time_quadratic``: in ``sqrt(t)``; ``logSNR``: in ``lambda``)."""
    if skip_type not in SKIP_TYPES:
        raise ValueError(f"unknown skip_type {skip_type!r}; valid: {', '.join(SKIP_TYPES)}")
    schedule = ContinuousSchedule(diffusion)
    return schedule.timesteps(skip_type, schedule.t_start, schedule.t_end, steps)


def singlestep_orders(steps: int, order: int) -> List[int]:
    """The stage orders of singlestep DPM-Solver ("DPM-Solver-fast") using ``steps`` model evaluations."""
    if order == 3:
        k = steps // 3 + 1
        orders = [3] * (k - 2) + [2, 1] if steps % 3 == 0 else [3] * (k - 1) + [1 if steps % 3 == 1 else 2]
    elif order == 2:
        orders = [2] * (steps // 2) + ([1] if steps % 2 else [])
    elif order == 1:
        orders = [1] * steps
    else:
        raise ValueError(f"order must be 1, 2 or 3, got {order!r}")
    return [o for o in orders if o > 0]


def _phis(u: float) -> Tuple[float, float, float]:
    phi1 = math.expm1(u)
    phi2 = phi1 / u - 1.0
    return phi1, phi2, phi2 / u - 0.5


def _diff(a: Tree, b: Tree, scale: float = 1.0) -> Tree:
    """``(a - b) * scale`` leaf by leaf."""
    return tree_map(lambda u, v: (u - v) * scale, a, b)


# ---------------------------------------------------------------------------------------- the updates
class _Solver:
    """The update formulas on the continuous-time schedule; ``model`` is the (conditioned) prediction."""

    def __init__(self, denoise, diffusion, data_prediction: bool, solver_type: str):
        self.denoise = denoise
        self.diffusion = diffusion
        self.schedule = ContinuousSchedule(diffusion)
        self.data_prediction = data_prediction
        self.taylor = solver_type == "taylor"
        self.last_x0: Optional[Tree] = None

    def lam(self, t: float) -> float:
        return self.schedule.lam(t)

    def model(self, x: Tree, t: float) -> Tree:
        pred = self.denoise(x, ContinuousTime(self.diffusion, self.schedule, t))
        self.last_x0 = pred.pred_xstart
        return pred.pred_xstart if self.data_prediction else pred.eps

    def signed_h(self, s: float, t: float) -> float:
        """``u = h`` (noise prediction) or ``-h`` (data prediction), ``h = lambda_t - lambda_s``."""
        h = self.lam(t) - self.lam(s)
        return -h if self.data_prediction else h

    def update(self, x: Tree, s: float, t: float, terms: Sequence[Tuple[float, Tree]], wide: bool = False) -> Tree:
        """``lead * x - scale * sum(c * m for c, m in terms)`` for the step ``s -> t`` (float64 if ``wide``)."""
        sc = self.schedule
        if self.data_prediction:
            lead, scale = sc.sigma(t) / sc.sigma(s), sc.alpha(t)
        else:
            lead, scale = math.exp(sc.log_alpha(t) - sc.log_alpha(s)), sc.sigma(t)
        coefs = [scale * c for c, _ in terms]

        def _combine(xs, *ms):  # accumulated in float64: the terms can be much larger than the result
            out = lead * xs.double()
            for c, m in zip(coefs, ms):
                out = out - c * m.double()
            return out if wide else out.to(xs.dtype)

        return tree_map(_combine, x, *[m for _, m in terms])

    def inner(self, s: float, t: float, r: float) -> float:
        """The time at ``lambda_s + r h``."""
        lam_s = self.lam(s)
        return self.schedule.inverse_lambda(lam_s + r * (self.lam(t) - lam_s))

    def first(self, x: Tree, s: float, t: float, m_s: Tree, wide: bool = False) -> Tree:
        return self.update(x, s, t, [(_phis(self.signed_h(s, t))[0], m_s)], wide)

    def second(self, x: Tree, s: float, t: float, m_s: Tree, r1: float, wide: bool = False) -> Tuple[Tree, Tree]:
        """Singlestep order 2 through ``s1`` at ratio ``r1``; returns ``(x_t, m_s1)``. ``wide``: ``x_t`` in
        float64 (the adaptive solver's error estimate subtracts two nearly equal solutions)."""
        u = self.signed_h(s, t)
        s1 = self.inner(s, t, r1)
        m_s1 = self.model(self.update(x, s, s1, [(math.expm1(r1 * u), m_s)]), s1)
        phi1, phi2, _ = _phis(u)
        coef = phi2 / r1 if self.taylor else 0.5 * phi1 / r1
        return self.update(x, s, t, [(phi1, m_s), (coef, _diff(m_s1, m_s))], wide), m_s1

    def third(self, x: Tree, s: float, t: float, m_s: Tree, r1: float, r2: float,
              m_s1: Optional[Tree] = None, wide: bool = False) -> Tree:
        """Singlestep order 3 through ``s1, s2`` at ratios ``r1 < r2`` (``m_s1`` reused when given)."""
        u = self.signed_h(s, t)
        s1, s2 = self.inner(s, t, r1), self.inner(s, t, r2)
        if m_s1 is None:
            m_s1 = self.model(self.update(x, s, s1, [(math.expm1(r1 * u), m_s)]), s1)
        d1 = _diff(m_s1, m_s)
        x_s2 = self.update(x, s, s2, [(math.expm1(r2 * u), m_s), (r2 / r1 * _phis(r2 * u)[1], d1)])
        d2 = _diff(self.model(x_s2, s2), m_s)
        phi1, phi2, phi3 = _phis(u)
        if not self.taylor:
            return self.update(x, s, t, [(phi1, m_s), (phi2 / r2, d2)], wide)
        # m' and m''/2 (times h, h^2) from the two divided differences d1 / r1 and d2 / r2
        big_d1 = tree_map(lambda a, b: (r2 / r1 * a - r1 / r2 * b) / (r2 - r1), d1, d2)
        big_d2 = tree_map(lambda a, b: 2.0 * (b / r2 - a / r1) / (r2 - r1), d1, d2)
        return self.update(x, s, t, [(phi1, m_s), (phi2, big_d1), (phi3, big_d2)], wide)

    def stage(self, x: Tree, s: float, t: float, order: int, r1: float, r2: float) -> Tree:
        m_s = self.model(x, s)
        if order == 1:
            return self.first(x, s, t, m_s)
        if order == 2:
            return self.second(x, s, t, m_s, r1)[0]
        return self.third(x, s, t, m_s, r1, r2)

    def multistep(self, x: Tree, history: Sequence[Tuple[float, Tree]], t: float, order: int) -> Tree:
        """Multistep update from the last of ``history = [(t_i, m_i), ...]`` (oldest first) to ``t``."""
        (s, m0) = history[-1]
        u = self.signed_h(s, t)
        phi1, phi2, phi3 = _phis(u)
        if order == 1:
            return self.update(x, s, t, [(phi1, m0)])
        h = self.lam(t) - self.lam(s)
        (s1, m1) = history[-2]
        r0 = (self.lam(s) - self.lam(s1)) / h
        d1_0 = _diff(m0, m1, 1.0 / r0)
        if order == 2:
            return self.update(x, s, t, [(phi1, m0), (phi2 if self.taylor else 0.5 * phi1, d1_0)])
        (s2, m2) = history[-3]
        r1 = (self.lam(s1) - self.lam(s2)) / h
        d1_1 = _diff(m1, m2, 1.0 / r1)
        big_d1 = tree_map(lambda a, b: a + r0 / (r0 + r1) * (a - b), d1_0, d1_1)
        big_d2 = _diff(d1_0, d1_1, 1.0 / (r0 + r1))
        return self.update(x, s, t, [(phi1, m0), (phi2, big_d1), (phi3, big_d2)])


# ---------------------------------------------------------------------------------------- the drivers
def _run_multistep(solver: _Solver, x: Tree, grid: Sequence[float], order: int, lower_order_final: bool,
                   report: Callable, progress: bool) -> Tree:
    """``len(grid) - 1`` multistep steps (one model evaluation each); the first ``order - 1`` steps warm up
    with lower orders, and with fewer than 10 steps the last ones drop back (``lower_order_final``)."""
    steps = len(grid) - 1
    order = min(order, steps)
    history: List[Tuple[float, Tree]] = [(grid[0], solver.model(x, grid[0]))]
    for k in tqdm(range(1, steps + 1), disable=not progress, leave=False, desc="dpm_solver multistep"):
        if k < order:
            step_order = k
        elif lower_order_final and steps < 10:
            step_order = min(order, steps + 1 - k)
        else:
            step_order = order
        x = solver.multistep(x, history, grid[k], step_order)
        if k < steps:
            history = (history + [(grid[k], solver.model(x, grid[k]))])[-order:]
        report(k - 1, grid[k], x)
    return x


def _singlestep_plan(solver: _Solver, steps: int, order: int, skip_type: str, fixed: bool):
    """``(outer times, stage orders)``: "DPM-Solver-fast" (``fixed=False``) or ``steps // order`` stages of
    ``order``. The outer grid has one interval per stage (``logSNR`` or fixed) or takes every stage's end
    from a ``steps``-interval grid of ``skip_type``."""
    sc = solver.schedule
    if fixed:
        if steps < order:
            raise ValueError(f"singlestep_fixed with order {order} needs steps >= {order}, got {steps}")
        orders = [order] * (steps // order)
    else:
        orders = singlestep_orders(steps, order)
    if fixed or skip_type == "logSNR":
        return sc.timesteps(skip_type, sc.t_start, sc.t_end, len(orders)), orders
    fine = sc.timesteps(skip_type, sc.t_start, sc.t_end, steps)
    ends = [0]
    for o in orders:
        ends.append(ends[-1] + o)
    return [fine[i] for i in ends], orders


def _run_singlestep(solver: _Solver, x: Tree, outer: Sequence[float], orders: Sequence[int], skip_type: str,
                    report: Callable, progress: bool) -> Tree:
    """One singlestep stage per outer interval; a stage's intermediate points divide it by ``skip_type``."""
    for k, stage_order in enumerate(tqdm(orders, disable=not progress, leave=False, desc="dpm_solver singlestep")):
        s, t = outer[k], outer[k + 1]
        inner = solver.schedule.timesteps(skip_type, s, t, stage_order)
        lams = [solver.lam(v) for v in inner]
        h = lams[-1] - lams[0]
        r1 = (lams[1] - lams[0]) / h if stage_order > 1 else 0.0
        r2 = (lams[2] - lams[0]) / h if stage_order > 2 else 0.0
        x = solver.stage(x, s, t, stage_order, r1, r2)
        report(k, t, x)
    return x


def _scaled_error(higher: Tree, lower: Tree, prev: Tree, atol: float, rtol: float, skip_keys) -> float:
    """Largest RMS (over the batch's samples and, for an AV pair, its modalities) of ``(higher - lower) /
    max(atol, rtol * max(|lower|, |prev|))``; known (conditioned) modalities are skipped."""
    worst = 0.0
    for (key, hi), (_, lo), (_, pv) in zip(tree_items(higher), tree_items(lower), tree_items(prev)):
        if key in skip_keys:
            continue
        tol = torch.clamp(rtol * torch.maximum(lo.abs(), pv.abs()), min=atol)
        err = ((hi - lo) / tol).reshape(hi.shape[0], -1)
        worst = max(worst, float(err.square().mean(dim=1).sqrt().max()))
    return worst


def _run_adaptive(solver: _Solver, x: Tree, order: int, atol: float, rtol: float, theta: float, t_err: float,
                  h_init: float, skip_keys, report: Callable, progress: bool) -> Tree:
    """DPM-Solver-12 (``order=2``) or -23 (``order=3``): a trial step of ``h`` in lambda is accepted when the
    scaled difference of the two orders is <= 1; the next ``h = min(theta h E^(-1/order), lambda_end - lambda_s)``."""
    sc = solver.schedule
    s, t_end = sc.t_start, sc.t_end
    lam_end, h = solver.lam(t_end), h_init
    x_prev, k = x, 0
    bar = tqdm(disable=not progress, leave=False, desc="dpm_solver adaptive")
    while abs(s - t_end) > t_err:
        t = sc.inverse_lambda(solver.lam(s) + h)
        m_s = solver.model(x, s)
        if order == 2:
            lower = solver.first(x, s, t, m_s, wide=True)
            higher = solver.second(x, s, t, m_s, 0.5, wide=True)[0]
        else:
            lower, m_s1 = solver.second(x, s, t, m_s, 1.0 / 3.0, wide=True)
            higher = solver.third(x, s, t, m_s, 1.0 / 3.0, 2.0 / 3.0, m_s1=m_s1, wide=True)
        err = _scaled_error(higher, lower, x_prev, atol, rtol, skip_keys)
        if err <= 1.0:
            x, s, x_prev = tree_map(lambda v, ref: v.to(ref.dtype), higher, x), t, lower
            report(k, t, x)
            k += 1
            bar.update(1)
        grow = theta * err ** (-1.0 / order) if err > 0 else math.inf
        h = min(grow * h, lam_end - solver.lam(s))
    bar.close()
    return x


# ---------------------------------------------------------------------------------------- the sampler
def _check_settings(algorithm: str, method: str, order: int, skip_type: str, solver_type: str, steps) -> None:
    if algorithm not in ("dpm_solver", "dpm_solver++"):
        raise ValueError(f"unknown algorithm {algorithm!r}; valid: 'dpm_solver', 'dpm_solver++'")
    if method not in SOLVER_METHODS:
        raise ValueError(f"unknown solver method {method!r}; valid: {', '.join(SOLVER_METHODS)}")
    if order not in (1, 2, 3) or (method == "adaptive" and order not in (2, 3)):
        valid = "2 or 3" if method == "adaptive" else "1, 2 or 3"
        raise ValueError(f"order {order!r} is not valid for method {method!r}; use {valid}")
    if skip_type not in SKIP_TYPES:
        raise ValueError(f"unknown skip_type {skip_type!r}; valid: {', '.join(SKIP_TYPES)}")
    if solver_type not in SOLVER_TYPES:
        raise ValueError(f"unknown solver_type {solver_type!r}; valid: {', '.join(SOLVER_TYPES)}")
    if method != "adaptive" and (not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a positive integer, got {steps!r}")


@torch.no_grad()
def sample_dpm_solver(model_fn: Callable, x: Tree, *, diffusion, steps: int = 20, order: int = 3,
                      skip_type: str = "logSNR", method: str = "singlestep", algorithm: str = "dpm_solver",
                      solver_type: str = "dpm_solver", clip_denoised: bool = False, thresholding: bool = False,
                      condition=None, classifier_scale: float = 0.0, generator: Optional[torch.Generator] = None,
                      lower_order_final: bool = True, denoise_to_zero: bool = False,
                      atol: float = 0.0078, rtol: float = 0.05, h_init: float = 0.05, theta: float = 0.9,
                      t_err: float = 1e-5, callback: Optional[Callable[[dict], None]] = None,
                      progress: bool = True) -> Tree:
    """DPM-Solver (``algorithm="dpm_solver"``) or DPM-Solver++ (``"dpm_solver++"``) from the noise ``x`` at
    ``t = T`` to the sample at ``t_end = 1 / N`` (the defaults: MM-Diffusion's ``dpm_solver``).

    Args:
        steps: model evaluations (singlestep / multistep; ``singlestep_fixed`` uses ``steps // order`` stages);
            ignored by ``method="adaptive"``.
        order: 1, 2 or 3 (adaptive: 2 or 3). skip_type: ``time_uniform``, ``logSNR`` or ``time_quadratic``.
        method: ``singlestep`` ("DPM-Solver-fast"), ``singlestep_fixed``, ``multistep`` or ``adaptive``
            (tolerances ``atol`` / ``rtol``, first step ``h_init`` in lambda, safety ``theta``, stop within
            ``t_err`` of ``t_end``). solver_type: ``dpm_solver`` (the papers') or ``taylor``.
        clip_denoised: clamp every x0 prediction to [-1, 1] (eps re-derived); ``thresholding``: dynamic
            thresholding (quantile 0.995, max 1) instead.
        lower_order_final: multistep with fewer than 10 steps lowers the order of the last steps.
        denoise_to_zero: one more evaluation at ``t_end`` returns its x0 prediction (``steps + 1`` NFE).
        callback: ``callback({"i", "t", "x", "denoised"})`` after every step; ``t`` is the model timestep.
        others: as :func:`~mm_diffusion.diffusion.samplers.ddpm.sample_ddpm`.
    """
    algorithm = algorithm.replace("-", "_")
    _check_settings(algorithm, method, order, skip_type, solver_type, steps)
    denoise = as_denoiser(model_fn, diffusion, condition=condition, classifier_scale=classifier_scale,
                          clip_denoised=clip_denoised, thresholding=thresholding, generator=generator)
    solver = _Solver(denoise, diffusion, data_prediction=(algorithm == "dpm_solver++"), solver_type=solver_type)
    sc = solver.schedule

    def report(i, t, x_now):
        if callback is not None:
            callback({"i": i, "t": sc.model_time(t), "x": x_now, "denoised": solver.last_x0})

    if method == "multistep":
        grid = sc.timesteps(skip_type, sc.t_start, sc.t_end, steps)
        x = _run_multistep(solver, x, grid, order, lower_order_final, report, progress)
    elif method == "adaptive":
        x = _run_adaptive(solver, x, order, atol, rtol, theta, t_err, h_init, denoise.known_keys, report, progress)
    else:
        outer, orders = _singlestep_plan(solver, steps, order, skip_type, fixed=(method == "singlestep_fixed"))
        x = _run_singlestep(solver, x, outer, orders, skip_type, report, progress)
    if denoise_to_zero:
        x = denoise(x, ContinuousTime(diffusion, sc, sc.t_end)).pred_xstart
        if callback is not None:
            callback({"i": -1, "t": sc.model_time(sc.t_end), "x": x, "denoised": x})
    return denoise.finalize(x)
