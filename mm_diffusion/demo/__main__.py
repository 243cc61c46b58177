"""``python -m mm_diffusion.demo``: the one-command demo (see ``mm_diffusion.demo.run`` and docs/demo.md)."""
from __future__ import annotations

import sys

from .run import main

if __name__ == "__main__":
    sys.exit(main())
