"""``python -m mm_diffusion.sample``: unconditional audio-video generation with optional super-resolution.

Flags: ``python -m mm_diffusion.sample --help``; guide: docs/sampling.md; the job: :func:`mm_diffusion.sampling.runner.sample`.
Called by ``ssh_scripts/multimodal_sample_sr.sh``.
"""
from __future__ import annotations

import sys

from .cli.errors import run_cli
from .sampling.runner import sample as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(run_cli(main))
