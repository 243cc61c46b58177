"""The diffusion maths at one time point, for an integer index or a continuous DPM-Solver time.

Both classes offer the same five operations, so the prediction logic (model call, conditioning, clipping)
is written once in :class:`~.denoiser.Denoiser`:

* ``predict(model_fn, x) -> Prediction``: call the model and return eps and x0;
* ``x0_from_eps(x, eps)`` / ``eps_from_x0(x, x0)``: ``x = alpha x0 + sigma eps`` solved for the other;
* ``noised(known, generator)``: a fresh draw of ``alpha known + sigma z`` (replacement conditioning);
* ``sigma_like(leaf)``: ``sigma`` broadcastable to ``leaf`` (gradient guidance).

:class:`IndexTime` delegates to the diffusion's own tables (DDPM and DDIM); :class:`ContinuousTime` uses
the float64 scalars of :class:`~.continuous_time.ContinuousSchedule` and calls the model at a float timestep.
"""
from __future__ import annotations

from typing import Dict, Optional

import torch

from ..gaussian_diffusion import ModelMeanType, Prediction, check_model_output
from ..tree import Tree, randn_like, tree_first, tree_map

__all__ = ["IndexTime", "ContinuousTime"]


class IndexTime:
    """Index ``t`` (int64 ``[N]``) of ``diffusion``: every operation is the diffusion's own method."""

    def __init__(self, diffusion, t: torch.Tensor):
        self.diffusion, self.t = diffusion, t

    def predict(self, model_fn, x: Tree) -> Prediction:
        return self.diffusion.predict(model_fn, x, self.t)

    def x0_from_eps(self, x: Tree, eps: Tree) -> Tree:
        return self.diffusion.predict_xstart_from_eps(x, self.t, eps)

    def eps_from_x0(self, x: Tree, x0: Tree) -> Tree:
        return self.diffusion.predict_eps_from_xstart(x, self.t, x0)

    def noised(self, known: Dict[str, torch.Tensor], generator: Optional[torch.Generator]) -> Dict[str, torch.Tensor]:
        return self.diffusion.q_sample(known, self.t, generator=generator)

    def sigma_like(self, leaf: torch.Tensor) -> torch.Tensor:
        return self.diffusion.extract("sqrt_one_minus_alphas_cumprod", self.t, leaf)


class ContinuousTime:
    """Continuous time ``t`` of ``schedule`` (a :class:`ContinuousSchedule` of ``diffusion``), shared by the batch."""

    def __init__(self, diffusion, schedule, t: float):
        self.diffusion = diffusion
        self.t = float(t)
        self.alpha, self.sigma = schedule.alpha(self.t), schedule.sigma(self.t)
        self.model_t = schedule.model_time(self.t)

    def predict(self, model_fn, x: Tree) -> Prediction:
        first = tree_first(x)
        kind = torch.float64 if first.dtype == torch.float64 else torch.float32  # a float64 state keeps its digits
        t_in = torch.full((first.shape[0],), self.model_t, dtype=kind, device=first.device)
        out = model_fn(x, t_in)
        check_model_output(x, out)
        out, var_values = self.diffusion.split_output(out, x)
        if self.diffusion.model_mean_type == ModelMeanType.EPSILON:
            return Prediction(out, self.x0_from_eps(x, out), var_values)
        return Prediction(self.eps_from_x0(x, out), out, var_values)

    def x0_from_eps(self, x: Tree, eps: Tree) -> Tree:
        return tree_map(lambda xt, e: (xt - self.sigma * e) / self.alpha, x, eps)

    def eps_from_x0(self, x: Tree, x0: Tree) -> Tree:
        return tree_map(lambda xt, x0_: (xt - self.alpha * x0_) / self.sigma, x, x0)

    def noised(self, known: Dict[str, torch.Tensor], generator: Optional[torch.Generator]) -> Dict[str, torch.Tensor]:
        noise = randn_like(known, generator)
        return {k: self.alpha * v + self.sigma * noise[k] for k, v in known.items()}

    def sigma_like(self, leaf: torch.Tensor) -> float:
        return self.sigma
