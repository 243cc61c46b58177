"""The super-resolution stage: upsample every frame of generated clips with the image SR U-Net.

Each clip ``video: [N, F, C, h, w]`` is flattened to ``N * F`` low-resolution images. All frames of one
clip start from the SAME noise image (``[C, H, W]`` drawn once per clip and repeated over its frames, as
the original does), so the frames are upsampled coherently; ``--load_noise`` replaces it with one saved
noise image shared by every frame of every clip (fully reproducible SR). Frames are sampled in batches
of ``frame_batch`` images (all at once by default), through any of the four samplers.
"""
from __future__ import annotations

import os
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ..diffusion import sample

__all__ = ["SR_SOLVER_DEFAULTS", "load_sr_noise", "clip_noise", "sr_model_fn", "super_resolve", "SRStage"]

# The original's DPM-Solver settings for the SR model (both variants): 50 steps, order 2, uniform time, multistep,
# no clipping or thresholding, no final denoising step.
SR_SOLVER_DEFAULTS = dict(order=2, skip_type="time_uniform", solver_method="multistep", clip_denoised=False,
                          thresholding=False, denoise_to_zero=False)


def load_sr_noise(path: str, channels: int, large_size: int) -> torch.Tensor:
    """Read a saved SR noise image (``.npy`` of shape ``[C, H, W]`` or ``[1, C, H, W]``) as float32 ``[C, H, W]``.

    Raises ``FileNotFoundError`` if ``path`` does not exist and ``ValueError`` if the shape is not
    ``[channels, large_size, large_size]``. Loading never runs code (``allow_pickle=False``).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--load_noise: no such file {path!r} (expected a .npy of shape "
                                f"[{channels}, {large_size}, {large_size}])")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise ValueError(f"--load_noise: {path!r} is not a plain .npy array ({err})") from None
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    want = (channels, large_size, large_size)
    if tuple(array.shape) != want:
        raise ValueError(f"--load_noise: {path!r} has shape {tuple(array.shape)}; the SR stage needs {list(want)} "
                         f"(channels, --large_size, --large_size)")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def clip_noise(num_clips: int, frames: int, channels: int, large_size: int, *,
               generators: Optional[Sequence[torch.Generator]] = None, shared: Optional[torch.Tensor] = None,
               device=None) -> torch.Tensor:
    """Starting noise ``[num_clips * frames, C, H, W]`` for the SR sampler, identical across the frames of a clip.

    ``shared``: one noise image ``[C, H, W]`` used for every frame of every clip (``--load_noise``).
    Otherwise clip ``i`` draws its image from ``generators[i]`` (one generator per clip, so a clip's noise does
    not depend on the batch it is in), or from torch's global generator when ``generators`` is None.
    """
    shape = (channels, large_size, large_size)
    if shared is not None:
        if tuple(shared.shape) != shape:
            raise ValueError(f"shared SR noise has shape {tuple(shared.shape)}, need {list(shape)}")
        per_clip = shared.to(device).unsqueeze(0).expand(num_clips, *shape)
    elif generators is not None:
        if len(generators) != num_clips:
            raise ValueError(f"need one generator per clip ({num_clips}), got {len(generators)}")
        per_clip = torch.stack([torch.randn(shape, generator=g, device=g.device) for g in generators]).to(device)
    else:
        per_clip = torch.randn((num_clips,) + shape, device=device)
    return per_clip.repeat_interleave(frames, dim=0).contiguous()


def sr_model_fn(model: torch.nn.Module, low_res: torch.Tensor, labels: Optional[torch.Tensor] = None) -> Callable:
    """Sampler model function ``(x [M, C, H, W], t [M]) -> [M, C_out, H, W]`` for a ``SuperResModel``
    conditioned on ``low_res: [M, C, h, w]`` (and class ids ``labels: [M]`` for a class-conditional model)."""

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return model(x, t, low_res=low_res, y=labels)

    return fn


def super_resolve(model: torch.nn.Module, video: torch.Tensor, *, diffusion, large_size: int,
                  method: str = "dpm_solver", steps: Optional[int] = 50, noise: Optional[torch.Tensor] = None,
                  labels: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None,
                  frame_batch: int = 0, clip_denoised: bool = True, progress: bool = False) -> torch.Tensor:
    """Upsample every frame of ``video: [N, F, C, h, w]`` (in [-1, 1]) to ``[N, F, C, large_size, large_size]``.

    Args:
        model: a ``SuperResModel`` (in eval mode, on the video's device).
        diffusion: the SR model's diffusion (``--sr_*`` flags; possibly respaced).
        method: ``ddpm``, ``ddim``, ``dpm_solver`` or ``dpm_solver++``. The DPM-Solvers run with ``steps``
            solver steps (the original: 50), order 2, ``time_uniform``, multistep, no clipping (``clip_denoised``
            applies to ``ddpm``/``ddim``, which walk every step of ``diffusion``; respace it, e.g.
            ``--sr_timestep_respacing ddim25``, and ignore ``steps``).
        noise: starting noise ``[N * F, C, H, W]`` (see :func:`clip_noise`); drawn per clip from ``generator``
            when None.
        labels: class ids ``[N]`` for a class-conditional SR model (repeated over each clip's frames).
        frame_batch: frames per sampler call (0: all ``N * F`` at once).
    Returns: float ``[N, F, C, large_size, large_size]``, values in [-1, 1].
    """
    if video.dim() != 5:
        raise ValueError(f"super_resolve expects video [N, F, C, h, w], got shape {tuple(video.shape)}")
    n, f, c, h, w = video.shape
    if large_size < max(h, w):
        raise ValueError(f"--large_size {large_size} is smaller than the generated frames ({h}x{w}); "
                         f"use a size >= {max(h, w)} (the published SR model: 64 -> 256)")
    total = n * f
    low_res = video.reshape(total, c, h, w)
    if noise is None:
        gens = None if generator is None else [generator] * n
        noise = clip_noise(n, f, c, large_size, generators=gens, device=video.device)
    if tuple(noise.shape) != (total, c, large_size, large_size):
        raise ValueError(f"SR noise has shape {tuple(noise.shape)}, need {[total, c, large_size, large_size]}")
    num_classes = getattr(model, "num_classes", None)
    frame_labels = None
    if num_classes is not None:
        if labels is None:
            raise ValueError(f"the SR model is class-conditional (num_classes={num_classes}): pass labels [N]")
        frame_labels = labels.to(video.device).long().repeat_interleave(f)
    chunk = total if frame_batch is None or frame_batch <= 0 else int(frame_batch)
    kwargs = dict(diffusion=diffusion, method=method, generator=generator, progress=progress)
    if method.replace("-", "_") in ("dpm_solver", "dpm_solver++"):
        kwargs.update(SR_SOLVER_DEFAULTS, steps=steps if steps is not None else 50)
    else:
        kwargs.update(clip_denoised=clip_denoised)
    out = []
    for start in range(0, total, chunk):
        sl = slice(start, start + chunk)
        fn = sr_model_fn(model, low_res[sl], None if frame_labels is None else frame_labels[sl])
        out.append(sample(fn, noise[sl].to(video.device), **kwargs))
    # clamped as the original does when it saves (the DPM-Solvers stop at t = 1/N without clipping)
    return torch.cat(out).clamp(-1.0, 1.0).reshape(n, f, c, large_size, large_size)


class SRStage:
    """Super-resolution of generated batches with the sampling jobs' noise policy.

    Clip ``k`` (a global sample index) starts from a noise image drawn from ``(seed, k)``, repeated over its
    frames, so its SR result does not depend on the batch or rank it was made in; with ``shared_noise``
    (``--load_noise``) every frame of every clip starts from that one image, so the SR output depends only on
    the low-resolution frames (fully reproducible with the deterministic samplers).
    """

    def __init__(self, model: torch.nn.Module, diffusion, *, large_size: int, method: str = "dpm_solver",
                 steps: int = 50, seed: int = 42, shared_noise: Optional[torch.Tensor] = None, frame_batch: int = 0,
                 clip_denoised: bool = True, device="cpu"):
        self.model, self.diffusion = model, diffusion
        self.large_size, self.method, self.steps = int(large_size), method, int(steps)
        self.seed, self.shared_noise, self.frame_batch = int(seed), shared_noise, int(frame_batch)
        self.clip_denoised, self.device = bool(clip_denoised), torch.device(device)

    def noise(self, indices: Sequence[int], frames: int, channels: int) -> torch.Tensor:
        """Starting noise ``[len(indices) * frames, C, H, W]`` for the clips ``indices``."""
        from .generate import STREAMS
        from .layout import derive_seed, make_generator

        n = len(indices)
        if self.shared_noise is not None:
            return clip_noise(n, frames, channels, self.large_size, shared=self.shared_noise, device=self.device)
        gens = [make_generator(derive_seed(self.seed, STREAMS["sr_noise"], k), self.device) for k in indices]
        return clip_noise(n, frames, channels, self.large_size, generators=gens, device=self.device)

    @torch.no_grad()
    def __call__(self, video: torch.Tensor, indices: Sequence[int]) -> torch.Tensor:
        """``video: [n, F, C, h, w]`` of clips ``indices`` -> ``[n, F, C, large_size, large_size]``."""
        from .generate import STREAMS, sample_labels
        from .layout import derive_seed, make_generator

        n, f, c = video.shape[:3]
        if len(indices) != n:
            raise ValueError(f"{len(indices)} indices for a batch of {n} clips")
        labels = None
        if getattr(self.model, "num_classes", None) is not None:
            labels = sample_labels(indices, self.seed, self.model.num_classes, "sr_label", self.device)
        gen = make_generator(derive_seed(self.seed, STREAMS["sr_sampler"], indices[0], n), self.device)
        return super_resolve(self.model, video.to(self.device), diffusion=self.diffusion, large_size=self.large_size,
                             method=self.method, steps=self.steps, noise=self.noise(indices, f, c), labels=labels,
                             generator=gen, frame_batch=self.frame_batch, clip_denoised=self.clip_denoised)
