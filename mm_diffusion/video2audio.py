"""``python -m mm_diffusion.video2audio``: zero-shot video-to-audio generation.

The video of each reference clip (``--ref_path``) is kept; the audio is generated. Flags: ``--help``; guide:
docs/sampling.md; the job: :func:`mm_diffusion.sampling.runner.video2audio`. Called by ``ssh_scripts/video2audio_sample.sh``.
"""
from __future__ import annotations

import sys

from .cli.errors import run_cli
from .sampling.runner import video2audio as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(run_cli(main))
