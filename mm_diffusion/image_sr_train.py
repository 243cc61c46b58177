"""``python -m mm_diffusion.image_sr_train``: train the 64 -> 256 frame super-resolution U-Net.

Flags: ``python -m mm_diffusion.image_sr_train --help``; guide: docs/training.md; the job:
:func:`mm_diffusion.training.jobs.train_sr`. Called by ``ssh_scripts/image_sr_train.sh``.
"""
from __future__ import annotations

import sys

from .cli.errors import run_cli
from .training.jobs import train_sr as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(run_cli(main))
