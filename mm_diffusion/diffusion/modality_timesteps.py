"""Per-modality training timesteps (UniDiffuser-style): independent ``t_video`` and ``t_audio`` for a share of a batch.

A model trained this way learns every pair of noise levels, which is what true conditional generation needs
(the known modality at its own t = 0 while the other is denoised, see :mod:`.samplers.conditioning`).
"""
from __future__ import annotations

from typing import Dict, Optional, Union

import torch

__all__ = ["draw_modality_timesteps", "shared_timesteps"]


def draw_modality_timesteps(schedule, t: torch.Tensor, prob: float, device=None,
                            generator: Optional[torch.Generator] = None) -> Union[torch.Tensor, Dict[str, torch.Tensor]]:
    """Timesteps for one batch.

    ``t: [N]`` int64 drawn by ``schedule`` (a :class:`~.timestep_sampler.ScheduleSampler`). ``prob == 0``
    returns ``t`` unchanged (no random number is drawn, so runs without the option are unchanged). Otherwise
    a share ``prob`` of the rows (each row with probability ``prob``) gets an independent audio timestep from
    ``schedule``: returns ``{"video": t, "audio": t_audio}`` with ``t_audio == t`` on the other rows.
    """
    prob = float(prob)
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"independent_t_prob must lie in [0, 1], got {prob}")
    if prob == 0.0:
        return t
    n = t.shape[0]
    other, _ = schedule.sample(n, device, generator=generator)
    draw_device = generator.device if generator is not None else torch.device("cpu")
    mask = (torch.rand(n, generator=generator, device=draw_device) < prob).to(t.device)
    return {"video": t, "audio": torch.where(mask, other.to(t.device), t)}


def shared_timesteps(t: Union[torch.Tensor, Dict[str, torch.Tensor]], key: str = "video") -> torch.Tensor:
    """One ``[N]`` tensor for bookkeeping (loss-aware resampling): ``t`` itself, or ``t[key]`` of a dict."""
    return t[key] if isinstance(t, dict) else t
