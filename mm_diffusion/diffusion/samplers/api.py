"""The one sampling entry point the pipelines use."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Union

import torch

from ..tree import Tree, is_dict, randn_tree
from .ddim import sample_ddim
from .ddpm import sample_ddpm
from .denoiser import Denoiser
from .dpm_solver import sample_dpm_solver
from .true_conditioning import CONDITION_MODES, CleanConditionDenoiser

__all__ = ["sample", "METHODS", "SAMPLER_DEFAULTS"]

METHODS = ("ddpm", "ddim", "dpm_solver", "dpm_solver++")

# the original's defaults for each DPM-Solver variant
SAMPLER_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "dpm_solver": dict(steps=20, order=3, solver_method="singlestep", skip_type="logSNR"),
    "dpm_solver++": dict(steps=20, order=2, solver_method="multistep", skip_type="logSNR"),
}


def _is_shape(spec: Any) -> bool:
    return isinstance(spec, (tuple, list, torch.Size)) and all(isinstance(v, int) for v in spec)


def _make_start(shape_or_noise, device, generator) -> Tree:
    if isinstance(shape_or_noise, torch.Tensor):
        return shape_or_noise.to(device) if device is not None else shape_or_noise
    if _is_shape(shape_or_noise):
        return randn_tree(tuple(shape_or_noise), device=device, generator=generator)
    if is_dict(shape_or_noise) and shape_or_noise:
        if all(isinstance(v, torch.Tensor) for v in shape_or_noise.values()):
            return {k: (v.to(device) if device is not None else v) for k, v in shape_or_noise.items()}
        if all(_is_shape(v) for v in shape_or_noise.values()):
            return randn_tree(shape_or_noise, device=device, generator=generator)
    raise ValueError("shape_or_noise must be noise (a tensor or a dict of tensors) or shapes "
                     "({'video': (N, F, C, H, W), 'audio': (N, C, L)} or a tuple), got "
                     f"{type(shape_or_noise).__name__}")


def _wrap(model_fn, diffusion, common: Dict[str, Any], condition_mode: str, guidance_scale: float,
          clip_bounds: Optional[Dict[str, float]]):
    """``model_fn`` itself for the default options; otherwise the :class:`Denoiser` every sampler will use
    (samplers take a ready Denoiser as is): clean conditioning with guidance, or per-modality clip bounds."""
    if condition_mode == "replacement" and not clip_bounds:
        return model_fn
    kwargs = dict(condition=common["condition"], clip_denoised=common["clip_denoised"],
                  thresholding=common["thresholding"], generator=common["generator"], clip_bounds=clip_bounds)
    if condition_mode == "clean":
        if common["classifier_scale"]:
            raise ValueError("classifier_scale belongs to condition_mode 'replacement'; use guidance_scale")
        return CleanConditionDenoiser(model_fn, diffusion, guidance_scale=guidance_scale, **kwargs)
    return Denoiser(model_fn, diffusion, classifier_scale=common["classifier_scale"], **kwargs)


def sample(model_fn: Callable[[Tree, torch.Tensor], Tree], shape_or_noise: Union[Tree, Dict[str, Sequence[int]], Sequence[int]], *,
           diffusion, method: str = "dpm_solver", steps: Optional[int] = None, eta: float = 0.0,
           order: Optional[int] = None, skip_type: Optional[str] = None, solver_method: Optional[str] = None,
           thresholding: bool = False, clip_denoised: bool = True, condition: Optional[Dict[str, torch.Tensor]] = None,
           classifier_scale: float = 0.0, generator: Optional[torch.Generator] = None, progress: bool = True,
           callback: Optional[Callable[[dict], None]] = None, device=None, condition_mode: str = "replacement",
           guidance_scale: float = 1.0, clip_bounds: Optional[Dict[str, float]] = None) -> Tree:
    """Generate samples (an AV pair, or a tensor) with any sampler.

    Args:
        model_fn: ``model_fn(x_t, t) -> tree like x_t``; ``t`` is int64 ``[N]`` in the ORIGINAL
            timestep numbering (float when ``rescale_timesteps``).
        shape_or_noise: the starting noise (dict of tensors / tensor) or shapes
            ``{"video": (N, F, C, H, W), "audio": (N, C, L)}`` (a tuple for a bare tensor).
        diffusion: from :func:`create_gaussian_diffusion` (possibly respaced).
        method: ``"ddpm"``, ``"ddim"``, ``"dpm_solver"`` or ``"dpm_solver++"``.
        steps: ddpm/ddim: evenly respace the diffusion to this many steps (None: all its steps);
            DPM-Solver: solver evaluations (default 20).
        eta: DDIM noise level. order / skip_type / solver_method: DPM-Solver settings (defaults:
            ``dpm_solver`` 3 / logSNR / singlestep; ``dpm_solver++`` 2 / logSNR / multistep).
        thresholding: dynamic thresholding of predicted x0; clip_denoised: clamp predicted x0 to [-1, 1].
        condition: known modalities for zero-shot conditional generation, e.g. ``{"audio": a}``
            (audio-to-video); returned unchanged in the result. classifier_scale: gradient-guidance weight.
        generator: a ``torch.Generator`` (on ``device``) for all the randomness.
        progress: tqdm bar; callback: per-step ``callback({"i", "t", "x", "denoised"})``.
        device: where to draw noise from shapes (default: the generator's device, else CPU).
        condition_mode: ``"replacement"`` (the paper's zero-shot method, default) or ``"clean"`` (the known
            modality given clean at its own t = 0; for models trained with per-modality timesteps), see
            :mod:`.true_conditioning`; ``guidance_scale``: classifier-free guidance across modalities (clean
            mode; 1 = none). clip_bounds: per-modality clamp bound of predicted x0 (``--data_scale`` runs).
    Returns: the sample, same structure as the noise; every value float.
    """
    method = method.replace("-", "_").lower()
    if method not in METHODS:
        raise ValueError(f"unknown sampling method {method!r}; valid: {', '.join(METHODS)}")
    x = _make_start(shape_or_noise, device, generator)
    if condition is not None and not is_dict(x):
        raise ValueError("condition needs an AV pair (dict) sample; a bare tensor has no modality to condition on")
    common = dict(clip_denoised=clip_denoised, thresholding=thresholding, condition=condition,
                  classifier_scale=classifier_scale, generator=generator, callback=callback, progress=progress)
    if condition_mode not in CONDITION_MODES:
        raise ValueError(f"unknown condition_mode {condition_mode!r}; valid: {', '.join(CONDITION_MODES)}")
    if condition_mode == "replacement" and guidance_scale != 1.0:
        raise ValueError("guidance_scale applies to condition_mode 'clean' (a model trained with per-modality "
                         "timesteps); the replacement method uses classifier_scale")
    if method in ("ddpm", "ddim"):
        unused = {k: v for k, v in dict(order=order, skip_type=skip_type, solver_method=solver_method).items() if v is not None}
        if unused:
            raise ValueError(f"{sorted(unused)} only apply to the DPM-Solver methods, not {method!r}")
        if steps is not None:
            if not isinstance(steps, int) or not 1 <= steps <= diffusion.num_timesteps:
                raise ValueError(f"steps must be an int in [1, {diffusion.num_timesteps}] for {method}, got {steps!r}")
            if steps != diffusion.num_timesteps:
                diffusion = diffusion.respace(str(steps))
        model_fn = _wrap(model_fn, diffusion, common, condition_mode, guidance_scale, clip_bounds)
        if method == "ddpm":
            if eta != 0.0:
                raise ValueError("eta only applies to method 'ddim'")
            return sample_ddpm(model_fn, x, diffusion=diffusion, **common)
        return sample_ddim(model_fn, x, diffusion=diffusion, eta=eta, **common)
    defaults = SAMPLER_DEFAULTS[method]
    model_fn = _wrap(model_fn, diffusion, common, condition_mode, guidance_scale, clip_bounds)
    return sample_dpm_solver(
        model_fn, x, diffusion=diffusion, algorithm=method,
        steps=defaults["steps"] if steps is None else steps,
        order=defaults["order"] if order is None else order,
        skip_type=defaults["skip_type"] if skip_type is None else skip_type,
        method=defaults["solver_method"] if solver_method is None else solver_method,
        **common,
    )
