"""The coupling probe: does the denoiser use the other modality to predict this one?

The swap test at a noise level t: noise held-out clips ``x0 = {"video": [N, F, C, H, W], "audio": [N, C, L]}``
to ``x_t`` (fixed noise), predict, then replace one modality of ``x_t`` by ANOTHER clip's, noised with the same
noise (a derangement of the batch), and predict again. For the target modality (the one kept) compare

* its x0 error ``mean((x0_pred - x0)^2)`` and eps error ``mean((eps_pred - eps)^2)`` with the true vs the
  swapped other modality: a model that uses the other modality gets worse when it is swapped;
* the relative change of its x0 prediction ``||x0_true_pred - x0_swap_pred|| / ||x0||`` (relative to the clean
  clips' norm; exactly 0 when the prediction ignores the other modality).

"audio<-video" swaps the video and scores the audio; "video<-audio" the reverse. Errors are measured in the
data's own units (a run's ``--data_scale`` is applied before diffusion and divided back out), so runs with
and without it compare. ``other_t`` puts the swapped (conditioning) modality at its own noise level (per-modality
timesteps, e.g. 0 = given clean), for models trained with ``--independent_t_prob``.

``swap="roll"`` is the synchrony variant: instead of another clip's, the other modality is the clip's OWN,
shifted in time by ``roll_frames`` frames (cyclically; the audio by the same duration, ``roll_frames * L / F``
samples). Content (colour, pitch) is kept and only the timing is wrong, so a gain here means the prediction
uses WHEN things happen in the other modality, not only what is there.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import torch

from ..diffusion.data_scale import scale_data, unscale_data

__all__ = ["DEFAULT_TIMESTEPS", "DIRECTIONS", "SWAPS", "derangement", "roll_in_time", "swap_test", "coupling_probe"]

DEFAULT_TIMESTEPS = (50, 100, 200, 300, 500, 700, 900)
DIRECTIONS = (("audio", "video"), ("video", "audio"))  # (scored modality, swapped modality)
SWAPS = ("clip", "roll")  # another clip's modality | the clip's own, shifted in time


def derangement(n: int) -> torch.Tensor:
    """``[n]`` int64: clip ``i`` gets clip ``(i + 1) mod n``'s other modality (no clip keeps its own)."""
    if n < 2:
        raise ValueError(f"the swap test needs at least 2 clips, got {n}")
    return (torch.arange(n) + 1) % n


def roll_in_time(x: torch.Tensor, modality: str, frames: int, roll_frames: int) -> torch.Tensor:
    """``x`` shifted cyclically by ``roll_frames`` video frames: ``video [N, F, C, H, W]`` along F, ``audio
    [N, C, L]`` along L by ``roll_frames * L // frames`` samples (L must be a multiple of ``frames``)."""
    if modality == "video":
        return torch.roll(x, int(roll_frames), dims=1)
    length = x.shape[-1]
    if length % frames:
        raise ValueError(f"the roll swap needs an audio length divisible by the frame count, got L={length}, "
                         f"F={frames}")
    return torch.roll(x, int(roll_frames) * (length // frames), dims=-1)


def _mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a.double() - b.double()) ** 2).mean())


def _relative(a: torch.Tensor, b: torch.Tensor, ref: torch.Tensor) -> float:
    den = float(ref.double().norm())
    return float((a.double() - b.double()).norm()) / den if den > 0 else 0.0


@torch.no_grad()
def swap_test(model_fn: Callable, diffusion, clips: Dict[str, torch.Tensor], t: int, *, seed: int = 0,
              other_t: Optional[int] = None, swap: str = "clip", roll_frames: Optional[int] = None) -> List[dict]:
    """One row per direction of :data:`DIRECTIONS` at diffusion index ``t``.

    ``model_fn(x_t, t_model) -> tree like x_t`` (deterministic: fix any RS-MMA offsets); ``clips`` in data units
    (``[N, F, C, H, W]`` / ``[N, C, L]``, N >= 2). The noise comes from ``seed``. Each row: ``direction``, ``t``,
    ``other_t``, ``x0_mse_true``, ``x0_mse_swap``, ``eps_mse_true``, ``eps_mse_swap``, ``rel_change`` and
    ``x0_gain = x0_mse_swap / x0_mse_true - 1``. ``swap``: ``"clip"`` (another clip's other modality) or
    ``"roll"`` (the clip's own, shifted by ``roll_frames`` frames; default half the clip).
    """
    if swap not in SWAPS:
        raise ValueError(f"swap must be one of {SWAPS}, got {swap!r}")
    scale = getattr(diffusion, "data_scale", None)
    x0 = scale_data(clips, scale)
    n = next(iter(x0.values())).shape[0]
    perm = derangement(n).to(next(iter(x0.values())).device)
    frames = x0["video"].shape[1]
    roll = frames // 2 if roll_frames is None else int(roll_frames)
    if swap == "roll" and roll % frames == 0:
        raise ValueError(f"roll_frames must not be a multiple of the {frames} frames (that is no shift), got {roll}")
    gen = torch.Generator().manual_seed(int(seed))
    noise = {k: torch.randn(v.shape, generator=gen).to(v) for k, v in x0.items()}
    rows = []
    for target, other in DIRECTIONS:
        steps = {target: torch.full((n,), int(t), dtype=torch.long),
                 other: torch.full((n,), int(t if other_t is None else other_t), dtype=torch.long)}
        steps = steps[target] if other_t is None else {k: steps[k] for k in x0}
        x_t = diffusion.q_sample(x0, steps, noise)
        moved = x0[other][perm] if swap == "clip" else roll_in_time(x0[other], other, frames, roll)
        swapped_clean = dict(x0, **{other: moved})
        x_swap = dict(x_t, **{other: diffusion.q_sample(swapped_clean, steps, noise)[other]})
        true_pred, swap_pred = diffusion.predict(model_fn, x_t, steps), diffusion.predict(model_fn, x_swap, steps)
        x0_true = unscale_data(true_pred.pred_xstart, scale)[target]
        x0_swap = unscale_data(swap_pred.pred_xstart, scale)[target]
        row = dict(direction=f"{target}<-{other}", t=int(t), other_t=None if other_t is None else int(other_t),
                   swap=swap if swap == "clip" else f"roll{roll}",
                   x0_mse_true=_mse(x0_true, clips[target]), x0_mse_swap=_mse(x0_swap, clips[target]),
                   eps_mse_true=_mse(true_pred.eps[target], noise[target]),
                   eps_mse_swap=_mse(swap_pred.eps[target], noise[target]),
                   rel_change=_relative(x0_true, x0_swap, clips[target]))
        row["x0_gain"] = row["x0_mse_swap"] / row["x0_mse_true"] - 1.0 if row["x0_mse_true"] > 0 else 0.0
        rows.append(row)
    return rows


def coupling_probe(model_fn: Callable, diffusion, clips: Dict[str, torch.Tensor],
                   timesteps: Sequence[int] = DEFAULT_TIMESTEPS, *, seed: int = 0,
                   other_t: Optional[int] = None, swap: str = "clip", roll_frames: Optional[int] = None
                   ) -> List[dict]:
    """:func:`swap_test` at every ``t`` of ``timesteps`` (indices of ``diffusion``; each must lie in
    ``[0, num_timesteps)``), the same noise seed at each: a flat list of rows, t-major."""
    bad = [t for t in timesteps if not 0 <= int(t) < diffusion.num_timesteps]
    if bad or (other_t is not None and not 0 <= int(other_t) < diffusion.num_timesteps):
        raise ValueError(f"probe timesteps must lie in [0, {diffusion.num_timesteps}), got {list(timesteps)} "
                         f"(other_t {other_t})")
    rows: List[dict] = []
    for t in timesteps:
        rows.extend(swap_test(model_fn, diffusion, clips, int(t), seed=seed, other_t=other_t, swap=swap,
                              roll_frames=roll_frames))
    return rows
