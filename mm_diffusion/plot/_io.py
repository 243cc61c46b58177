"""Shared figure output: the Agg backend and atomic PNG writes."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")  # no display needed; must be chosen before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402

from ..data.media import atomic_path  # noqa: E402

__all__ = ["plt", "save_figure"]


def save_figure(fig, out_path: str, dpi: int) -> str:
    """Write ``fig`` as a PNG to ``out_path`` atomically (temporary file in the same folder, then
    ``os.replace``) and close it. The pixel size is exactly ``figsize * dpi`` (no tight bounding box).
    Returns the absolute path written."""
    out_path = os.path.abspath(out_path)
    try:
        with atomic_path(out_path) as tmp:
            with open(tmp, "wb") as handle:
                fig.savefig(handle, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return out_path
