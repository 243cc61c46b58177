"""Research probes of a trained coupled U-Net (fast signals, no sampling): ``python -m mm_diffusion.probe``."""
from .coupling import DEFAULT_TIMESTEPS, coupling_probe, swap_test

__all__ = ["DEFAULT_TIMESTEPS", "coupling_probe", "swap_test"]
