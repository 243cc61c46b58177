"""``python -m mm_diffusion.audio2video``: zero-shot audio-to-video generation (with optional super-resolution).

The audio of each reference clip (``--ref_path``) is kept; the video is generated. Flags: ``--help``; guide:
docs/sampling.md. Called by ``ssh_scripts/audio2video_sample_sr.sh``.
"""
from __future__ import annotations

from typing import List, Optional

from .sampling.runner import cli
from .sampling.runner import main as _main


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the job with ``argv`` (default: the command line); returns the run summary."""
    return _main("audio2video", argv)


if __name__ == "__main__":
    cli("audio2video")
