"""Training inputs built from the model's own denoising step (``--own_step_inputs``, off by default).

Sampling feeds the model an ``x_t`` assembled from its own earlier predictions; training feeds it
``q(x_t | x_0)``. Where the two differ (a structured error made at high noise that later steps keep), the
model never learned to correct it. This option trains on the first kind of input for one modality:

* a spec ``"audio:0.5:250"`` selects each row with probability 0.5 and draws a jump ``d`` uniform in
  ``{1, ..., 250}``; for a selected row with the modality's training timestep ``t`` the higher timestep is
  ``t_hi = min(t + d, T - 1)``;
* the model (no gradient) predicts ``x_0`` from the usual forward-noised pair with that modality at ``t_hi``
  (the same noise, every other modality at its own ``t``), and one deterministic DDIM step takes the
  modality from ``t_hi`` down to ``t``: ``x_t' = sqrt(abar_t) x0_hat + sqrt(1 - abar_t) eps_hat``;
* the training step then sees ``x_t'`` for that modality; its targets stay the true ``x_0`` (and, for an
  epsilon-predicting model, the noise that maps the true ``x_0`` to ``x_t'``), so the model learns to pull its
  own step back to the data.

An empty spec draws no random number and changes nothing (the published recipe). One extra forward pass
without gradient per training step (about a third of a step's cost).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence, Union

import torch

from .tree import leaf_t

__all__ = ["OwnStepSpec", "parse_own_step_inputs", "draw_own_steps", "own_step_noise"]

Timesteps = Union[torch.Tensor, Dict[str, torch.Tensor]]


@dataclass(frozen=True)
class OwnStepSpec:
    """Rebuild modality ``key``'s input from an own DDIM step on a share ``prob`` of the rows, jumps up to ``max_jump``."""
    key: str
    prob: float
    max_jump: int


def parse_own_step_inputs(spec: str, num_timesteps: int, keys: Sequence[str] = ("video", "audio")
                          ) -> Optional[OwnStepSpec]:
    """Parse ``"KEY:PROB:MAXJUMP"`` (``""``: None, the option off). ``ValueError`` naming the bad part for an
    unknown modality, a probability outside (0, 1] or a jump outside [1, num_timesteps)."""
    text = str(spec or "").strip()
    if not text:
        return None
    fields = [f.strip() for f in text.split(":")]
    if len(fields) != 3:
        raise ValueError(f"--own_step_inputs {text!r} is not KEY:PROB:MAXJUMP (e.g. audio:0.5:250)")
    key, prob_text, jump_text = fields
    if key not in keys:
        raise ValueError(f"--own_step_inputs {text!r}: modality {key!r} is not one of {', '.join(keys)}")
    try:
        prob, max_jump = float(prob_text), int(jump_text)
    except ValueError:
        raise ValueError(f"--own_step_inputs {text!r}: PROB must be a number and MAXJUMP an integer") from None
    if not 0.0 < prob <= 1.0:
        raise ValueError(f"--own_step_inputs {text!r}: PROB must lie in (0, 1]")
    if not 1 <= max_jump < num_timesteps:
        raise ValueError(f"--own_step_inputs {text!r}: MAXJUMP must lie in [1, {num_timesteps}) "
                         f"(the number of diffusion steps)")
    return OwnStepSpec(key, prob, max_jump)


def draw_own_steps(spec: Optional[OwnStepSpec], t: Timesteps, num_timesteps: int) -> Optional[torch.Tensor]:
    """The higher timesteps ``t_hi: [N]`` int64 for the batch's timesteps ``t`` (``[N]`` or per modality): ``t_hi > t``
    on the selected rows, ``t_hi == t`` elsewhere (and where ``t == T - 1``). None (nothing drawn) when ``spec`` is None.
    Draws from torch's global generator on the CPU, so a resumed run replays the same rows."""
    if spec is None:
        return None
    t_key = leaf_t(t, spec.key)
    n = t_key.shape[0]
    chosen = torch.rand(n) < spec.prob
    jump = torch.randint(1, spec.max_jump + 1, (n,))
    t_hi = torch.clamp(t_key.cpu() + torch.where(chosen, jump, torch.zeros_like(jump)), max=num_timesteps - 1)
    return t_hi.to(t_key.device)


def own_step_noise(diffusion, model_fn: Callable, x_start: Dict[str, torch.Tensor], t: Timesteps,
                   noise: Dict[str, torch.Tensor], key: str, t_hi: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The noise tree that makes ``diffusion.q_sample(x_start, t, noise)`` equal the own-step input.

    ``x_start`` / ``noise``: ``{"video": [N, F, C, H, W], "audio": [N, C, L]}`` (data scale applied); ``t``: ``[N]``
    or per modality; ``t_hi: [N]`` from :func:`draw_own_steps`. Rows with ``t_hi == t`` keep their noise exactly.
    The model call runs without gradient; the caller sets autocast."""
    if not isinstance(x_start, dict) or key not in x_start:
        raise ValueError(f"--own_step_inputs names {key!r}, but this task trains "
                         f"{sorted(x_start) if isinstance(x_start, dict) else 'one tensor'}")
    t_dict = dict(t) if isinstance(t, dict) else {k: t for k in x_start}
    t_low = t_dict[key]
    changed = t_hi != t_low
    if not bool(changed.any()):
        return noise
    high = dict(t_dict, **{key: t_hi})
    with torch.no_grad():
        x_high = diffusion.q_sample(x_start, high, noise)
        pred = diffusion.predict(model_fn, x_high, high)
        x0_hat = pred.pred_xstart[key].to(x_start[key].dtype)
        eps_hat = diffusion.predict_eps_from_xstart({key: x_high[key]}, {key: t_hi}, {key: x0_hat})[key]
        x_low = diffusion.q_sample({key: x0_hat}, {key: t_low}, {key: eps_hat})  # the DDIM step down to t
        rebuilt = diffusion.predict_eps_from_xstart(x_low, {key: t_low}, {key: x_start[key]})[key]
    keep = changed.reshape(-1, *([1] * (x0_hat.dim() - 1)))
    return dict(noise, **{key: torch.where(keep, rebuilt.to(noise[key].dtype), noise[key])})
