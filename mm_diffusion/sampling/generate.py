"""Generate one batch of AV pairs with the coupled U-Net: unconditionally or given one known modality.

Randomness is keyed by the samples' global indices (:func:`.sample_layout.derive_seed`): the starting noise
of sample ``k`` (and its class label, for a class-conditional model) depends only on ``(seed, k)``; the
sampler's own noise and the RS-MMA window offsets come from generators seeded by the batch's indices. The
same arguments therefore give the same samples, and DDIM / DPM-Solver starting points do not depend on the
world size.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

import torch

from ..diffusion import sample
from ..diffusion.data_scale import clip_bounds, scale_data, unscale_data
from .layout import derive_seed, make_generator

__all__ = ["STREAMS", "multimodal_model_fn", "initial_noise", "sample_labels", "generate_av", "DPM_METHODS"]

# Independent random streams derived from (seed, stream, ...).
STREAMS = dict(noise=1, sr_noise=2, sampler=3, shift=4, label=5, sr_label=6, sr_sampler=7)
DPM_METHODS = ("dpm_solver", "dpm_solver++")


def multimodal_model_fn(model: torch.nn.Module, labels: Optional[torch.Tensor] = None,
                        shift_generator: Optional[torch.Generator] = None) -> Callable:
    """Sampler model function over AV pairs for a ``MultimodalUNet``:
    ``fn({"video": [N, F, C, H, W], "audio": [N, C, L]}, t [N]) -> {"video": ..., "audio": ...}`` (the model's
    output channels). ``labels: [N]`` for a class-conditional model; ``shift_generator`` (CPU) draws the RS-MMA
    window offsets."""

    def fn(x: Dict[str, torch.Tensor], t: torch.Tensor) -> Dict[str, torch.Tensor]:
        video, audio = model(x["video"], x["audio"], t, label=labels, generator=shift_generator)
        return {"video": video, "audio": audio}

    return fn


def initial_noise(indices: Sequence[int], seed: int, video_size: Sequence[int], audio_size: Sequence[int],
                  device="cpu") -> Dict[str, torch.Tensor]:
    """Starting noise ``{"video": [n, *video_size], "audio": [n, *audio_size]}``; row ``i`` depends only on
    ``(seed, indices[i])``."""
    videos, audios = [], []
    for k in indices:
        gen = make_generator(derive_seed(seed, STREAMS["noise"], k), device)
        videos.append(torch.randn(tuple(video_size), generator=gen, device=device))
        audios.append(torch.randn(tuple(audio_size), generator=gen, device=device))
    return {"video": torch.stack(videos), "audio": torch.stack(audios)}


def sample_labels(indices: Sequence[int], seed: int, num_classes: int, stream: str = "label", device="cpu",
                  class_id: int = -1) -> torch.Tensor:
    """One class id per sample (``[n]`` int64): ``class_id`` for all when it is >= 0, else uniform from
    ``(seed, stream, k)``."""
    if int(class_id) >= 0:
        if int(class_id) >= int(num_classes):
            raise ValueError(f"--class_id {class_id} is not a class of this model (it has {num_classes}: 0..{num_classes - 1})")
        return torch.full((len(indices),), int(class_id), dtype=torch.long, device=device)
    return torch.tensor([derive_seed(seed, STREAMS[stream], k) % int(num_classes) for k in indices],
                        dtype=torch.long, device=device)


@torch.no_grad()
def generate_av(model: torch.nn.Module, diffusion, indices: Sequence[int], *, video_size: Sequence[int],
                audio_size: Sequence[int], method: str = "dpm_solver", steps: Optional[int] = 20, seed: int = 42,
                device="cpu", condition: Optional[Dict[str, torch.Tensor]] = None, classifier_scale: float = 0.0,
                clip_denoised: bool = True, solver: Optional[Dict] = None, progress: bool = False,
                class_id: int = -1, condition_mode: str = "replacement",
                guidance_scale: float = 1.0, joint_guidance_scale: float = 1.0) -> Dict[str, torch.Tensor]:
    """Sample AV pairs for the global indices ``indices`` (``n = len(indices)``).

    Args:
        model: a ``MultimodalUNet`` in eval mode on ``device``.
        diffusion: its diffusion (respaced by ``--timestep_respacing`` for ddpm / ddim).
        video_size / audio_size: ``(F, C, H, W)`` / ``(C, L)``.
        method: ``ddpm``, ``ddim``, ``dpm_solver`` or ``dpm_solver++``; ``steps`` is the DPM-Solver step count
            (ddpm / ddim walk every step of ``diffusion``).
        condition: known modality for zero-shot generation, ``{"audio": [n, C, L]}`` (audio-to-video) or
            ``{"video": [n, F, C, H, W]}`` (video-to-audio); returned unchanged. ``classifier_scale``: 0 =
            replacement, > 0 = plus gradient guidance.
        class_id: for a class-conditional model, the class of every sample (-1: uniform per sample).
        clip_denoised: ddpm / ddim only; the DPM-Solvers run MM-Diffusion's settings (``dpm_solver``: no
            clipping, ``dpm_solver++``: dynamic thresholding) changed by ``solver`` (:func:`solver_overrides`).
        condition_mode: ``"clean"``: the known modality given clean at its own t = 0 (models trained with
            ``--independent_t_prob``), with classifier-free guidance ``guidance_scale`` (1 = none). A run's
            ``--data_scale`` (``diffusion.data_scale``) scales the condition and is divided out of the result.
        joint_guidance_scale: unconditional sampling only (no ``condition``): the audio guided by the video with
            this scale (models trained with ``--independent_t_prob``; 1 = off; one more model call per step).
    Returns: ``{"video": [n, F, C, H, W], "audio": [n, C, L]}`` float32 on ``device``, values in [-1, 1].
    """
    if not indices:
        raise ValueError("generate_av needs at least one sample index")
    method = method.replace("-", "_")
    noise = initial_noise(indices, seed, video_size, audio_size, device)
    first, count = int(indices[0]), len(indices)
    sampler_gen = make_generator(derive_seed(seed, STREAMS["sampler"], first, count), device)
    shift_gen = make_generator(derive_seed(seed, STREAMS["shift"], first, count), "cpu")
    num_classes = getattr(model, "num_classes", None)
    if num_classes is None and int(class_id) >= 0:
        raise ValueError(f"--class_id {class_id} given but the model is not class-conditional (trained without --class_cond True)")
    labels = sample_labels(indices, seed, num_classes, device=device, class_id=class_id) if num_classes is not None else None
    scale = getattr(diffusion, "data_scale", None)
    if condition is not None:
        condition = scale_data({k: v.to(device=device, dtype=torch.float32) for k, v in condition.items()}, scale)
    kwargs = dict(steps=steps, **(solver or {})) if method in DPM_METHODS else dict(clip_denoised=clip_denoised)
    if condition_mode != "replacement" or guidance_scale != 1.0 or scale:
        kwargs.update(condition_mode=condition_mode, guidance_scale=float(guidance_scale), clip_bounds=clip_bounds(scale))
    if float(joint_guidance_scale) != 1.0:
        kwargs["joint_guidance_scale"] = float(joint_guidance_scale)
    out = unscale_data(sample(multimodal_model_fn(model, labels, shift_gen), noise, diffusion=diffusion, method=method,
                              condition=condition, classifier_scale=float(classifier_scale), generator=sampler_gen,
                              progress=progress, **kwargs), scale)
    # the DPM-Solvers stop at t = 1/N without clipping: clamp as the original does when it saves the samples
    return {k: (v if condition and k in condition else v.clamp(-1.0, 1.0)) for k, v in out.items()}
