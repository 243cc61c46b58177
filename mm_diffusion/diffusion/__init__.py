"""Gaussian diffusion over an AV pair and its samplers.

``from mm_diffusion.diffusion import create_gaussian_diffusion, sample, create_named_schedule_sampler``
"""
from .factory import create_gaussian_diffusion, diffusion_defaults
from .gaussian_diffusion import GaussianDiffusion, LossType, ModelMeanType, ModelVarType, Prediction
from .respace import SpacedDiffusion, space_timesteps
from .samplers import (
    METHODS,
    dpm_solver_timesteps,
    sample,
    sample_ddim,
    sample_ddpm,
    sample_dpm_solver,
)
from .schedules import get_named_beta_schedule
from .timestep_sampler import (
    LossSecondMomentResampler,
    ScheduleSampler,
    UniformSampler,
    create_named_schedule_sampler,
)
from .tree import channel_dim, tree_map

__all__ = [
    "create_gaussian_diffusion", "diffusion_defaults", "sample", "create_named_schedule_sampler",
    "GaussianDiffusion", "SpacedDiffusion", "ModelMeanType", "ModelVarType", "LossType", "Prediction",
    "space_timesteps", "get_named_beta_schedule",
    "ScheduleSampler", "UniformSampler", "LossSecondMomentResampler",
    "sample_ddpm", "sample_ddim", "sample_dpm_solver", "dpm_solver_timesteps", "METHODS",
    "channel_dim", "tree_map",
]
