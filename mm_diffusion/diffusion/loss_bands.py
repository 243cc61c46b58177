"""Per-modality loss weights over timestep bands (``--loss_band_weights``, off by default).

A spec such as ``"audio:550-800:3"`` multiplies the audio's loss terms by 3 on the rows whose audio timestep
lies in ``[550, 800]`` (inclusive); several bands are separated by commas (``"audio:550-800:3,video:0-99:0.5"``).
Rows outside every band keep weight 1, so an empty spec leaves the loss exactly as it was (the published recipe).
This is an explicit change of the training objective, not importance sampling: the timesteps are still drawn by
the schedule sampler, and the extra weight is not divided back out.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Sequence, Union

import torch

from .tree import leaf_t

__all__ = ["LossBand", "parse_loss_bands", "band_weights", "apply_loss_bands"]


@dataclass(frozen=True)
class LossBand:
    """Weight ``weight`` on modality ``key``'s loss terms where its timestep lies in ``[low, high]``."""
    key: str
    low: int
    high: int
    weight: float


def parse_loss_bands(spec: str, num_timesteps: int, keys: Sequence[str] = ("video", "audio")) -> List[LossBand]:
    """Parse ``"KEY:LOW-HIGH:WEIGHT[,...]"``; ``""`` gives no bands. ``ValueError`` naming the bad part for an
    unknown modality, a band outside ``[0, num_timesteps)``, ``LOW > HIGH``, a negative weight or overlapping
    bands of one modality."""
    bands: List[LossBand] = []
    for part in (p.strip() for p in str(spec or "").split(",")):
        if not part:
            continue
        fields = part.split(":")
        if len(fields) != 3 or "-" not in fields[1]:
            raise ValueError(f"--loss_band_weights part {part!r} is not KEY:LOW-HIGH:WEIGHT (e.g. audio:550-800:3)")
        key, span, weight_text = (f.strip() for f in fields)
        if key not in keys:
            raise ValueError(f"--loss_band_weights part {part!r}: modality {key!r} is not one of {', '.join(keys)}")
        try:
            low, high = (int(x) for x in span.split("-", 1))
            weight = float(weight_text)
        except ValueError:
            raise ValueError(f"--loss_band_weights part {part!r}: LOW and HIGH must be integers and WEIGHT a "
                             f"number") from None
        if not 0 <= low <= high < num_timesteps:
            raise ValueError(f"--loss_band_weights part {part!r}: need 0 <= LOW <= HIGH < {num_timesteps} "
                             f"(the number of diffusion steps)")
        if not weight >= 0.0 or weight == float("inf"):
            raise ValueError(f"--loss_band_weights part {part!r}: WEIGHT must be a finite number >= 0")
        for other in bands:
            if other.key == key and low <= other.high and other.low <= high:
                raise ValueError(f"--loss_band_weights part {part!r} overlaps {other.key}:{other.low}-{other.high}")
        bands.append(LossBand(key, low, high, weight))
    return bands


def band_weights(bands: Sequence[LossBand], key: str, t: torch.Tensor) -> torch.Tensor:
    """Float32 ``[N]`` weights of modality ``key`` for its timesteps ``t: [N]`` (1 outside every band)."""
    w = torch.ones(t.shape, dtype=torch.float32, device=t.device)
    for band in bands:
        if band.key == key:
            w = torch.where((t >= band.low) & (t <= band.high), torch.full_like(w, band.weight), w)
    return w


def apply_loss_bands(losses: Mapping[str, torch.Tensor], t: Union[torch.Tensor, Dict[str, torch.Tensor]],
                     bands: Sequence[LossBand]) -> torch.Tensor:
    """The total ``[N]`` loss with each modality's terms (``<key>_mse``, ``<key>_vb``) weighted by its band
    weights; ``losses`` is :meth:`GaussianDiffusion.training_losses`'s dict, ``t`` one ``[N]`` tensor or per
    modality ``{"video": [N], "audio": [N]}``. No bands: ``losses["loss"]`` itself."""
    if not bands:
        return losses["loss"]
    total = losses["loss"]
    for key in sorted({b.key for b in bands}):
        key_t = leaf_t(t, key)
        extra = band_weights(bands, key, key_t).to(total.dtype) - 1.0
        names = [f"{key}_{term}" for term in ("mse", "vb") if f"{key}_{term}" in losses]
        if not names:
            raise ValueError(f"--loss_band_weights names {key!r}, but the losses have no {key}_mse / {key}_vb term "
                             f"(this task trains {sorted(k for k in losses if k.endswith(('_mse', '_vb'))) or 'one tensor'})")
        for name in names:
            total = total + extra * losses[name]
    return total
