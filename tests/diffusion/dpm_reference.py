"""A float64 reference DPM-Solver / DPM-Solver++ written from the papers' update equations (test oracle).

Lu et al. 2022 (DPM-Solver, Algorithms 1-2 and the DPM-Solver-fast / adaptive procedures) and Lu et al. 2022b
(DPM-Solver++, Algorithms 1-2 and the third-order variants), on the continuous-time schedule of a discrete
diffusion: knots ``t_n = (n + 1) / N`` with ``log alpha`` linear in between; the inverse of ``lambda`` is found
by bisection here (independently of the product's closed form). ``eps_fn(x, t)`` is the exact noise prediction
at continuous time ``t`` (float64 ``[B, D]``).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import brentq


class RefSchedule:
    def __init__(self, alphas_cumprod):
        ab = np.asarray(alphas_cumprod, dtype=np.float64)
        self.n = ab.size
        self.knots = np.arange(1, self.n + 1, dtype=np.float64) / self.n
        self.log_a = 0.5 * np.log(ab)

    def alpha(self, t):
        return math.exp(np.interp(t, self.knots, self.log_a))

    def sigma(self, t):
        return math.sqrt(1.0 - self.alpha(t) ** 2)

    def lam(self, t):
        return math.log(self.alpha(t)) - math.log(self.sigma(t))

    def t_of_lam(self, lam):
        if lam >= self.lam(self.knots[0]):
            return float(self.knots[0])
        if lam <= self.lam(1.0):
            return 1.0
        return brentq(lambda t: self.lam(t) - lam, self.knots[0], 1.0, xtol=1e-15, rtol=1e-15)

    def grid(self, kind, t_a, t_b, n):
        if kind == "time_uniform":
            return list(np.linspace(t_a, t_b, n + 1))
        if kind == "time_quadratic":
            return list(np.linspace(t_a ** 0.5, t_b ** 0.5, n + 1) ** 2)
        lams = np.linspace(self.lam(t_a), self.lam(t_b), n + 1)
        return [t_a] + [self.t_of_lam(v) for v in lams[1:-1]] + [t_b]


class RefSolver:
    """``data=False``: DPM-Solver on eps; ``data=True``: DPM-Solver++ on x0 (``threshold``: Imagen's dynamic
    thresholding, ``torch.quantile`` at 0.995, max 1)."""

    def __init__(self, eps_fn, sched: RefSchedule, data: bool, taylor: bool = False, threshold: bool = False,
                 blocks=None):
        self.eps_fn, self.s, self.data, self.taylor, self.threshold = eps_fn, sched, data, taylor, threshold
        self.blocks = blocks or [slice(None)]  # the modalities' columns: thresholding is per modality
        self.nfe = 0

    def m(self, x, t):
        self.nfe += 1
        eps = self.eps_fn(x, t)
        if not self.data:
            return eps
        x0 = (x - self.s.sigma(t) * eps) / self.s.alpha(t)
        if self.threshold:
            parts = []
            for b in self.blocks:
                q = torch.quantile(x0[:, b].abs(), 0.995, dim=1, keepdim=True).clamp(min=1.0)
                parts.append(torch.maximum(torch.minimum(x0[:, b], q), -q) / q)
            x0 = torch.cat(parts, dim=1)
        return x0

    # ------------------------------------------------------------ x_t from x_s with the model terms
    def base(self, x, s, t):
        """The linear part and the factor multiplying ``-(...)``: (alpha_t/alpha_s, sigma_t) or (sigma_t/sigma_s, alpha_t)."""
        S = self.s
        if self.data:
            return S.sigma(t) / S.sigma(s) * x, S.alpha(t)
        return S.alpha(t) / S.alpha(s) * x, S.sigma(t)

    def h(self, s, t):
        return self.s.lam(t) - self.s.lam(s)

    def ddim(self, x, s, t, m_s):
        lin, f = self.base(x, s, t)
        h = self.h(s, t)
        e = (math.exp(-h) - 1.0) if self.data else (math.exp(h) - 1.0)
        return lin - f * e * m_s

    def two_s(self, x, s, t, m_s, r):
        S, h = self.s, self.h(s, t)
        s1 = S.t_of_lam(S.lam(s) + r * h)
        m1 = self.m(self.ddim(x, s, s1, m_s), s1)
        lin, f = self.base(x, s, t)
        if self.data:
            if self.taylor:
                return lin - f * (math.exp(-h) - 1.0) * m_s + f * ((math.exp(-h) - 1.0) / h + 1.0) * (m1 - m_s) / r, m1
            return lin - f * (math.exp(-h) - 1.0) * ((1.0 - 0.5 / r) * m_s + 0.5 / r * m1), m1
        if self.taylor:
            return lin - f * (math.exp(h) - 1.0) * m_s - f * ((math.exp(h) - 1.0) / h - 1.0) * (m1 - m_s) / r, m1
        return lin - f * (math.exp(h) - 1.0) * m_s - f / (2.0 * r) * (math.exp(h) - 1.0) * (m1 - m_s), m1

    def three_s(self, x, s, t, m_s, r1, r2, m1=None):
        S, h = self.s, self.h(s, t)
        s1, s2 = S.t_of_lam(S.lam(s) + r1 * h), S.t_of_lam(S.lam(s) + r2 * h)
        if m1 is None:
            m1 = self.m(self.ddim(x, s, s1, m_s), s1)
        lin2, f2 = self.base(x, s, s2)
        g = r2 * h
        if self.data:
            u2 = lin2 - f2 * (math.exp(-g) - 1.0) * m_s + f2 * r2 / r1 * ((math.exp(-g) - 1.0) / g + 1.0) * (m1 - m_s)
        else:
            u2 = lin2 - f2 * (math.exp(g) - 1.0) * m_s - f2 * r2 / r1 * ((math.exp(g) - 1.0) / g - 1.0) * (m1 - m_s)
        m2 = self.m(u2, s2)
        lin, f = self.base(x, s, t)
        sg = -1.0 if self.data else 1.0
        e1 = math.exp(sg * h) - 1.0
        e2 = (math.exp(sg * h) - 1.0 - sg * h) / (sg * h)  # = e1 / (sg h) - 1
        e3 = (math.exp(sg * h) - 1.0 - sg * h - h * h / 2.0) / (h * h)  # = e2 / (sg h) - 1/2
        if not self.taylor:
            return lin - f * e1 * m_s - f * e2 / r2 * (m2 - m_s)
        d1 = (r2 * (m1 - m_s) / r1 - r1 * (m2 - m_s) / r2) / (r2 - r1)   # ~ h m'
        d2 = 2.0 * ((m2 - m_s) / r2 - (m1 - m_s) / r1) / (r2 - r1)       # ~ h^2 m'' / 2 (published scaling)
        return lin - f * (e1 * m_s + e2 * d1 + e3 * d2)

    def multistep(self, x, ts, ms, t, order):
        s = ts[-1]
        lin, f = self.base(x, s, t)
        h = self.h(s, t)
        sg = -1.0 if self.data else 1.0
        e1 = math.exp(sg * h) - 1.0
        e2 = e1 / (sg * h) - 1.0
        e3 = (math.exp(sg * h) - 1.0 - sg * h - h * h / 2.0) / (h * h)
        if order == 1:
            return lin - f * e1 * ms[-1]
        r0 = self.h(ts[-2], s) / h
        d10 = (ms[-1] - ms[-2]) / r0
        if order == 2:
            return lin - f * e1 * ms[-1] - f * (e2 if self.taylor else 0.5 * e1) * d10
        r1 = self.h(ts[-3], ts[-2]) / h
        d11 = (ms[-2] - ms[-3]) / r1
        d1 = d10 + r0 / (r0 + r1) * (d10 - d11)
        d2 = (d10 - d11) / (r0 + r1)
        return lin - f * (e1 * ms[-1] + e2 * d1 + e3 * d2)


def fast_orders(steps, order):
    if order == 1:
        return [1] * steps
    if order == 2:
        return [2] * (steps // 2) + [1] * (steps % 2)
    k = steps // 3 + 1
    tail = {0: [2, 1], 1: [1], 2: [2]}[steps % 3]
    return [3] * (k - len(tail) if steps % 3 == 0 else k - 1) + tail


def ref_sample(solver: RefSolver, x, *, steps, order, skip, method, denoise=False, blocks=None):
    S = solver.s
    T, t0 = 1.0, float(S.knots[0])
    if method == "multistep":
        ts_all = S.grid(skip, T, t0, steps)
        order = min(order, steps)
        ts, ms = [ts_all[0]], [solver.m(x, ts_all[0])]
        for k in range(1, steps + 1):
            o = k if k < order else (min(order, steps + 1 - k) if steps < 10 else order)
            x = solver.multistep(x, ts, ms, ts_all[k], o)
            if k < steps:
                ts, ms = (ts + [ts_all[k]])[-order:], (ms + [solver.m(x, ts_all[k])])[-order:]
    elif method == "adaptive":
        x = _ref_adaptive(solver, x, order, T, t0, blocks=blocks)
    else:
        if method == "singlestep_fixed":
            orders = [order] * (steps // order)
            outer = S.grid(skip, T, t0, len(orders))
        else:
            orders = fast_orders(steps, order)
            if skip == "logSNR":
                outer = S.grid(skip, T, t0, len(orders))
            else:
                fine = S.grid(skip, T, t0, steps)
                outer = [fine[int(c)] for c in np.cumsum([0] + orders)]
        for i, o in enumerate(orders):
            s, t = outer[i], outer[i + 1]
            inner = S.grid(skip, s, t, o)
            h = S.lam(t) - S.lam(s)
            r = [(S.lam(v) - S.lam(s)) / h for v in inner[1:-1]]
            m_s = solver.m(x, s)
            if o == 1:
                x = solver.ddim(x, s, t, m_s)
            elif o == 2:
                x = solver.two_s(x, s, t, m_s, r[0])[0]
            else:
                x = solver.three_s(x, s, t, m_s, r[0], r[1])
    if denoise:
        eps = solver.eps_fn(x, t0)
        x = (x - S.sigma(t0) * eps) / S.alpha(t0)
    return x


def _ref_adaptive(solver: RefSolver, x, order, T, t0, atol=0.0078, rtol=0.05, theta=0.9, t_err=1e-5, h=0.05,
                  blocks=None):
    """``blocks``: column slices of the modalities (the error is the max of the per-modality RMS)."""
    S = solver.s
    s, x_prev = T, x
    blocks = blocks or [slice(None)]
    while abs(s - t0) > t_err:
        t = S.t_of_lam(S.lam(s) + h)
        m_s = solver.m(x, s)
        if order == 2:
            lo, hi = solver.ddim(x, s, t, m_s), solver.two_s(x, s, t, m_s, 0.5)[0]
        else:
            lo, m1 = solver.two_s(x, s, t, m_s, 1.0 / 3.0)
            hi = solver.three_s(x, s, t, m_s, 1.0 / 3.0, 2.0 / 3.0, m1=m1)
        tol = torch.clamp(rtol * torch.maximum(lo.abs(), x_prev.abs()), min=atol)
        err = max(float((((hi - lo) / tol)[:, b] ** 2).mean(dim=1).sqrt().max()) for b in blocks)
        if err <= 1.0:
            x, s, x_prev = hi, t, lo
        h = min(theta * h * (err ** (-1.0 / order) if err > 0 else math.inf), S.lam(t0) - S.lam(s))
    return x
