"""True conditional generation for a model trained with per-modality timesteps (``--independent_t_prob``).

Unlike the zero-shot replacement method (:mod:`.conditioning`), the known modality is given to the model CLEAN,
at its own timestep 0, while the generated modality is at the sampler's t. With ``guidance_scale = s != 1``
(classifier-free guidance across modalities) a second, unconditional evaluation gives the known modality at
t = T - 1 (its forward-noised version: no information), and the generated modality's noise prediction becomes

    eps = eps_uncond + s * (eps_cond - eps_uncond).

The result is a :class:`~.denoiser.Denoiser`, so every sampler (they all call ``as_denoiser``) uses it unchanged;
:func:`~.api.sample` builds it for ``condition_mode="clean"``.

:class:`JointGuidanceDenoiser` applies the same guidance inside UNCONDITIONAL joint sampling (an option, not in
the original): the audio's noise prediction becomes ``eps_unc + s * (eps_joint - eps_unc)``, where ``eps_unc``
is predicted with the video replaced by its forward-noised version at t = T - 1 (model time T: no information);
the video's prediction is left as it is. It needs a model trained with per-modality timesteps, and costs one
extra model call per step. (docs/coupling.md: it raises the demo model's unconditional colour-pitch agreement.)
"""
from __future__ import annotations

from typing import Dict, Union

import torch

from ..gaussian_diffusion import Prediction
from ..tree import Tree
from .conditioning import check_condition, replace_known
from .denoiser import Denoiser
from .time_ops import ContinuousTime, IndexTime

__all__ = ["CONDITION_MODES", "CleanConditionDenoiser", "JointGuidanceDenoiser"]

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

    def _known_at(self, model_t: float):
        """``model_fn`` with every known modality's model timestep set to ``model_t`` (per-modality timesteps)."""
        return _with_model_time(self.model_fn, set(self.condition), model_t)

    def __call__(self, x: Tree, t: Union[int, torch.Tensor, ContinuousTime]) -> Prediction:
        if not self._checked:
            self.condition = check_condition(self.condition, x)
            self._checked = True
        at = t if isinstance(t, ContinuousTime) else IndexTime(self.diffusion, self._index(x, t))
        gen_keys = [k for k in x if k not in self.condition]
        x_cond = {k: (self.condition[k] if k in self.condition else v) for k, v in x.items()}
        pred = at.predict(self._known_at(0.0), x_cond)
        eps = {k: pred.eps[k] for k in gen_keys}
        if self.guidance_scale != 1.0:
            last = IndexTime(self.diffusion, self._index(x, self.diffusion.num_timesteps - 1))
            x_unc = replace_known(last, x, self.condition, self.generator)
            unc = at.predict(self._known_at(_last_model_time(self, x)), x_unc)
            eps = {k: unc.eps[k] + self.guidance_scale * (eps[k] - unc.eps[k]) for k in gen_keys}
        out_eps, out_x0 = {}, {}
        for key in x:
            if key in self.condition:
                out_x0[key] = self.condition[key]
                out_eps[key] = at.eps_from_x0(x[key], out_x0[key])
            else:
                out_eps[key] = eps[key]
                out_x0[key] = at.x0_from_eps(x[key], eps[key])
        return self._constrain(Prediction(out_eps, out_x0, pred.var_values), x, at, keys=gen_keys)


def _with_model_time(model_fn, keys, model_t: float):
    """``model_fn`` with the model timestep of the modalities ``keys`` set to ``model_t`` (the others keep t)."""

    def fn(x_in: Tree, t_model: torch.Tensor) -> Tree:
        steps = {k: (torch.full_like(t_model, model_t) if k in keys else t_model) for k in x_in}
        return model_fn(x_in, steps)

    return fn


def _last_model_time(denoiser: Denoiser, x: Tree) -> float:
    """The model timestep of ``denoiser``'s diffusion's last index ('no information')."""
    last = denoiser._index(x, denoiser.diffusion.num_timesteps - 1)[:1]
    return float(denoiser.diffusion.model_timesteps(last)[0])


class JointGuidanceDenoiser(Denoiser):
    """``denoiser(x, t) -> Prediction`` for unconditional AV sampling with the audio guided by the video (see the
    module doc). Takes :class:`Denoiser`'s arguments without ``condition`` / ``classifier_scale``, plus
    ``guidance_scale`` (!= 1; 1 is plain sampling) and ``guided``: the modalities whose prediction is guided by
    the others (default ``("audio",)``)."""

    def __init__(self, model_fn, diffusion, *, guidance_scale: float, guided=("audio",), **kwargs):
        if kwargs.get("condition"):
            raise ValueError("joint guidance is for unconditional sampling; with a known modality use "
                             "condition_mode 'clean' and guidance_scale")
        if kwargs.get("classifier_scale", 0.0):
            raise ValueError("classifier_scale (gradient guidance) belongs to conditional replacement sampling")
        kwargs.pop("condition", None)
        super().__init__(model_fn, diffusion, **kwargs)
        self.guidance_scale = float(guidance_scale)
        self.guided = tuple(guided)

    def __call__(self, x: Tree, t: Union[int, torch.Tensor, ContinuousTime]) -> Prediction:
        missing = [k for k in self.guided if k not in x]
        if missing or len(x) < 2:
            raise ValueError(f"joint guidance needs an AV pair with {list(self.guided)}; got {sorted(x)}")
        at = t if isinstance(t, ContinuousTime) else IndexTime(self.diffusion, self._index(x, t))
        pred = at.predict(self.model_fn, x)
        eps = dict(pred.eps)
        last = IndexTime(self.diffusion, self._index(x, self.diffusion.num_timesteps - 1))
        t_last = _last_model_time(self, x)
        for key in self.guided:
            others = {k: v for k, v in x.items() if k != key}
            # the other modalities forward-noised to t = T - 1 (from their current state: no information left)
            x_unc = replace_known(last, x, others, self.generator)
            unc = at.predict(_with_model_time(self.model_fn, set(others), t_last), x_unc)
            eps[key] = unc.eps[key] + self.guidance_scale * (pred.eps[key] - unc.eps[key])
        x0 = {k: (at.x0_from_eps(x[k], eps[k]) if k in self.guided else pred.pred_xstart[k]) for k in x}
        return self._constrain(Prediction(eps, x0, pred.var_values), x, at, keys=list(x))

