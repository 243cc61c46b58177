"""``python -m mm_diffusion.train``: train the coupled audio-video U-Net (default: on the synthetic dataset).

Flags: ``python -m mm_diffusion.train --help``; guide: docs/training.md; the job: :func:`mm_diffusion.training.jobs.train`.
Called by ``ssh_scripts/multimodal_train.sh``.
"""
from __future__ import annotations

import sys

from .cli.errors import run_cli
from .training.jobs import train as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(run_cli(main))
