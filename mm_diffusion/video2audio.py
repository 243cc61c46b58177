"""``python -m mm_diffusion.video2audio``: zero-shot video-to-audio generation.

The video of each reference clip (``--ref_path``) is kept; the audio is generated. Flags: ``--help``; guide:
docs/sampling.md. Called by ``ssh_scripts/video2audio_sample.sh``.
"""
from __future__ import annotations

from typing import List, Optional

from .sampling.runner import cli
from .sampling.runner import main as _main


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the job with ``argv`` (default: the command line); returns the run summary."""
    return _main("video2audio", argv)


if __name__ == "__main__":
    cli("video2audio")
