"""How clips are prepared for the I3D (FVD / KVD): resize convention and BatchNorm epsilon.

Two protocols (``PROTOCOLS``), chosen with ``--protocol`` of the evaluate job:

* ``mmdiffusion`` (default): MM-Diffusion's evaluator (from VideoGPT, also TATS): each frame resized
  bilinearly (PyTorch ``align_corners=False``, half-pixel centres, no antialias) so its short side is 224,
  the long side ``ceil(long * 224 / short)``, centre-cropped to 224x224; BatchNorm eps 1e-5.
* ``tf``: the original TensorFlow FVD: the whole frame stretched to 224x224 by TensorFlow 1
  ``resize_bilinear`` (source = destination * in / out, no half-pixel centres), BatchNorm eps 1e-3 (the
  TF / Sonnet value). StyleGAN-V's TorchScript detector says it matches this network "up to the
  upsampling operation"; for StyleGAN-V's own numbers run its ``i3d_torchscript.pt`` (``--i3d_path``).

Both take frames in [-1, 1] and the first 16 frames; the network outputs the 400 Kinetics logits.
Measured differences are in docs/evaluation_networks.md.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Dict

import torch
import torch.nn.functional as F

from .i3d import BN_EPS_MMDIFFUSION, BN_EPS_TF

__all__ = ["I3DProtocol", "PROTOCOLS", "DEFAULT_PROTOCOL", "get_protocol", "resize_short_side_crop",
           "resize_tf1_bilinear", "tf1_bilinear_matrix", "prepare_clips"]


@dataclass(frozen=True)
class I3DProtocol:
    """name, BatchNorm epsilon, resize convention (``"short_side_crop"`` or ``"tf1_stretch"``), description."""

    name: str
    bn_eps: float
    resize: str
    description: str

    def as_dict(self) -> Dict:
        return asdict(self)


PROTOCOLS: Dict[str, I3DProtocol] = {
    "mmdiffusion": I3DProtocol(
        "mmdiffusion", BN_EPS_MMDIFFUSION, "short_side_crop",
        "MM-Diffusion / VideoGPT: short side to 224 (bilinear, align_corners=False), centre crop 224, "
        "[-1, 1], BatchNorm eps 1e-5, 400 logits"),
    "tf": I3DProtocol(
        "tf", BN_EPS_TF, "tf1_stretch",
        "original TensorFlow FVD: frame stretched to 224x224 (TF1 resize_bilinear, no half-pixel centres), "
        "[-1, 1], BatchNorm eps 1e-3, 400 logits"),
}
DEFAULT_PROTOCOL = "mmdiffusion"


def get_protocol(name: str) -> I3DProtocol:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown I3D protocol {name!r}; valid: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def resize_short_side_crop(frames: torch.Tensor, size: int) -> torch.Tensor:
    """``[B, C, H, W] -> [B, C, size, size]``: short side to ``size`` (bilinear, half-pixel), centre crop."""
    _, _, h, w = frames.shape
    short = min(h, w)
    if h <= w:
        target = (size, math.ceil(w * size / short))
    else:
        target = (math.ceil(h * size / short), size)
    if target != (h, w):
        frames = F.interpolate(frames, size=target, mode="bilinear", align_corners=False)
    top = (target[0] - size) // 2
    left = (target[1] - size) // 2
    return frames[:, :, top:top + size, left:left + size]


def tf1_bilinear_matrix(n_in: int, n_out: int, dtype=torch.float32) -> torch.Tensor:
    """``[n_out, n_in]`` interpolation weights of TF1 ``resize_bilinear`` (align_corners=False, legacy):
    output ``i`` reads source ``i * n_in / n_out``, between ``floor`` and ``min(floor + 1, n_in - 1)``."""
    src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
    lo = torch.floor(src).long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    frac = src - lo.double()
    mat = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    mat.index_put_((rows, lo), 1.0 - frac, accumulate=True)
    mat.index_put_((rows, hi), frac, accumulate=True)
    return mat.to(dtype)


def resize_tf1_bilinear(frames: torch.Tensor, size: int) -> torch.Tensor:
    """``[B, C, H, W] -> [B, C, size, size]`` with TF1 legacy bilinear weights (aspect ratio not kept)."""
    _, _, h, w = frames.shape
    if (h, w) == (size, size):
        return frames
    mh = tf1_bilinear_matrix(h, size, frames.dtype).to(frames.device)
    mw = tf1_bilinear_matrix(w, size, frames.dtype).to(frames.device)
    return torch.einsum("oh,bchw,pw->bcop", mh, frames, mw)


def prepare_clips(video: torch.Tensor, protocol: I3DProtocol, size: int = 224, num_frames: int = 16) -> torch.Tensor:
    """``video: [N, F, 3, H, W]`` in [-1, 1] (F >= num_frames) -> I3D input ``[N, 3, num_frames, size, size]``."""
    n, _, c, h, w = video.shape
    x = video[:, :num_frames].clamp(-1.0, 1.0).reshape(n * num_frames, c, h, w)
    if protocol.resize == "short_side_crop":
        x = resize_short_side_crop(x, size)
    elif protocol.resize == "tf1_stretch":
        x = resize_tf1_bilinear(x, size)
    else:
        raise ValueError(f"unknown resize convention {protocol.resize!r}")
    return x.reshape(n, num_frames, c, size, size).permute(0, 2, 1, 3, 4).contiguous()
