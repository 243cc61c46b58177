"""Random-weight checkpoints for trying the sampling jobs without training (tests, benchmarks, docs).

``write_random_checkpoint("out/tiny.pt", "tiny")`` writes a plain state dict of a ``MultimodalUNet`` built from a
named configuration, every parameter drawn as ``randn * scale`` (the zero-initialised output layers of a fresh
model would make every sample trivially the same), plus ``out/config.json`` with its flags, laid out as a training
run writes it (``{"job": "train", "args": flags}``), so the sampler rebuilds the architecture. :func:`write_random_sr_checkpoint` does the same for a small SR model.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional

import torch

from ..cli import flags as F
from ..runs.checkpoint import save_checkpoint

__all__ = ["randomize_", "write_random_checkpoint", "write_random_sr_checkpoint", "TEST_SR_FLAGS"]

# A very small 2x SR model (16x16 -> 32x32 frames), fast enough for end-to-end tests on CPU.
TEST_SR_FLAGS: Dict[str, Any] = dict(
    large_size=32, small_size=16, sr_num_channels=32, sr_num_res_blocks=1, sr_num_heads=1, sr_num_head_channels=-1,
    sr_attention_resolutions=[], sr_channel_mult=[1, 1], sr_learn_sigma=True,
)


@torch.no_grad()
def randomize_(model: torch.nn.Module, scale: float = 0.05, seed: int = 0) -> torch.nn.Module:
    """Set every parameter of ``model`` to ``randn * scale`` (in place, reproducibly from ``seed``)."""
    gen = torch.Generator().manual_seed(int(seed))
    for param in model.parameters():
        param.copy_(torch.randn(param.shape, generator=gen) * scale)
    return model


def _write_json(path: str, obj: Dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(obj, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


def write_random_checkpoint(path: str, config: str = "tiny", scale: float = 0.05, seed: int = 0,
                            flags: Optional[Dict[str, Any]] = None, write_config: bool = True) -> str:
    """A random ``MultimodalUNet`` checkpoint of the named configuration (plus ``config.json`` beside it)."""
    values = F.config_to_flags(config)
    values.update(flags or {})
    model, _ = F.create_model_and_diffusion(values)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_checkpoint(randomize_(model, scale, seed).state_dict(), path)
    if write_config:
        _write_json(os.path.join(os.path.dirname(os.path.abspath(path)), "config.json"), {"job": "train", "args": values})
    return path


def write_random_sr_checkpoint(path: str, flags: Optional[Dict[str, Any]] = None, scale: float = 0.05,
                               seed: int = 1, write_config: bool = True) -> str:
    """A random ``SuperResModel`` checkpoint (default :data:`TEST_SR_FLAGS`) plus ``config.json`` beside it."""
    values = dict(TEST_SR_FLAGS)
    values.update(flags or {})
    model, _ = F.create_sr_model_and_diffusion(values)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    save_checkpoint(randomize_(model, scale, seed).state_dict(), path)
    if write_config:
        _write_json(os.path.join(os.path.dirname(os.path.abspath(path)), "config.json"),
                    {"job": "image_sr_train", "args": values})
    return path
