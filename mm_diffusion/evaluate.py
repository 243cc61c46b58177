"""``python -m mm_diffusion.evaluate``: FVD, KVD and FAD between a folder of reference videos and a folder of
generated ones.

Flags: ``python -m mm_diffusion.evaluate --help``; guide: docs/evaluation.md; the job:
:func:`mm_diffusion.evaluation.job.evaluate`. Called by ``ssh_scripts/multimodal_eval.sh``.
"""
from __future__ import annotations

import sys

from .cli.errors import run_cli
from .evaluation.job import evaluate as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(run_cli(main))
