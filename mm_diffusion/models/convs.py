"""Convolutions and resampling for video ``[N, C, F, H, W]`` and audio ``[N, C, L]`` feature maps.

Inside the coupled U-Net video is kept channels-first (``[N, C, F, H, W]``); the parameter names and
shapes are those of the published ``VideoConv`` / ``AudioConv`` wrappers.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .nn import conv_same_padding

VIDEO_CONV_TYPES = ("2d+1d", "3d")
AUDIO_CONV_TYPES = ("1d", "linear")


class VideoConv(nn.Module):
    """Stride-1 'same' convolution of ``video: [N, C_in, F, H, W] -> [N, C_out, F, H, W]``.

    ``conv_type="2d+1d"``: a k x k spatial conv (``video_conv_spatial``, a Conv2d applied to every frame)
    followed by a k-tap temporal conv (``video_conv_temporal``, a Conv1d applied to every pixel), no
    activation between. They run as a (1,k,k) Conv3d and a (k,1) Conv2d over ``[N, C, F, H*W]`` on the
    channels-first tensor, which avoids any re-layout. ``conv_type="3d"``: one k x k x k Conv3d (``video_conv``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, conv_type: str = "2d+1d"):
        super().__init__()
        if conv_type not in VIDEO_CONV_TYPES:
            raise ValueError(f"video_type must be one of {VIDEO_CONV_TYPES}, got {conv_type!r}")
        self.conv_type = conv_type
        self.pad = conv_same_padding(kernel_size)
        if conv_type == "2d+1d":
            self.video_conv_spatial = nn.Conv2d(in_channels, out_channels, kernel_size, padding=self.pad)
            self.video_conv_temporal = nn.Conv1d(out_channels, out_channels, kernel_size, padding=self.pad)
        else:
            self.video_conv = nn.Conv3d(in_channels, out_channels, kernel_size, padding=self.pad)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        n, _, f, h, w = video.shape
        if self.conv_type == "3d":
            conv = self.video_conv
            if conv.kernel_size == (1, 1, 1):
                # A pointwise conv is a per-position matmul; oneDNN's Conv3d is >10x slower for it on CPU.
                out = F.conv1d(video.reshape(n, video.shape[1], f * h * w), conv.weight.flatten(2), conv.bias)
                return out.reshape(n, -1, f, h, w)
            return conv(video)
        sp, tp = self.video_conv_spatial, self.video_conv_temporal
        p = self.pad
        video = F.conv3d(video, sp.weight.unsqueeze(2), sp.bias, padding=(0, p, p))
        # The temporal taps as a (k, 1) Conv2d over [N, C, F, H*W]: about 2x faster than a (k, 1, 1) Conv3d.
        video = F.conv2d(video.reshape(n, -1, f, h * w), tp.weight.unsqueeze(-1), tp.bias, padding=(p, 0))
        return video.reshape(n, -1, f, h, w)


class AudioConv(nn.Module):
    """Stride-1 'same' (optionally dilated) Conv1d ``audio: [N, C_in, L] -> [N, C_out, L]`` (``audio_conv``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1,
                 conv_type: str = "1d"):
        super().__init__()
        if conv_type not in AUDIO_CONV_TYPES:
            raise ValueError(f"audio_type must be one of {AUDIO_CONV_TYPES}, got {conv_type!r}")
        self.audio_conv = nn.Conv1d(
            in_channels, out_channels, kernel_size, dilation=dilation,
            padding=conv_same_padding(kernel_size, dilation),
        )

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        return self.audio_conv(audio)


VIDEO_SCALE = 2  # spatial factor per U-Net level (frames are never resampled)
AUDIO_SCALE = 4  # audio factor per U-Net level


def downsample_video(video: torch.Tensor) -> torch.Tensor:
    """``[N, C, F, H, W] -> [N, C, F, H/2, W/2]`` by 2x2 average pooling of every frame."""
    if video.dtype == torch.float32:
        return F.avg_pool3d(video, (1, VIDEO_SCALE, VIDEO_SCALE))
    # avg_pool3d has no bf16 CPU kernel; with H even, 2x2 windows over [N, C, F*H, W] never cross a frame.
    n, c, f, h, w = video.shape
    return F.avg_pool2d(video.reshape(n, c, f * h, w), VIDEO_SCALE).reshape(n, c, f, h // VIDEO_SCALE, w // VIDEO_SCALE)


def upsample_video(video: torch.Tensor) -> torch.Tensor:
    """``[N, C, F, H, W] -> [N, C, F, 2H, 2W]`` by nearest-neighbour repetition."""
    return F.interpolate(video, scale_factor=(1, VIDEO_SCALE, VIDEO_SCALE), mode="nearest")


def downsample_audio(audio: torch.Tensor) -> torch.Tensor:
    """``[N, C, L] -> [N, C, L/4]`` by average pooling."""
    return F.avg_pool1d(audio, AUDIO_SCALE)


def upsample_audio(audio: torch.Tensor) -> torch.Tensor:
    """``[N, C, L] -> [N, C, 4L]`` by nearest-neighbour repetition."""
    return F.interpolate(audio, scale_factor=AUDIO_SCALE, mode="nearest")


class ResampleAV(nn.Module):
    """Parameter-free resampling of both modalities: ``"up"`` or ``"down"``. Used where the
    published network would have had no resampling layer at all (``resblock_updown=False``)."""

    def __init__(self, direction: str):
        super().__init__()
        if direction not in ("up", "down"):
            raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
        self.direction = direction

    def forward(self, video: torch.Tensor, audio: torch.Tensor):
        return resample_av(self.direction, video, audio)


def resample_av(direction, video: torch.Tensor, audio: torch.Tensor):
    """Resample both modalities one U-Net level ``"up"`` or ``"down"``; ``None`` returns them unchanged."""
    if direction == "up":
        return upsample_video(video), upsample_audio(audio)
    if direction == "down":
        return downsample_video(video), downsample_audio(audio)
    return video, audio
