"""Evaluation: FVD / KVD from I3D, FAD from AudioCLIP or VGGish, AV-Align, over folders of videos.

Modules, one job each:
  metrics         Fréchet distance and the polynomial-kernel MMD (KVD), float64
  features        folder of videos -> feature arrays, distributed across ranks, reference cache
  i3d, audioclip, vggish, audio_features, encoders
                  the feature networks and their loaders (``load_video_encoder``, ``load_audio_encoder``)
  i3d_protocols   I3D preprocessing conventions (``mmdiffusion`` default, ``tf``)
  weights         offline converter of the real I3D (``python -m mm_diffusion.evaluation.weights``)
  av_align        AV-Align synchrony score (audio onsets vs motion peaks), no weights

The command line is ``python -m mm_diffusion.evaluate`` (see docs/evaluation.md).
Names below are imported lazily, so ``import mm_diffusion.evaluation`` stays cheap and the metrics
work even where an encoder module fails to import.
"""
from importlib import import_module
from typing import Any

from .metrics import (  # noqa: F401
    FD_METHODS,
    feature_statistics,
    frechet_distance,
    frechet_distance_from_stats,
    kernel_distance,
    mmd2_unbiased,
    polynomial_kernel,
)

_LAZY = {
    # features.py
    "FeatureSettings": "features",
    "FolderFeatures": "features",
    "extract_features": "features",
    "extract_folder_features": "features",
    "cached_folder_features": "features",
    "folder_fingerprint": "features",
    "evaluation_order": "features",
    # encoders.py (the networks' public loaders)
    "VideoEncoder": "encoders",
    "AudioEncoder": "encoders",
    "AudioCLIPEncoder": "encoders",
    "VGGishEncoder": "encoders",
    "load_video_encoder": "encoders",
    "load_audio_encoder": "encoders",
    "WEIGHT_FILES": "encoders",
    "AUDIO_ENCODERS": "encoders",
    "VIDEO_FEATURES": "encoders",
    # i3d_protocols.py, weights.py, av_align.py
    "PROTOCOLS": "i3d_protocols",
    "convert_i3d": "weights",
    "AVAlignScorer": "av_align",
    "clip_av_align": "av_align",
    # the networks
    "InceptionI3d": "i3d",
    "ESResNeXtFBSP": "audioclip",
    "VGGish": "vggish",
}

__all__ = [
    "FD_METHODS",
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_from_stats",
    "kernel_distance",
    "mmd2_unbiased",
    "polynomial_kernel",
] + sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mm_diffusion.evaluation' has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
