"""Samplers over an AV pair: DDPM, DDIM, DPM-Solver(++), with zero-shot conditioning."""
from .api import METHODS, SAMPLER_DEFAULTS, sample, solver_overrides
from .conditioning import check_condition, reconstruction_guidance, replace_known
from .continuous_time import ContinuousSchedule
from .ddim import ddim_step, sample_ddim
from .ddpm import sample_ddpm
from .denoiser import Denoiser, dynamic_threshold
from .dpm_solver import SKIP_TYPES, SOLVER_METHODS, SOLVER_TYPES, dpm_solver_timesteps, sample_dpm_solver, singlestep_orders

__all__ = [
    "sample", "METHODS", "SAMPLER_DEFAULTS", "solver_overrides",
    "sample_ddpm", "sample_ddim", "ddim_step", "sample_dpm_solver", "dpm_solver_timesteps", "singlestep_orders",
    "SKIP_TYPES", "SOLVER_METHODS", "SOLVER_TYPES", "ContinuousSchedule", "Denoiser", "dynamic_threshold",
    "check_condition", "replace_known", "reconstruction_guidance",
]
