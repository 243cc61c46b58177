"""``python -m mm_diffusion.sample``: unconditional audio-video generation with optional super-resolution.

Flags: ``python -m mm_diffusion.sample --help``; guide: docs/sampling.md. Called by ``ssh_scripts/multimodal_sample_sr.sh``.
"""
from __future__ import annotations

from typing import List, Optional

from .sampling.runner import cli
from .sampling.runner import main as _main


def main(argv: Optional[List[str]] = None) -> dict:
    """Run the job with ``argv`` (default: the command line); returns the run summary."""
    return _main("sample", argv)


if __name__ == "__main__":
    cli("sample")
