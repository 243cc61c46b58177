"""What the training loop trains: how a data batch becomes ``x_start`` + model inputs, and how progress
samples are drawn and written. One small class per model family; the loop itself is model-agnostic.

A task provides:
    ``prepare(batch, device) -> (x_start, cond)``   x_start: a tree (AV dict or tensor), cond: model inputs
    ``take(cond, index) -> cond``                  rows ``index`` of ``cond`` (microbatches)
    ``model_fn(net, cond) -> fn(x_t, t)``          the model function the diffusion calls
    ``write_samples(model, diffusion, out_dir, step, ...) -> list of paths``
"""
from __future__ import annotations

import os
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..diffusion import sample

__all__ = ["AVTask", "SRTask", "downsample"]


class AVTask:
    """The coupled U-Net on AV pairs: ``batch = {"video": [N, F, C, H, W], "audio": [N, C, L]}`` (plus
    ``"label": [N]`` for a class-conditional model, passed to it as ``label``).

    Progress samples: ``num`` EMA samples of shape ``video_size`` / ``audio_size`` written as
    ``samples/step{step:06d}_{i}.mp4`` (H.264 + AAC at ``video_fps`` / ``audio_fps``).
    """

    def __init__(self, video_size, audio_size, video_fps: float, audio_fps: int):
        self.video_size = tuple(int(v) for v in video_size)
        self.audio_size = tuple(int(v) for v in audio_size)
        self.video_fps, self.audio_fps = float(video_fps), int(audio_fps)

    def prepare(self, batch: Dict[str, torch.Tensor], device: torch.device) -> Tuple[Dict[str, torch.Tensor], Any]:
        """``cond``: the batch's class ids ``[N]`` (class-conditional data) or ``None``."""
        video, audio = batch["video"], batch["audio"]
        if tuple(video.shape[1:]) != self.video_size or tuple(audio.shape[1:]) != self.audio_size:
            raise ValueError(f"data batch video {tuple(video.shape[1:])} / audio {tuple(audio.shape[1:])} does not "
                             f"match the model's --video_size {self.video_size} / --audio_size {self.audio_size}")
        labels = batch.get("label")
        labels = None if labels is None else labels.to(device, non_blocking=True)
        return {"video": video.to(device, non_blocking=True), "audio": audio.to(device, non_blocking=True)}, labels

    @staticmethod
    def take(cond: Any, index: slice) -> Any:
        return None if cond is None else cond[index]

    @staticmethod
    def model_fn(net: Callable, cond: Any, generator: Optional[torch.Generator] = None):
        extra = {} if cond is None else {"label": cond}
        if generator is not None:
            extra["generator"] = generator

        def fn(x, t):
            video, audio = net(x["video"], x["audio"], t, **extra)
            return {"video": video, "audio": audio}

        return fn

    def write_samples(self, model, diffusion, out_dir: str, step: int, num: int, method: str, steps: int,
                      seed: int, device: torch.device, batch: Any = None) -> List[str]:
        from ..data.media import write_video

        gen = torch.Generator(device=device).manual_seed(int(seed))
        shapes = {"video": (num,) + self.video_size, "audio": (num,) + self.audio_size}
        kwargs = dict(steps=steps) if steps > 0 else {}
        classes = getattr(model, "num_classes", None)  # class-conditional: sample i shows class i mod classes
        labels = None if classes is None else torch.arange(num, device=device) % int(classes)
        av = sample(self.model_fn(model, labels, gen), shapes, diffusion=diffusion, method=method, generator=gen,
                    progress=False, device=device, **kwargs)
        os.makedirs(out_dir, exist_ok=True)
        paths = []
        for i in range(num):
            path = os.path.join(out_dir, f"step{step:06d}_{i}.mp4")
            write_video(path, av["video"][i].float().cpu(), av["audio"][i].float().cpu(), fps=self.video_fps,
                        audio_rate=self.audio_fps)
            paths.append(path)
        return paths


def downsample(images: torch.Tensor, size: int) -> torch.Tensor:
    """``images [N, C, H, W]`` in [-1, 1] -> ``[N, C, size, size]`` (bicubic with antialiasing, clamped)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    out = F.interpolate(images.float(), size=(size, size), mode="bicubic", antialias=True, align_corners=False)
    return out.clamp(-1, 1).to(images.dtype)


class SRTask:
    """The SR U-Net on frames: ``batch["video"]`` ``[N, 1, 3, H, W]`` (single-frame clips) or ``[N, 3, H, W]``
    (plus ``"label": [N]`` for a class-conditional SR model, passed to it as ``y``).

    ``x_start`` is the frame at ``large_size``; the model input ``low_res`` is the frame downsampled to
    ``small_size``. Progress samples: the first ``num`` low-res frames of the current batch, upsampled by
    the EMA model, written as ``samples/step{step:06d}.png`` (rows: low-res (nearest), sample, target).
    """

    def __init__(self, large_size: int, small_size: int):
        self.large_size, self.small_size = int(large_size), int(small_size)

    def prepare(self, batch: Dict[str, torch.Tensor], device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
        video = batch["video"]
        if video.dim() == 5:
            video = video.flatten(0, 1)
        if video.dim() != 4 or video.shape[1] != 3:
            raise ValueError(f"SR training expects frames [N, 3, H, W], got {tuple(batch['video'].shape)}")
        if video.shape[-1] != self.large_size or video.shape[-2] != self.large_size:
            raise ValueError(f"frames are {tuple(video.shape[-2:])}, expected --large_size {self.large_size}")
        x = video.to(device, non_blocking=True)
        low = downsample(x, self.small_size)
        labels = batch.get("label")
        if labels is None:
            return x, low
        return x, (low, labels.to(device, non_blocking=True).repeat_interleave(x.shape[0] // labels.shape[0]))

    @staticmethod
    def _split(cond: Any) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``cond`` is ``low_res`` or, with class labels, ``(low_res, labels [N])``."""
        return (cond[0], cond[1]) if isinstance(cond, tuple) else (cond, None)

    @staticmethod
    def take(cond: Any, index: slice) -> Any:
        return tuple(c[index] for c in cond) if isinstance(cond, tuple) else cond[index]

    @staticmethod
    def model_fn(net: Callable, cond: Any, generator: Optional[torch.Generator] = None):
        low, labels = SRTask._split(cond)
        if labels is None:
            return lambda x, t: net(x, t, low_res=low)
        return lambda x, t: net(x, t, low_res=low, y=labels)

    def write_samples(self, model, diffusion, out_dir: str, step: int, num: int, method: str, steps: int,
                      seed: int, device: torch.device, batch: Any = None) -> List[str]:
        from PIL import Image

        from ..data.media import atomic_path

        if batch is None:
            return []
        x, cond = self.prepare(batch, device)
        x, cond = x[:num], self.take(cond, slice(0, num))
        low = self._split(cond)[0]
        gen = torch.Generator(device=device).manual_seed(int(seed))
        kwargs = dict(steps=steps) if steps > 0 else {}
        out = sample(self.model_fn(model, cond), tuple(x.shape), diffusion=diffusion, method=method, generator=gen,
                     progress=False, device=device, **kwargs)
        up = F.interpolate(low.float(), size=x.shape[-2:], mode="nearest")
        grid = torch.cat([torch.cat(list(row), dim=-1) for row in (up, out.float(), x.float())], dim=-2)
        pixels = ((grid.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, f"step{step:06d}.png")
        with atomic_path(path) as tmp:
            Image.fromarray(np.ascontiguousarray(pixels)).save(tmp, format="PNG")
        return [path]
