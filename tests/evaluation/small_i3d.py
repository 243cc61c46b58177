"""Run the evaluation job with I3D fed 32 x 32 inputs instead of 224 x 224 (fast, numbers not comparable).

In-process: ``with small_i3d(): job.main(argv)``. In a subprocess (torchrun, mpiexec, the eval script):
``python -m tests.evaluation.small_i3d ARGS`` runs ``python -m mm_diffusion.evaluate ARGS`` with the same patch;
:func:`python_shim` writes a ``python`` on a folder for ``PATH`` that redirects ``-m mm_diffusion.evaluate`` here.
"""
import contextlib
import functools
import os
import stat
import sys

SIDE = 32


@contextlib.contextmanager
def small_i3d(side: int = SIDE):
    """Patch ``load_video_encoder`` (as the job looks it up) to build encoders with ``resize_to=side``."""
    from mm_diffusion.evaluation import encoders

    original = encoders.load_video_encoder
    encoders.load_video_encoder = functools.partial(original, resize_to=side)
    try:
        yield
    finally:
        encoders.load_video_encoder = original


def python_shim(folder) -> str:
    """Write ``folder/python``: runs this module for ``-m mm_diffusion.evaluate``, the real interpreter otherwise."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(str(folder), "python")
    with open(path, "w") as handle:
        handle.write(f"""#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "mm_diffusion.evaluate" ]; then shift 2; exec {sys.executable} -m {__name__} "$@"; fi
exec {sys.executable} "$@"
""")
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(folder)


if __name__ == "__main__":
    from mm_diffusion.evaluation.job import main

    with small_i3d():
        sys.exit(main())
