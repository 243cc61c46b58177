"""Timestep respacing: run a diffusion on a subset of its timesteps.

The syntax is the original ``--timestep_respacing`` flag:

* ``""``: every step;
* ``"ddimN"``: ``range(0, T, stride)`` with the integer stride that gives exactly ``N`` steps;
* ``"N"`` or ``"N1,N2,..."``: split ``[0, T)`` into as many equal sections as counts given and
  pick the given number of evenly spaced steps (first and last included) in each section.
"""
from __future__ import annotations

from typing import Iterable, List, Set

import numpy as np

from .gaussian_diffusion import GaussianDiffusion

__all__ = ["space_timesteps", "SpacedDiffusion"]


def space_timesteps(num_timesteps: int, section_counts: str) -> Set[int]:
    """The set of kept indices of a ``num_timesteps``-step process for a respacing string."""
    spec = "" if section_counts is None else str(section_counts).strip()
    if spec == "":
        return set(range(num_timesteps))
    if spec.startswith("ddim"):
        try:
            desired = int(spec[len("ddim"):])
        except ValueError:
            raise ValueError(f"bad timestep_respacing {spec!r}: expected 'ddim' followed by a step count, e.g. 'ddim25'") from None
        for stride in range(1, num_timesteps + 1):
            steps = range(0, num_timesteps, stride)
            if len(steps) == desired:
                return set(steps)
        valid = sorted({len(range(0, num_timesteps, s)) for s in range(1, num_timesteps + 1)}, reverse=True)
        raise ValueError(f"cannot take exactly {desired} steps with a fixed stride from {num_timesteps}; "
                         f"valid ddim counts include {valid[:12]} ... (or use a plain count such as '{desired}')")
    try:
        counts = [int(c) for c in spec.split(",")]
    except ValueError:
        raise ValueError(f"bad timestep_respacing {spec!r}: use '', 'ddimN', 'N' or comma-separated counts like '10,15,20'") from None
    if not counts or any(c < 1 for c in counts):
        raise ValueError(f"bad timestep_respacing {spec!r}: every count must be a positive integer")
    n_sections = len(counts)
    base, extra = divmod(num_timesteps, n_sections)
    kept: List[int] = []
    start = 0
    for i, count in enumerate(counts):
        size = base + (1 if i < extra else 0)
        if count > size:
            raise ValueError(f"timestep_respacing {spec!r}: section {i} has {size} steps, cannot keep {count}")
        if count == 1:
            offsets = [0]
        else:
            offsets = np.round(np.linspace(0, size - 1, count)).astype(int).tolist()
        kept.extend(start + o for o in offsets)
        start += size
    return set(kept)


class SpacedDiffusion(GaussianDiffusion):
    """A diffusion that keeps only ``use_timesteps`` of ``base``.

    The kept cumulative products ``alpha_bar`` are exactly the base ones, so ``q(x_t | x_0)`` is
    unchanged; betas are recomputed as ``1 - alpha_bar_i / alpha_bar_{prev kept}``. Model calls
    receive the base's original timesteps (see :meth:`GaussianDiffusion.model_timesteps`).
    """

    def __init__(self, base: GaussianDiffusion, use_timesteps: Iterable[int]):
        kept = sorted(set(int(i) for i in use_timesteps))
        if not kept:
            raise ValueError("use_timesteps is empty: keep at least one timestep")
        if kept[0] < 0 or kept[-1] >= base.num_timesteps:
            raise ValueError(f"use_timesteps must lie in [0, {base.num_timesteps}), got [{kept[0]}, {kept[-1]}]")
        ab = base.alphas_cumprod[kept]
        betas = 1.0 - ab / np.append(1.0, ab[:-1])
        self.base_num_timesteps = base.num_timesteps
        super().__init__(
            betas=betas,
            model_mean_type=base.model_mean_type,
            model_var_type=base.model_var_type,
            loss_type=base.loss_type,
            rescale_timesteps=base.rescale_timesteps,
            timestep_map=base.timestep_map[kept],
            original_num_steps=base.original_num_steps,
        )
