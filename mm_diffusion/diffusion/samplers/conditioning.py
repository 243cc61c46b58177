"""Zero-shot conditional generation (MM-Diffusion section 3.4), written for any sampler.

Given the known modalities ``condition`` (e.g. ``{"audio": a}`` for audio-to-video), every model
evaluation at index ``t``:

1. **replacement**: feeds the model ``q_sample(known, t)`` (fresh noise) in place of the known part;
2. **gradient guidance** (``classifier_scale > 0``): with ``L = sum ||x0_pred_known - known||^2`` (per
   sample, summed over elements), shifts the generated modalities' noise prediction
   ``eps_gen <- eps_gen + classifier_scale * sqrt(1 - alpha_bar_t) * grad_{x_gen} L``, i.e. adds
   ``-classifier_scale * grad L`` to their score, so each sampler moves ``x_gen`` downhill on ``L``.

The known modalities' prediction is then set to ``x0 = known`` (with the matching eps), and the
final sample gets ``known`` back exactly.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch

from ..tree import Tree, is_dict

__all__ = ["check_condition", "replace_known", "reconstruction_guidance"]


def check_condition(condition: Optional[Dict[str, torch.Tensor]], x: Tree) -> Optional[Dict[str, torch.Tensor]]:
    """Validate ``condition`` against the sampler state ``x``; returns it on x's device/dtype."""
    if condition is None:
        return None
    if not is_dict(condition) or not is_dict(x):
        raise ValueError("condition must be a dict such as {'audio': known_audio} and the sample an AV pair dict")
    if not condition:
        return None
    unknown = set(condition) - set(x)
    if unknown:
        raise ValueError(f"condition keys {sorted(unknown)} are not modalities of the sample; valid: {sorted(x)}")
    if set(condition) == set(x):
        raise ValueError(f"condition gives every modality {sorted(x)}: leave at least one to generate")
    out = {}
    for key, value in condition.items():
        if tuple(value.shape) != tuple(x[key].shape):
            raise ValueError(f"condition[{key!r}] has shape {tuple(value.shape)}, the sample needs {tuple(x[key].shape)}")
        out[key] = value.to(device=x[key].device, dtype=x[key].dtype)
    return out


def replace_known(at, x: Dict[str, torch.Tensor], condition: Dict[str, torch.Tensor],
                  generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
    """``x`` with each known modality replaced by a fresh draw of ``q(x_t | known)`` at the time point ``at``
    (an :class:`~.time_ops.IndexTime` or :class:`~.time_ops.ContinuousTime`)."""
    noisy = at.noised(condition, generator)
    return {k: (noisy[k] if k in condition else v) for k, v in x.items()}


def reconstruction_guidance(at, model_fn, x_in: Dict[str, torch.Tensor], condition: Dict[str, torch.Tensor],
                            classifier_scale: float):
    """Model prediction at ``x_in`` (time point ``at``) plus the guided eps of the generated modalities.

    Returns ``(prediction, guided_eps)`` where ``guided_eps`` maps each generated key to
    ``eps + classifier_scale * sqrt(1 - alpha_bar_t) * grad_{x_gen} sum ||x0_pred_known - known||^2``.
    """
    gen_keys = [k for k in x_in if k not in condition]
    with torch.enable_grad():
        leaves = {k: (v.detach().requires_grad_(True) if k in gen_keys else v.detach()) for k, v in x_in.items()}
        pred = at.predict(model_fn, leaves)
        loss = sum(((pred.pred_xstart[k] - condition[k]) ** 2).sum() for k in condition)
        if loss.requires_grad:
            grads: Tuple[Optional[torch.Tensor], ...] = torch.autograd.grad(
                loss, [leaves[k] for k in gen_keys], allow_unused=True)
        else:  # the known modality's prediction does not depend on the generated one: no guidance signal
            grads = (None,) * len(gen_keys)
    guided = {}
    for key, grad in zip(gen_keys, grads):
        eps = pred.eps[key].detach()
        if grad is not None:
            eps = eps + classifier_scale * at.sigma_like(eps) * grad
        guided[key] = eps
    detached = type(pred)(*(None if f is None else {k: v.detach() for k, v in f.items()} for f in pred))
    return detached, guided
