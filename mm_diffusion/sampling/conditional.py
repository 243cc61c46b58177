"""Zero-shot conditional generation: audio-to-video and video-to-audio with an unconditional coupled U-Net.

The conditions come from ``--ref_path``, a folder of videos read through :class:`~mm_diffusion.data.ClipDataset`
in deterministic order (no flips): sample ``k`` is conditioned on clip ``k`` of the sorted clip list (clip
``k mod len`` when more samples than clips are asked for), whatever the world size. ``synthetic:N[:SEED]``
uses N in-memory clips of the synthetic bouncing-ball dataset instead (no files needed). The known modality is
replaced by its forward-noised version at every step (``classifier_scale = 0``), optionally plus gradient
guidance (``classifier_scale > 0``), with any of the four samplers, and comes back unchanged.
"""
from __future__ import annotations

import os
import warnings
from typing import Dict, Optional, Sequence

import torch

from ..runs import dist
from ..data import ClipDataset
from ..data.synthetic.spec import is_synthetic_spec, parse_synthetic_spec
from .generate import generate_av

__all__ = ["MODES", "known_modality", "ConditionSource", "generate_conditional"]

# mode -> the known (conditioning) modality
MODES = {"audio2video": "audio", "video2audio": "video"}


def known_modality(mode: str) -> str:
    """``"audio"`` for ``audio2video``, ``"video"`` for ``video2audio``."""
    if mode not in MODES:
        raise ValueError(f"unknown conditional mode {mode!r}; valid: {sorted(MODES)}")
    return MODES[mode]


class ConditionSource:
    """Reference clips ``{"video": [F, C, H, W], "audio": [C, L]}`` from a folder of videos, by global index.

    Every rank sees the same sorted clip list (rank 0 builds the index cache first, the others wait), so clip
    ``k`` is the same on every rank. Raises ``FileNotFoundError`` for a missing folder and ``ValueError`` when
    it holds no usable clip (the message says why).
    """

    def __init__(self, ref_path: str, video_size: Sequence[int], audio_size: Sequence[int], video_fps: float,
                 audio_fps: int, progress: bool = True, cache_dir: Optional[str] = None):
        if not ref_path:
            raise ValueError("--ref_path is required: a folder of videos whose clips give the known modality "
                             "(or synthetic:N for N in-memory synthetic clips)")
        self._warned = False
        if is_synthetic_spec(ref_path):
            self.dataset = _synthetic_source(ref_path, video_size, audio_size, video_fps, audio_fps)
            return
        kwargs = dict(video_size=tuple(video_size), audio_size=tuple(audio_size), video_fps=video_fps,
                      audio_fps=audio_fps, deterministic=True, rank=0, world_size=1, cache_dir=cache_dir)
        if not os.path.isdir(ref_path):
            raise FileNotFoundError(f"--ref_path {ref_path!r} is not a folder; give a folder of video files "
                                    f"(e.g. one written by `python -m mm_diffusion.data.synthetic --out DIR`)")
        dataset = None
        if dist.is_main_process():
            dataset = ClipDataset(ref_path, progress=progress, **kwargs)
        dist.barrier()
        if dataset is None:
            dataset = ClipDataset(ref_path, progress=False, **kwargs)
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def batch(self, indices: Sequence[int]) -> Dict[str, torch.Tensor]:
        """``{"video": [n, F, C, H, W], "audio": [n, C, L]}`` for global sample indices (wrapping around)."""
        n = len(self.dataset)
        if max(indices) >= n and not self._warned:
            warnings.warn(f"asked for sample {max(indices)} but --ref_path has only {n} clips: conditions repeat "
                          f"from the first clip (use --all_save_num <= {n} for distinct conditions)")
            self._warned = True
        items = [self.dataset[int(k) % n] for k in indices]
        return {"video": torch.stack([it["video"] for it in items]), "audio": torch.stack([it["audio"] for it in items])}


SYNTHETIC_REF_SEED = 12345  # reference clips unlike the training stream's (seed 0)


def _synthetic_source(spec: str, video_size, audio_size, video_fps, audio_fps):
    """``synthetic:N`` or ``synthetic:N:SEED``: N in-memory clips of the synthetic bouncing-ball dataset."""
    from ..data import SyntheticAVDataset

    num, seed = parse_synthetic_spec(spec, default_num=None, default_seed=SYNTHETIC_REF_SEED, flag="--ref_path")
    return SyntheticAVDataset(num, tuple(video_size), tuple(audio_size), fps=video_fps, audio_rate=int(audio_fps),
                              seed=seed)


def generate_conditional(model: torch.nn.Module, diffusion, reference: Dict[str, torch.Tensor], indices: Sequence[int], *,
                         mode: str, method: str = "dpm_solver", steps: Optional[int] = 20, seed: int = 42,
                         classifier_scale: float = 0.0, device="cpu", clip_denoised: bool = True,
                         solver: Optional[Dict] = None, progress: bool = False, class_id: int = -1,
                         condition_mode: str = "replacement", guidance_scale: float = 1.0) -> Dict[str, torch.Tensor]:
    """Generate the unknown modality of ``reference`` (``{"video": [n, F, C, H, W], "audio": [n, C, L]}``).

    ``mode``: ``audio2video`` (keep the audio, generate the video) or ``video2audio``. Returns the AV pair with
    the known modality equal to ``reference``'s and the other one generated (float32 on ``device``).
    """
    known = known_modality(mode)
    video_size = tuple(reference["video"].shape[1:])
    audio_size = tuple(reference["audio"].shape[1:])
    if len(indices) != reference[known].shape[0]:
        raise ValueError(f"{len(indices)} indices for a reference batch of {reference[known].shape[0]} clips")
    return generate_av(model, diffusion, indices, video_size=video_size, audio_size=audio_size, method=method,
                       steps=steps, seed=seed, device=device, condition={known: reference[known]},
                       classifier_scale=classifier_scale, clip_denoised=clip_denoised, solver=solver,
                       progress=progress, class_id=class_id, condition_mode=condition_mode,
                       guidance_scale=guidance_scale)
