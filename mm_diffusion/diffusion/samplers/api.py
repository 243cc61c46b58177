"""The one sampling entry point every job (sample, demo, probe, training previews) uses."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence, Union

import torch

from ..tree import Tree, is_dict, randn_tree
from .ddim import sample_ddim
from .ddpm import sample_ddpm
from .denoiser import Denoiser
from .dpm_solver import sample_dpm_solver
from .true_conditioning import CONDITION_MODES, CleanConditionDenoiser, JointGuidanceDenoiser

__all__ = ["sample", "METHODS", "SAMPLER_DEFAULTS", "solver_overrides"]

METHODS = ("ddpm", "ddim", "dpm_solver", "dpm_solver++")

# MM-Diffusion's settings for each DPM-Solver variant (py_scripts/multimodal_sample_sr.py): what
# ``method="dpm_solver"`` / ``"dpm_solver++"`` run unless an argument says otherwise
SAMPLER_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "dpm_solver": dict(steps=20, order=3, solver_method="singlestep", skip_type="logSNR", solver_type="dpm_solver",
                       denoise_to_zero=False, clip_denoised=False, thresholding=False),
    "dpm_solver++": dict(steps=20, order=2, solver_method="adaptive", skip_type="logSNR", solver_type="dpm_solver",
                         denoise_to_zero=False, clip_denoised=False, thresholding=True),
}
# what ddpm / ddim clip by default
_CLASSIC_DEFAULTS = dict(clip_denoised=True, thresholding=False)
_SOLVER_ONLY = ("order", "skip_type", "solver_method", "solver_type", "denoise_to_zero")


def solver_overrides(order: int = 0, skip_type: str = "", solver_method: str = "", solver_type: str = "",
                     denoise_to_zero: bool = False) -> Dict[str, Any]:
    """:func:`sample` keyword arguments from command-line style values, where ``0`` / ``""`` keep the
    sampler's own setting (:data:`SAMPLER_DEFAULTS`); ``denoise_to_zero`` is passed only when True."""
    out: Dict[str, Any] = {}
    if int(order):
        out["order"] = int(order)
    for key, value in (("skip_type", skip_type), ("solver_method", solver_method), ("solver_type", solver_type)):
        if value:
            out[key] = str(value)
    if denoise_to_zero:
        out["denoise_to_zero"] = True
    return out


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


def sample(model_fn: Callable[[Tree, torch.Tensor], Tree], shape_or_noise: Union[Tree, Dict[str, Sequence[int]], Sequence[int]], *,
           diffusion, method: str = "dpm_solver", steps: Optional[int] = None, eta: float = 0.0,
           order: Optional[int] = None, skip_type: Optional[str] = None, solver_method: Optional[str] = None,
           solver_type: Optional[str] = None, denoise_to_zero: Optional[bool] = None,
           thresholding: Optional[bool] = None, clip_denoised: Optional[bool] = None,
           condition: Optional[Dict[str, torch.Tensor]] = None, classifier_scale: float = 0.0,
           generator: Optional[torch.Generator] = None, progress: bool = True,
           callback: Optional[Callable[[dict], None]] = None, device=None, condition_mode: str = "replacement",
           guidance_scale: float = 1.0, clip_bounds: Optional[Dict[str, float]] = None,
           joint_guidance_scale: float = 1.0) -> Tree:
    """Generate samples (an AV pair, or a tensor) with any sampler.

    Args:
        model_fn: ``model_fn(x_t, t) -> tree like x_t``; ``t`` is ``[N]`` in the ORIGINAL timestep numbering:
            int64 for ddpm / ddim, float32 for the DPM-Solvers (fractional between the integer timesteps;
            ``t * 1000 / T`` when ``rescale_timesteps``).
        shape_or_noise: the starting noise (dict of tensors / tensor) or shapes
            ``{"video": (N, F, C, H, W), "audio": (N, C, L)}`` (a tuple for a bare tensor).
        diffusion: from :func:`create_gaussian_diffusion` (possibly respaced).
        method: ``"ddpm"``, ``"ddim"``, ``"dpm_solver"`` or ``"dpm_solver++"``.
        steps: ddpm/ddim: evenly respace the diffusion to this many steps (None: all its steps);
            DPM-Solver: model evaluations (default 20; ignored by the adaptive solver).
        eta: DDIM noise level.
        order / skip_type / solver_method / solver_type / denoise_to_zero: DPM-Solver settings; None takes
            MM-Diffusion's (:data:`SAMPLER_DEFAULTS`): ``dpm_solver`` 3 / logSNR / singlestep, ``dpm_solver++``
            2 / logSNR / adaptive; both ``solver_type="dpm_solver"``, no final denoising step.
        thresholding: dynamic thresholding of predicted x0; clip_denoised: clamp predicted x0 to [-1, 1].
            None: ddpm / ddim clip; ``dpm_solver`` does neither; ``dpm_solver++`` thresholds.
        condition: known modalities for zero-shot conditional generation, e.g. ``{"audio": a}``
            (audio-to-video); returned unchanged in the result. classifier_scale: gradient-guidance weight.
        condition_mode: ``"replacement"`` (the paper's zero-shot method) or ``"clean"`` (the known modality given
            clean at its own t = 0, for models trained with per-modality timesteps), with classifier-free
            guidance ``guidance_scale`` across modalities (1 = none). clip_bounds: per-modality clamp bounds
            ``{"audio": 2.5}`` for data diffused at a scale (``--data_scale``).
        joint_guidance_scale: unconditional AV sampling only: the audio guided by the video with this scale
            (:class:`~.true_conditioning.JointGuidanceDenoiser`; models trained with per-modality timesteps;
            1 = off, one model call per step).
        generator: a ``torch.Generator`` (on ``device``) for all the randomness.
        progress: tqdm bar; callback: per-step ``callback({"i", "t", "x", "denoised"})``.
        device: where to draw noise from shapes (default: the generator's device, else CPU).
    Returns: the sample, same structure as the noise; every value float.
    """
    method = method.replace("-", "_").lower()
    if method not in METHODS:
        raise ValueError(f"unknown sampling method {method!r}; valid: {', '.join(METHODS)}")
    x = _make_start(shape_or_noise, device, generator)
    if condition is not None and not is_dict(x):
        raise ValueError("condition needs an AV pair (dict) sample; a bare tensor has no modality to condition on")
    given = dict(order=order, skip_type=skip_type, solver_method=solver_method, solver_type=solver_type,
                 denoise_to_zero=denoise_to_zero, clip_denoised=clip_denoised, thresholding=thresholding)
    settings = dict(SAMPLER_DEFAULTS.get(method, _CLASSIC_DEFAULTS))
    settings.update({k: v for k, v in given.items() if v is not None})
    common = dict(clip_denoised=bool(settings.pop("clip_denoised")), thresholding=bool(settings.pop("thresholding")),
                  condition=condition, classifier_scale=classifier_scale, generator=generator, callback=callback,
                  progress=progress)
    _check_condition_mode(condition_mode, guidance_scale)
    joint_guidance_scale = float(joint_guidance_scale)
    if joint_guidance_scale != 1.0 and (condition is not None or not is_dict(x)):
        raise ValueError("joint_guidance_scale applies to unconditional AV-pair sampling; with a known modality use "
                         "condition_mode 'clean' and guidance_scale")
    if method in ("ddpm", "ddim"):
        unused = sorted(k for k in _SOLVER_ONLY if given[k] is not None)
        if unused:
            raise ValueError(f"{unused} only apply to the DPM-Solver methods, not {method!r}")
        diffusion = _respaced(diffusion, method, steps)  # before _wrap: a Denoiser works on the respaced indices
        model_fn = _wrap(model_fn, diffusion, common, condition_mode, guidance_scale, clip_bounds,
                         joint_guidance_scale)
        return _sample_classic(model_fn, x, diffusion, method, eta, common)
    model_fn = _wrap(model_fn, diffusion, common, condition_mode, guidance_scale, clip_bounds, joint_guidance_scale)
    return sample_dpm_solver(
        model_fn, x, diffusion=diffusion, algorithm=method, steps=settings["steps"] if steps is None else steps,
        order=settings["order"], skip_type=settings["skip_type"], method=settings["solver_method"],
        solver_type=settings["solver_type"], denoise_to_zero=bool(settings["denoise_to_zero"]), **common)


def _check_condition_mode(condition_mode: str, guidance_scale: float) -> None:
    if condition_mode not in CONDITION_MODES:
        raise ValueError(f"unknown condition_mode {condition_mode!r}; valid: {', '.join(CONDITION_MODES)}")
    if condition_mode == "replacement" and guidance_scale != 1.0:
        raise ValueError("guidance_scale applies to condition_mode 'clean' (a model trained with per-modality "
                         "timesteps); the replacement method uses classifier_scale")


def _wrap(model_fn, diffusion, common: Dict[str, Any], condition_mode: str, guidance_scale: float,
          clip_bounds: Optional[Dict[str, float]], joint_guidance_scale: float = 1.0):
    """``model_fn`` itself for the default options; otherwise the :class:`Denoiser` every sampler will use
    (samplers take a ready Denoiser as is): clean conditioning with guidance, joint guidance in unconditional
    sampling, or per-modality clip bounds."""
    if condition_mode == "replacement" and not clip_bounds and joint_guidance_scale == 1.0:
        return model_fn
    kwargs = dict(condition=common["condition"], clip_denoised=common["clip_denoised"],
                  thresholding=common["thresholding"], generator=common["generator"], clip_bounds=clip_bounds)
    if joint_guidance_scale != 1.0:
        return JointGuidanceDenoiser(model_fn, diffusion, guidance_scale=joint_guidance_scale, **kwargs)
    if condition_mode == "clean":
        if common["classifier_scale"]:
            raise ValueError("classifier_scale belongs to condition_mode 'replacement'; use guidance_scale")
        return CleanConditionDenoiser(model_fn, diffusion, guidance_scale=guidance_scale, **kwargs)
    return Denoiser(model_fn, diffusion, classifier_scale=common["classifier_scale"], **kwargs)


def _respaced(diffusion, method: str, steps: Optional[int]):
    """``diffusion`` evenly respaced to ``steps`` for DDPM / DDIM (None or all its steps: itself)."""
    if steps is None:
        return diffusion
    if not isinstance(steps, int) or not 1 <= steps <= diffusion.num_timesteps:
        raise ValueError(f"steps must be an int in [1, {diffusion.num_timesteps}] for {method}, got {steps!r}")
    return diffusion if steps == diffusion.num_timesteps else diffusion.respace(str(steps))


def _sample_classic(model_fn, x: Tree, diffusion, method: str, eta: float, common) -> Tree:
    """DDPM or DDIM over every step of ``diffusion``."""
    if method == "ddpm":
        if eta != 0.0:
            raise ValueError("eta only applies to method 'ddim'")
        return sample_ddpm(model_fn, x, diffusion=diffusion, **common)
    return sample_ddim(model_fn, x, diffusion=diffusion, eta=eta, **common)
