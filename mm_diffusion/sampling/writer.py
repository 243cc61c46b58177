"""Writing the files of one sample (see :mod:`.sample_layout` for the folder layout).

Every writer of :mod:`mm_diffusion.data.media` writes to a temporary name and renames it; the files of a
sample are written with the base video LAST, after its wav and frames, so a sample interrupted mid-way
is recognised as incomplete and made again by the next run.
"""
from __future__ import annotations

from typing import Optional

import torch

from ..data import media
from .layout import OutputLayout

__all__ = ["write_unconditional", "write_conditional"]


def _video_file(path: str, video: torch.Tensor, audio: Optional[torch.Tensor], fps: float, rate: int) -> None:
    """``video: [F, C, H, W]`` in [-1, 1]; ``audio: [C, L]`` muxed into mp4 (dropped for .gif)."""
    if path.endswith(".gif"):
        media.write_video(path, video, fps=fps)
    else:
        media.write_video(path, video, audio, fps=fps, audio_rate=rate)


def write_unconditional(layout: OutputLayout, index: int, video: torch.Tensor, audio: torch.Tensor, *,
                        video_fps: float, audio_fps: int, sr_video: Optional[torch.Tensor] = None) -> None:
    """Write sample ``index``: ``video: [F, C, H, W]``, ``audio: [C, L]`` (float in [-1, 1]) and, when the layout
    has an SR product, ``sr_video: [F, C, H', W']`` with the same audio."""
    _write_av(layout, index, video, audio, sr_video, video_fps, audio_fps, "original")


def _write_av(layout: OutputLayout, index: int, video: torch.Tensor, audio: torch.Tensor,
              sr_video: Optional[torch.Tensor], video_fps: float, audio_fps: int, product: str) -> None:
    """The wav, the frames, the SR video (when the layout has one) and, last, the ``product`` video of a sample."""
    video, audio = video.detach().float().cpu(), audio.detach().float().cpu()
    media.write_wav(layout.path(index, "audio"), audio, int(audio_fps))
    media.write_frames_png(layout.path(index, "frames"), video)
    if "sr" in layout.products:
        if sr_video is None:
            raise ValueError("the layout has an SR product but no sr_video was given")
        _video_file(layout.path(index, "sr"), sr_video.detach().float().cpu(), audio, video_fps, audio_fps)
    _video_file(layout.path(index, product), video, audio, video_fps, audio_fps)


def write_conditional(layout: OutputLayout, index: int, gt_video: torch.Tensor, gt_audio: torch.Tensor,
                      video: torch.Tensor, audio: torch.Tensor, *, video_fps: float, audio_fps: int,
                      sr_video: Optional[torch.Tensor] = None) -> None:
    """Write conditional sample ``index``: the condition clip ``gt_video [F, C, H, W]`` / ``gt_audio [C, L]`` to
    ``gt/``, the reconstruction ``video`` / ``audio`` (the known one equal to the condition) to
    ``reconstruct/`` plus its wav and frames, and the SR video (with the reconstruction's audio) to ``sr/``."""
    _video_file(layout.path(index, "gt"), gt_video.detach().float().cpu(), gt_audio.detach().float().cpu(),
                video_fps, audio_fps)
    _write_av(layout, index, video, audio, sr_video, video_fps, audio_fps, "reconstruct")
