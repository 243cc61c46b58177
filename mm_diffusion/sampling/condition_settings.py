"""How a checkpoint is conditioned and guided when its flags leave it open: ``condition_mode auto`` and an unset
``guidance_scale``, shared by the conditional sampling jobs and the demo.

* ``condition_mode``: ``"auto"`` is ``"clean"`` (the known modality at its own t = 0) for a model trained with
  per-modality timesteps (``independent_t_prob > 0`` in its run's flags: it has seen a clean other modality),
  else ``"replacement"`` (the paper's zero-shot method). Published checkpoints have no such flag, so they get
  the published method. Asking for gradient guidance (``classifier_scale > 0``, a feature of the replacement
  method) makes ``auto`` choose replacement too.
* ``guidance_scale``: the value given; unset (None), the checkpoint's recommended value (its JSON's
  ``recommended_sampling.guidance_scale``, see :func:`~mm_diffusion.runs.locate.find_recommended_sampling`)
  under ``clean``, else 1 (no guidance). A guidance other than 1 under ``replacement`` is refused: replacement
  has no unconditional branch to guide against.
* ``joint_guidance_scale`` (unconditional sampling: the audio guided by the video): the value given; unset, the
  checkpoint's ``recommended_sampling.joint_guidance_scale`` for a model trained with per-modality timesteps,
  else 1. Other than 1 on a model without them is refused (its video was never seen at t = T beside live audio).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple

__all__ = ["CONDITION_MODE_CHOICES", "resolve_condition_mode", "resolve_guidance_scale",
           "resolve_joint_guidance_scale"]

CONDITION_MODE_CHOICES = ("auto", "replacement", "clean")


def resolve_condition_mode(mode: str, independent_t_prob: Optional[float], classifier_scale: float = 0.0) -> str:
    """``mode`` with ``"auto"`` made concrete from the run's ``independent_t_prob`` (None or 0: replacement) and
    the requested gradient guidance ``classifier_scale`` (> 0: replacement)."""
    if mode not in CONDITION_MODE_CHOICES:
        raise ValueError(f"unknown --condition_mode {mode!r}; valid: {', '.join(CONDITION_MODE_CHOICES)}")
    if mode != "auto":
        return mode
    if float(classifier_scale or 0.0) > 0:
        return "replacement"
    return "clean" if float(independent_t_prob or 0.0) > 0 else "replacement"


def resolve_guidance_scale(guidance_scale: Optional[float], condition_mode: str,
                           recommended: Optional[Mapping[str, Any]] = None) -> Tuple[float, str]:
    """``(scale, source)``: the guidance scale to sample with (see the module doc) and where it came from,
    ``"flag"``, ``"checkpoint"`` (its recommendation) or ``"default"``. ``condition_mode``: already resolved.

    ValueError when ``guidance_scale`` is negative, or other than 1 under ``replacement``."""
    if guidance_scale is None:
        if condition_mode == "clean" and "guidance_scale" in (recommended or {}):
            return float(recommended["guidance_scale"]), "checkpoint"
        return 1.0, "default"
    guidance_scale = float(guidance_scale)
    if guidance_scale < 0:
        raise ValueError(f"--guidance_scale must be >= 0, got {guidance_scale}")
    if condition_mode == "replacement" and guidance_scale != 1.0:
        raise ValueError(f"--guidance_scale {guidance_scale:g} needs --condition_mode clean (replacement, the "
                         f"paper's method, has no unconditional branch to guide against; auto chooses clean only "
                         f"for checkpoints trained with --independent_t_prob)")
    return guidance_scale, "flag"


def resolve_joint_guidance_scale(joint_guidance_scale: Optional[float], independent_t_prob: Optional[float],
                                 recommended: Optional[Mapping[str, Any]] = None) -> Tuple[float, str]:
    """``(scale, source)`` for unconditional joint guidance (see the module doc); ``source`` as
    :func:`resolve_guidance_scale`'s. ValueError when negative, or other than 1 for a model without
    per-modality timesteps."""
    trained = float(independent_t_prob or 0.0) > 0
    if joint_guidance_scale is None:
        if trained and "joint_guidance_scale" in (recommended or {}):
            return float(recommended["joint_guidance_scale"]), "checkpoint"
        return 1.0, "default"
    joint_guidance_scale = float(joint_guidance_scale)
    if joint_guidance_scale < 0:
        raise ValueError(f"--joint_guidance_scale must be >= 0, got {joint_guidance_scale}")
    if joint_guidance_scale != 1.0 and not trained:
        raise ValueError(f"--joint_guidance_scale {joint_guidance_scale:g} needs a model trained with "
                         f"--independent_t_prob (it feeds the video at t = T); this checkpoint was not")
    return joint_guidance_scale, "flag"

