"""True conditional generation for a model trained with per-modality timesteps (``--independent_t_prob``).

Unlike the zero-shot replacement method (:mod:`.conditioning`), the known modality is given to the model CLEAN,
at its own timestep 0, while the generated modality is at the sampler's t. With ``guidance_scale = s != 1``
(classifier-free guidance across modalities) a second, unconditional evaluation gives the known modality at
t = T - 1 (its forward-noised version: no information), and the generated modality's noise prediction becomes

    eps = eps_uncond + s * (eps_cond - eps_uncond).

The result is a :class:`~.denoiser.Denoiser`, so every sampler (they all call ``as_denoiser``) uses it unchanged;
:func:`~.api.sample` builds it for ``condition_mode="clean"``.
"""
from __future__ import annotations

from typing import Dict, Union

import torch

from ..gaussian_diffusion import Prediction
from ..tree import Tree
from .conditioning import check_condition, replace_known
from .denoiser import Denoiser

__all__ = ["CONDITION_MODES", "CleanConditionDenoiser"]

CONDITION_MODES = ("replacement", "clean")


class CleanConditionDenoiser(Denoiser):
    """``denoiser(x, t) -> Prediction`` with the known modalities clean at t = 0 (see the module doc).

    Takes :class:`Denoiser`'s arguments (``condition`` is required, ``classifier_scale`` must be 0) plus
    ``guidance_scale`` (1 = conditional only, one model call per step; otherwise two).
    """

    def __init__(self, model_fn, diffusion, *, condition: Dict[str, torch.Tensor], guidance_scale: float = 1.0,
                 **kwargs):
        if not condition:
            raise ValueError("condition_mode 'clean' needs a condition (the known modality)")
        if kwargs.get("classifier_scale", 0.0):
            raise ValueError("classifier_scale (gradient guidance) belongs to the replacement method; with "
                             "condition_mode 'clean' use guidance_scale")
        super().__init__(model_fn, diffusion, condition=condition, **kwargs)
        self.guidance_scale = float(guidance_scale)

    def _steps(self, x: Tree, tt: torch.Tensor, known_index: int) -> Dict[str, torch.Tensor]:
        return {k: (torch.full_like(tt, known_index) if k in self.condition else tt) for k in x}

    def __call__(self, x: Tree, t: Union[int, torch.Tensor]) -> Prediction:
        if not self._checked:
            self.condition = check_condition(self.condition, x)
            self._checked = True
        d = self.diffusion
        tt = self._index(x, t)
        gen_keys = [k for k in x if k not in self.condition]
        x_cond = {k: (self.condition[k] if k in self.condition else v) for k, v in x.items()}
        pred = d.predict(self.model_fn, x_cond, self._steps(x, tt, 0))
        eps = {k: pred.eps[k] for k in gen_keys}
        if self.guidance_scale != 1.0:
            last = torch.full_like(tt, d.num_timesteps - 1)
            x_unc = replace_known(d, x, self.condition, last, self.generator)
            unc = d.predict(self.model_fn, x_unc, self._steps(x, tt, d.num_timesteps - 1))
            eps = {k: unc.eps[k] + self.guidance_scale * (eps[k] - unc.eps[k]) for k in gen_keys}
        out_eps, out_x0 = {}, {}
        for key in x:
            if key in self.condition:
                out_x0[key] = self.condition[key]
                out_eps[key] = d.predict_eps_from_xstart({key: x[key]}, {key: tt}, {key: out_x0[key]})[key]
            else:
                out_eps[key] = eps[key]
                out_x0[key] = d.predict_xstart_from_eps({key: x[key]}, {key: tt}, {key: eps[key]})[key]
        return self._constrain(Prediction(out_eps, out_x0, pred.var_values), x, tt, keys=gen_keys)
