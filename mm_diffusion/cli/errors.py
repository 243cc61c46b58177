"""The one command-line wrapper of every job: bad input ends in one ``error: ...`` line and exit status 2.

Every ``python -m mm_diffusion.<job>`` file ends with ``sys.exit(run_cli(main))``.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, Optional, Sequence

__all__ = ["USAGE_ERRORS", "run_cli"]

# What a user can cause with flags or paths: reported in one line, never as a traceback.
USAGE_ERRORS = (ValueError, FileNotFoundError, PermissionError)


def run_cli(job: Callable[[Optional[Sequence[str]]], Any], argv: Optional[Sequence[str]] = None) -> int:
    """Run ``job(argv)``: 0 when it returns, 2 (after printing ``error: <message>`` to stderr) when it raises
    one of :data:`USAGE_ERRORS`. Any process group a job left behind is torn down either way."""
    from ..runs import dist

    try:
        job(argv)
    except USAGE_ERRORS as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        dist.cleanup()
    return 0
