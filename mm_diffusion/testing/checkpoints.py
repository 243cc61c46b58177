"""Random-weight checkpoints for trying the sampling jobs without training (tests, benchmarks, docs).

``write_random_checkpoint("out/tiny.pt", "tiny")`` writes a plain state dict of a ``MultimodalUNet`` built from a
named configuration, every parameter drawn as ``randn * scale`` (the zero-initialised output layers of a fresh
model would make every sample trivially the same), plus ``out/config.json`` with its flags, laid out as a training
run writes it (``{"job": "train", "args": flags}``), so the sampler rebuilds the architecture. :func:`write_random_sr_checkpoint` does the same for a small SR model.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional

import torch

from ..cli.flags import config_to_flags, create_model_and_diffusion, create_sr_model_and_diffusion
from ..runs.checkpoint import save_checkpoint
from ..runs.files import write_json

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


def _write_random(path: str, values: Dict[str, Any], create, job: str, scale: float, seed: int,
                  write_config: bool) -> str:
    """Build the model ``create(values)`` makes, randomise it, save it to ``path`` (+ ``config.json`` for ``job``)."""
    model, _ = create(values)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    save_checkpoint(randomize_(model, scale, seed).state_dict(), path)
    if write_config:
        write_json(os.path.join(folder, "config.json"), {"job": job, "args": values}, indent=1)
    return path


def write_random_checkpoint(path: str, config: str = "tiny", scale: float = 0.05, seed: int = 0,
                            flags: Optional[Dict[str, Any]] = None, write_config: bool = True) -> str:
    """A random ``MultimodalUNet`` checkpoint of the named configuration (plus ``config.json`` beside it)."""
    values = {**config_to_flags(config), **(flags or {})}
    return _write_random(path, values, create_model_and_diffusion, "train", scale, seed, write_config)


def write_random_sr_checkpoint(path: str, flags: Optional[Dict[str, Any]] = None, scale: float = 0.05,
                               seed: int = 1, write_config: bool = True) -> str:
    """A random ``SuperResModel`` checkpoint (default :data:`TEST_SR_FLAGS`) plus ``config.json`` beside it."""
    values = {**TEST_SR_FLAGS, **(flags or {})}
    return _write_random(path, values, create_sr_model_and_diffusion, "image_sr_train", scale, seed, write_config)
