"""One prediction function shared by every sampler: model call, zero-shot conditioning, clipping."""
from __future__ import annotations

from typing import Callable, Dict, Optional, Union

import torch

from ..gaussian_diffusion import GaussianDiffusion, Prediction
from ..tree import Tree, is_dict, tree_first
from .conditioning import check_condition, reconstruction_guidance, replace_known
from .time_ops import ContinuousTime, IndexTime

__all__ = ["Denoiser", "dynamic_threshold", "as_denoiser"]


def dynamic_threshold(x0: torch.Tensor, ratio: float = 0.995, max_val: float = 1.0) -> torch.Tensor:
    """Imagen's dynamic thresholding of one leaf ``[N, ...]``: per sample, ``s = max(quantile(|x0|, ratio),
    max_val)`` (the quantile interpolated linearly between order statistics, as ``torch.quantile``);
    returns ``clamp(x0, -s, s) / s * max_val``."""
    flat = x0.detach().abs().reshape(x0.shape[0], -1).float()
    pos = ratio * (flat.shape[1] - 1)
    lo = int(pos)
    hi = min(lo + 1, flat.shape[1] - 1)
    v_lo = torch.kthvalue(flat, lo + 1, dim=1).values
    v_hi = torch.kthvalue(flat, hi + 1, dim=1).values if hi != lo else v_lo
    s = (v_lo + (pos - lo) * (v_hi - v_lo)).to(x0.dtype)
    s = torch.clamp(s, min=max_val).reshape(-1, *([1] * (x0.dim() - 1)))
    return torch.maximum(torch.minimum(x0, s), -s) / s * max_val


class Denoiser:
    """``denoiser(x, t) -> Prediction`` for a sampler's state ``x`` at index ``t`` (int, same for the batch) or at
    a continuous time point (:class:`~.time_ops.ContinuousTime`, DPM-Solver).

    Args:
        model_fn: ``model_fn(x_t, t_model) -> tree like x_t``.
        diffusion: the (possibly spaced) :class:`GaussianDiffusion`; ``t`` is in its index numbering.
        condition: known modalities for zero-shot conditional generation, e.g. ``{"audio": [N, C, L]}``.
        classifier_scale: gradient-guidance weight (0 = replacement only).
        clip_denoised: clamp predicted ``x0`` of generated modalities to [-1, 1] (eps re-derived).
        thresholding: dynamic thresholding of predicted ``x0`` instead of the plain clamp.
        generator: randomness for the replacement noise.
        clip_bounds: per-modality clamp bounds (``{"audio": 2.5}``: data diffused at a scale); 1 elsewhere.
    """

    def __init__(self, model_fn: Callable, diffusion: GaussianDiffusion, *, condition: Optional[Dict[str, torch.Tensor]] = None,
                 classifier_scale: float = 0.0, clip_denoised: bool = True, thresholding: bool = False,
                 generator: Optional[torch.Generator] = None, clip_bounds: Optional[Dict[str, float]] = None):
        if classifier_scale < 0:
            raise ValueError(f"classifier_scale must be >= 0, got {classifier_scale}")
        if classifier_scale > 0 and not condition:
            raise ValueError("classifier_scale > 0 needs a condition (the known modality)")
        self.model_fn = model_fn
        self.diffusion = diffusion
        self.condition = condition
        self.classifier_scale = float(classifier_scale)
        self.clip_denoised = bool(clip_denoised)
        self.thresholding = bool(thresholding)
        self.generator = generator
        self.clip_bounds = dict(clip_bounds or {})
        self._checked = False

    @property
    def known_keys(self) -> tuple:
        return tuple(self.condition) if self.condition else ()

    def _index(self, x: Tree, t: Union[int, torch.Tensor]) -> torch.Tensor:
        first = tree_first(x)
        if isinstance(t, torch.Tensor):
            return t.to(device=first.device, dtype=torch.long).expand(first.shape[0])
        return torch.full((first.shape[0],), int(t), dtype=torch.long, device=first.device)

    def __call__(self, x: Tree, t: Union[int, torch.Tensor, ContinuousTime]) -> Prediction:
        """The prediction at index ``t`` of the diffusion, or at a continuous DPM-Solver time point."""
        if not self._checked:
            self.condition = check_condition(self.condition, x)
            self._checked = True
        at = t if isinstance(t, ContinuousTime) else IndexTime(self.diffusion, self._index(x, t))
        if not self.condition:
            return self._constrain(at.predict(self.model_fn, x), x, at, keys=None)
        x_in = replace_known(at, x, self.condition, self.generator)
        if self.classifier_scale > 0:
            pred, guided = reconstruction_guidance(at, self.model_fn, x_in, self.condition, self.classifier_scale)
        else:
            pred = at.predict(self.model_fn, x_in)
            guided = {k: v for k, v in pred.eps.items() if k not in self.condition}
        eps: Dict[str, torch.Tensor] = {}
        x0: Dict[str, torch.Tensor] = {}
        for key in x:
            if key in self.condition:
                known = self.condition[key]
                x0[key] = known
                eps[key] = at.eps_from_x0(x[key], known)
            else:
                eps[key] = guided[key]
                x0[key] = at.x0_from_eps(x[key], guided[key])
        pred = Prediction(eps, x0, pred.var_values)
        return self._constrain(pred, x, at, keys=[k for k in x if k not in self.condition])

    def _constrain(self, pred: Prediction, x: Tree, at, keys) -> Prediction:
        """Clip / threshold ``pred_xstart`` (only ``keys`` of a dict; all if None) and re-derive eps."""
        if not (self.clip_denoised or self.thresholding):
            return pred
        def fix(v, key=None):
            if self.thresholding:
                return dynamic_threshold(v)
            bound = float(self.clip_bounds.get(key, 1.0))
            return v.clamp(-bound, bound)

        if is_dict(x):
            chosen = list(x) if keys is None else keys
            x0 = {k: (fix(v, k) if k in chosen else v) for k, v in pred.pred_xstart.items()}
            eps = {k: (at.eps_from_x0(x[k], x0[k]) if k in chosen else v) for k, v in pred.eps.items()}
        else:
            x0 = fix(pred.pred_xstart)
            eps = at.eps_from_x0(x, x0)
        return Prediction(eps, x0, pred.var_values)

    def finalize(self, x: Tree) -> Tree:
        """The final sample with every known modality set to the condition exactly."""
        if not self.condition:
            return x
        return {k: (self.condition[k].clone() if k in self.condition else v) for k, v in x.items()}


def as_denoiser(model_fn, diffusion, **kwargs) -> Denoiser:
    """``model_fn`` itself if it already is a :class:`Denoiser`, else a new one with ``kwargs``."""
    if isinstance(model_fn, Denoiser):
        return model_fn
    return Denoiser(model_fn, diffusion, **kwargs)
