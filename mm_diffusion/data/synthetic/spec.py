"""The one parser of the ``synthetic[:N[:SEED]]`` data spec accepted by ``--data_dir`` and ``--ref_path``."""
from __future__ import annotations

import os
from typing import Optional, Tuple

__all__ = ["is_synthetic_spec", "parse_synthetic_spec"]


def is_synthetic_spec(text) -> bool:
    """True for ``synthetic`` and ``synthetic:...`` (anything else is a folder path)."""
    text = os.fspath(text) if text is not None else ""
    return text == "synthetic" or text.startswith("synthetic:")


def parse_synthetic_spec(text, default_num: Optional[int] = 1024, default_seed: Optional[int] = None,
                         flag: str = "--data_dir") -> Optional[Tuple[int, Optional[int]]]:
    """``"synthetic"`` -> ``(default_num, default_seed)``, ``"synthetic:N"`` -> ``(N, default_seed)``,
    ``"synthetic:N:SEED"`` -> ``(N, SEED)``; ``None`` when ``text`` is not a synthetic spec.

    ``ValueError`` naming ``flag`` for a malformed spec (N < 1, not integers, more parts, or a bare
    ``synthetic`` where ``default_num`` is None)."""
    if not is_synthetic_spec(text):
        return None
    parts = os.fspath(text).split(":")
    try:
        if len(parts) > 3 or (len(parts) == 1 and default_num is None):
            raise ValueError
        num = int(parts[1]) if len(parts) > 1 else int(default_num)
        seed = int(parts[2]) if len(parts) > 2 else default_seed
        if num < 1:
            raise ValueError
    except ValueError:
        raise ValueError(f"{flag} {text!r}: use synthetic:N or synthetic:N:SEED with N >= 1") from None
    return num, seed
