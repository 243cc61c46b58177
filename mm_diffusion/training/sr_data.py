"""Frames for super-resolution training, drawn from clips (a video folder or the synthetic dataset).

``FramesDataset(clips, frames_per_clip)`` turns a clip dataset (items ``{"video": [F, 3, H, W], "audio": ...}``)
into one item per frame: item ``i`` is frame ``i % F`` of clip ``i // F``, as ``{"video": [1, 3, H, W],
"audio": [1, 1]}`` (a placeholder, so :func:`mm_diffusion.data.collate_av` batches it). Draw ids from
the resumable sampler are passed on, so flips stay reproducible across resumes.

``sr_frames(data_dir, large_size, ...)`` builds it: a folder gives single-frame clips every
``frame_gap`` frames at ``video_fps`` (files without audio are used too); no folder gives the synthetic
dataset (``synthetic_frames`` frames per clip).
"""
from __future__ import annotations

import os
from typing import Tuple, Union

import torch
from torch.utils.data import Dataset

from ..data.synthetic.spec import parse_synthetic_spec

__all__ = ["FramesDataset", "sr_frames"]


class FramesDataset(Dataset):
    """One item per frame of a clip dataset (see the module docstring)."""

    def __init__(self, clips: Dataset, frames_per_clip: int):
        if int(frames_per_clip) < 1:
            raise ValueError(f"frames_per_clip must be >= 1, got {frames_per_clip}")
        self.clips = clips
        self.frames = int(frames_per_clip)
        self.accepts_draw_ids = bool(getattr(clips, "accepts_draw_ids", False))

    def __len__(self) -> int:
        return len(self.clips) * self.frames

    def __getitem__(self, index: Union[int, Tuple[int, int]]) -> dict:
        if isinstance(index, (tuple, list)):
            idx, draw = int(index[0]), int(index[1])
            clip_key = (idx // self.frames, draw) if self.accepts_draw_ids else idx // self.frames
        else:
            idx = int(index)
            clip_key = idx // self.frames
        if not 0 <= idx < len(self):
            raise IndexError(f"frame index {idx} out of range for {len(self)} frames")
        item = self.clips[clip_key]
        frame = item["video"][idx % self.frames]
        out = {"video": frame.unsqueeze(0), "audio": torch.zeros(1, 1)}
        if "label" in item:
            out["label"] = item["label"]
        return out


def sr_frames(data_dir: str, large_size: int, video_fps: float = 10.0, frame_gap: int = 1,
              synthetic_num: int = 256, synthetic_frames: int = 4, seed: int = 0, random_flip: bool = True,
              progress: bool = True, class_cond: bool = False) -> FramesDataset:
    """Frames of ``large_size`` x ``large_size`` for SR training (``FileNotFoundError`` for a missing folder,
    ``ValueError`` if it holds no usable video). ``class_cond``: items carry the ``"label"`` of their class
    folder (see :class:`mm_diffusion.data.ClipDataset`)."""
    size = int(large_size)
    spec = parse_synthetic_spec(data_dir or "synthetic", default_num=int(synthetic_num), default_seed=seed)
    if spec is not None:
        if class_cond:
            raise ValueError("class labels need a --data_dir folder with one sub-folder per class")
        from ..data import SyntheticAVDataset

        num, seed = spec
        frames = max(3, int(synthetic_frames))
        rate = 8000
        length = int(round(frames / float(video_fps) * rate))
        clips = SyntheticAVDataset(num, (frames, 3, size, size), (1, length), fps=video_fps, audio_rate=rate,
                                   seed=seed, random_flip=random_flip)
        return FramesDataset(clips, frames)
    path = os.path.expanduser(data_dir)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"--data_dir {data_dir!r} is not a folder; pass a folder of videos (searched "
                                f"recursively) or leave it out for the synthetic dataset")
    from ..data import ClipDataset

    rate = 8000
    clips = ClipDataset(path, (1, 3, size, size), (1, max(1, int(round(rate / float(video_fps))))),
                        video_fps=video_fps, audio_fps=rate, frame_stride=max(1, int(frame_gap)),
                        random_flip=random_flip, allow_missing_audio=True, progress=progress, seed=seed,
                        class_cond=class_cond)
    return FramesDataset(clips, 1)
