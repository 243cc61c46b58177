"""The one JSON writer of the jobs: run configs, metrics, demo results, model cards' metadata.

Every file is written through :func:`mm_diffusion.data.media.atomic_path` (a temporary name in the same
folder, then ``os.replace``), so a reader never sees half a file.
"""
from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from ..data.media import atomic_path

__all__ = ["jsonable", "write_json"]


def jsonable(obj: Any, nonfinite_as_none: bool = False) -> Any:
    """``obj`` with every value JSON can hold: mappings (keys as str), lists, numbers, strings, None; 0-d arrays /
    tensors as Python numbers, dataclasses as dicts, anything else as ``str``. ``nonfinite_as_none``: NaN / inf -> None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v, nonfinite_as_none) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v, nonfinite_as_none) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj), nonfinite_as_none)
    if isinstance(obj, float) and nonfinite_as_none and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def write_json(path: str, obj: Any, indent: int = 2, sort_keys: bool = True, allow_nan: bool = True,
               newline: bool = False) -> str:
    """Write ``obj`` as JSON to ``path`` atomically (``newline``: end the file with one); returns ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(obj, handle, indent=indent, sort_keys=sort_keys, allow_nan=allow_nan)
            if newline:
                handle.write("\n")
    return path
