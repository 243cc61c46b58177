"""Small neural-network building blocks shared by the coupled U-Net and the super-resolution U-Net.

Nothing here knows about diffusion. Tensor layouts are stated per function.
"""
from __future__ import annotations

import contextlib
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

GROUPS = 32  # GroupNorm groups used everywhere, as in the published models


class GroupNorm32(nn.Module):
    """GroupNorm(32, channels) computed in float32, for the coupled U-Net.

    The parameters live in a child called ``GroupNorm`` so the published key names
    (``...norm.GroupNorm.weight``) load unchanged. Input ``[N, C, *]`` with channels on dim 1
    (video inside the network is ``[N, C, F, H, W]``, so the statistics of a sample are pooled
    over all its frames, exactly as the original, and never over the wrong axis).
    """

    def __init__(self, channels: int, groups: int = GROUPS):
        super().__init__()
        check_groupnorm(channels, groups)
        self.GroupNorm = nn.GroupNorm(groups, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gn = self.GroupNorm
        return F.group_norm(norm_input(x), gn.num_groups, gn.weight, gn.bias, gn.eps).to(x.dtype)


class ImageGroupNorm32(nn.GroupNorm):
    """GroupNorm(32, channels) computed in float32 with the parameters directly on the module
    (guided-diffusion key layout ``in_layers.0.weight``). Input ``[N, C, *]``."""

    def __init__(self, channels: int, groups: int = GROUPS):
        check_groupnorm(channels, groups)
        super().__init__(groups, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(norm_input(x), self.num_groups, self.weight, self.bias, self.eps).to(x.dtype)


def norm_input(x: torch.Tensor) -> torch.Tensor:
    """What a GroupNorm of this package normalises: ``x`` itself when it is bf16 (the kernels accumulate the
    statistics and normalise in float32 and round once at the end, so the result equals the float32 path
    rounded to bf16, and no float32 copy of the activation is made), else ``x`` in float32 (float32 inputs
    unchanged; fp16 activations are upcast, since fp16 statistics can overflow)."""
    return x if x.dtype in (torch.float32, torch.bfloat16) else x.float()


def check_groupnorm(channels: int, groups: int = GROUPS) -> None:
    if channels % groups != 0:
        raise ValueError(
            f"GroupNorm({groups}) needs a channel count divisible by {groups}, got {channels}; "
            f"use model_channels (times every channel_mult) that is a multiple of {groups}, e.g. "
            f"{max(groups, (channels // groups) * groups)} or {(channels // groups + 1) * groups}"
        )


def group_norm_tokens(x: torch.Tensor, norm: "GroupNorm32") -> torch.Tensor:
    """GroupNorm of token-major features ``x: [B, T, C]`` (statistics per sample and group over all T tokens),
    computed in float32 as :class:`GroupNorm32` does. Runs as a channels-last GroupNorm on a ``[B, C, T, 1]`` view,
    so a contiguous ``x`` is not copied."""
    b, t, c = x.shape
    gn = norm.GroupNorm
    x4 = x.reshape(b, t, 1, c).permute(0, 3, 1, 2)
    out = F.group_norm(norm_input(x4), gn.num_groups, gn.weight, gn.bias, gn.eps).to(x.dtype)
    return out.permute(0, 2, 3, 1).reshape(b, t, c)


def pointwise(x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
    """A 1x1(x1) convolution's weights applied to token-major features ``x: [..., C_in] -> [..., C_out]``."""
    return F.linear(x, conv.weight.flatten(1), conv.bias)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero every parameter of ``module`` (used for residual output projections) and return it."""
    for p in module.parameters():
        p.detach().zero_()
    return module


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding ``[N] -> [N, dim]`` laid out as ``[cos(t f_i), sin(t f_i)]`` (cos first),
    ``f_i = exp(-ln(max_period) * i / half)``; an odd ``dim`` gets a trailing zero column."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half
    )
    args = timesteps[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Softmax attention through ``scaled_dot_product_attention``.

    ``q: [B, heads, Tq, d]``, ``k, v: [B, heads, Tk, d]`` -> ``[B, heads, Tq, d]``. The scale is SDPA's default
    ``d**-0.5``, which is the original's ``d**-0.25`` applied to q and to k. In float32 the attention maps are
    computed in float32; under autocast SDPA's kernels accumulate the softmax in float32.

    The fused (flash) kernels need the head dimension contiguous; with any other layout SDPA silently falls
    back to its unfused math path (about 5x slower on CPU), so such inputs are made contiguous first.
    """
    if q.dtype == torch.bfloat16 and q.device.type == "cpu":
        return bf16_cpu_attention(q, k, v)
    q, k, v = (x if x.stride(-1) == 1 else x.contiguous() for x in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v)


def bf16_cpu_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The same attention for bf16 tensors on the CPU, as two batched matrix products with a softmax
    accumulated in float32 (the scores rounded to bf16 before it, as in guided-diffusion's fp16 attention). SDPA's bf16 CPU kernel is
    slower than its float32 one, 2-4x in backward at this package's sequence lengths (8-256 tokens), while
    bf16 matrix products run at the CPU's bf16 rate. Shapes as :func:`attention`."""
    b, h, tq, d = q.shape
    scores = torch.bmm(q.reshape(b * h, tq, d) * d ** -0.5, k.reshape(b * h, -1, d).transpose(1, 2))
    weights = torch.softmax(scores, dim=-1)  # the bf16 kernel accumulates in float32
    return torch.bmm(weights, v.reshape(b * h, -1, v.shape[-1])).view(b, h, tq, v.shape[-1])


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """``[B, heads, T, d] -> [B, heads*d, T]``: heads back to contiguous channel blocks."""
    b, h, t, d = x.shape
    return x.transpose(2, 3).reshape(b, h * d, t)


def conv_same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps the length of a stride-1 convolution with an odd kernel."""
    return dilation * (kernel_size - 1) // 2


def compute_dtype(model: nn.Module) -> torch.dtype:
    """The dtype a network computes in: that of its time-embedding weights (float32 for a normal model,
    bf16 for a :func:`mm_diffusion.models.precision.compute_copy`)."""
    return model.time_embed[0].weight.dtype


def reduced_precision(enabled: bool, device: torch.device):
    """Autocast context for a model's ``use_fp16`` flag: bf16 (fp16 on GPUs without bf16) when ``enabled``
    and no autocast is active already on ``device``'s type; otherwise a no-op context."""
    if not enabled or torch.is_autocast_enabled(device.type):
        return contextlib.nullcontext()
    bf16 = device.type != "cuda" or torch.cuda.is_bf16_supported()
    return torch.autocast(device.type, dtype=torch.bfloat16 if bf16 else torch.float16)
