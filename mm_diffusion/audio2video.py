"""``python -m mm_diffusion.audio2video``: zero-shot audio-to-video generation (with optional super-resolution).

The audio of each reference clip (``--ref_path``) is kept; the video is generated. Flags: ``--help``; guide:
docs/sampling.md; the job: :func:`mm_diffusion.sampling.runner.audio2video`. Called by ``ssh_scripts/audio2video_sample_sr.sh``.
"""
from __future__ import annotations

import sys

from .cli.errors import run_cli
from .sampling.runner import audio2video as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(run_cli(main))
