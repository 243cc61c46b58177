"""``python -m mm_diffusion.demo``: the one-command demo (the job: :func:`mm_diffusion.demo.run.demo`; docs/demo.md)."""
from __future__ import annotations

import sys

from ..cli.errors import run_cli
from .run import demo as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(run_cli(main))
