"""Test doubles for the evaluation networks: randomly initialised weight files in the published formats.

* ``randomize_weights(module, seed)``: variance-preserving random weights, in place.
* ``make_random_i3d_file(path, seed=0)``: ``i3d_pretrained_400.pt`` layout (an I3D ``state_dict``).
* ``make_torchscript_i3d_file(path, seed=0)``: a TorchScript detector with StyleGAN-V's ``i3d_torchscript.pt``
  calling convention ``forward(x [N, 3, T, H, W], rescale, resize, return_features) -> [N, 400]``.
* ``make_random_audioclip_file(path, seed=0)``: ``AudioCLIP-Full-Training.pt`` key layout (``audio.*`` and a few others).
* ``make_random_vggish_file(path, pca_path=None, seed=0, pca_as_numpy=False)``: ``vggish-10086976.pth`` (+ PCA file).

Every file is written atomically and returned as a ``Path``. Only tests, benchmarks and the docs' examples use this.
"""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..data.media import atomic_path
from ..evaluation.audioclip import ESResNeXtFBSP
from ..evaluation.i3d import InceptionI3d
from ..evaluation.vggish import VGGish

__all__ = ["randomize_weights", "make_random_i3d_file", "make_torchscript_i3d_file", "make_random_audioclip_file", "make_random_vggish_file"]

PathLike = Union[str, os.PathLike]


def _atomic_torch_save(obj: object, path: PathLike) -> Path:
    """``torch.save`` (or ``torch.jit.save`` for a scripted module) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        if isinstance(obj, torch.jit.ScriptModule):
            torch.jit.save(obj, tmp)
        else:
            torch.save(obj, tmp)
    return Path(path)


@torch.no_grad()
def randomize_weights(module: nn.Module, seed: int) -> nn.Module:
    """Variance-preserving random weights (He-normal convs / linears, small biases, unit BatchNorm)."""
    gen = torch.Generator().manual_seed(seed)
    for mod in module.modules():
        if isinstance(mod, (nn.Conv2d, nn.Conv3d, nn.Linear)):
            fan_in = mod.weight[0].numel()
            mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) * math.sqrt(2.0 / fan_in))
            if mod.bias is not None:
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=gen) * 0.01)
        elif isinstance(mod, nn.modules.batchnorm._BatchNorm):
            mod.weight.fill_(1.0)
            mod.bias.zero_()
            mod.running_mean.zero_()
            mod.running_var.fill_(1.0)
    return module


def make_random_i3d_file(path: PathLike, seed: int = 0) -> Path:
    """Write a randomly initialised I3D state_dict in the ``i3d_pretrained_400.pt`` format; returns the path."""
    net = randomize_weights(InceptionI3d(400, in_channels=3), seed)
    return _atomic_torch_save(net.state_dict(), path)


class _TorchScriptI3DDetector(nn.Module):
    """Same calling convention as the public TorchScript I3D detector: ``[N, 3, T, H, W]`` -> ``[N, 400]``."""

    def __init__(self, net: InceptionI3d):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        if rescale:
            x = x / 127.5 - 1.0
        if resize:
            x = F.interpolate(x, size=[x.shape[2], 224, 224], mode="trilinear", align_corners=False)
        logits = self.net(x)
        if return_features:
            return logits
        return torch.softmax(logits, dim=1)


def make_torchscript_i3d_file(path: PathLike, seed: int = 0) -> Path:
    """Write a TorchScript I3D detector (random weights) with the ``forward(x, rescale, resize, return_features)``
    signature of StyleGAN-V's ``i3d_torchscript.pt``; returns the path."""
    net = randomize_weights(InceptionI3d(400, in_channels=3), seed).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(_TorchScriptI3DDetector(net).eval())
        return _atomic_torch_save(scripted, path)


def make_random_audioclip_file(path: PathLike, seed: int = 0) -> Path:
    """Write random ``audio.*`` weights plus a few non-audio AudioCLIP entries (logit scales, a small
    ``visual`` tensor), in the ``AudioCLIP-Full-Training.pt`` key layout; returns the path."""
    net = randomize_weights(ESResNeXtFBSP(), seed)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # a mildly perturbed DFT basis, as a trained FBSP is
        net.fbsp.m.copy_(torch.rand(net.fbsp.m.shape, generator=gen) * 0.1)
        net.fbsp.fb.copy_(1.0 + torch.rand(net.fbsp.fb.shape, generator=gen) * 0.1)
        # bn1 sees dB values: centre and scale them like a trained network would
        net.bn1.running_mean.fill_(-20.0)
        net.bn1.running_var.fill_(400.0)
    state = {"logit_scale": torch.tensor(4.6052), "logit_scale_ai": torch.tensor(2.3026),
             "logit_scale_at": torch.tensor(2.3026), "visual.conv1.weight": torch.zeros(32, 3, 3, 3)}
    state.update({"audio." + k: v for k, v in net.state_dict().items()})
    return _atomic_torch_save(state, path)


def make_random_vggish_file(path: PathLike, pca_path: Optional[PathLike] = None, seed: int = 0,
                            pca_as_numpy: bool = False) -> Path:
    """Write random VGGish weights in the ``vggish-10086976.pth`` format (18 keys); with ``pca_path`` also a
    PCA file like ``vggish_pca_params-970ea276.pth`` (``pca_eigen_vectors`` [128, 128], ``pca_means`` [128];
    numpy arrays when ``pca_as_numpy``). Returns the weight file's path."""
    net = randomize_weights(VGGish(), seed)
    state = {k: v for k, v in net.state_dict().items() if not k.startswith("pproc.")}
    out = _atomic_torch_save(state, path)
    if pca_path is not None:
        gen = torch.Generator().manual_seed(seed + 1)
        q, _ = torch.linalg.qr(torch.randn(128, 128, generator=gen, dtype=torch.float64))
        means = torch.randn(128, generator=gen, dtype=torch.float64) * 0.1
        pca = {"pca_eigen_vectors": q, "pca_means": means}
        if pca_as_numpy:
            pca = {k: v.numpy() for k, v in pca.items()}
        _atomic_torch_save(pca, pca_path)
    return out
