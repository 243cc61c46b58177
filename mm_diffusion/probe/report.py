"""Text table and JSON of coupling-probe rows (see :mod:`.coupling`)."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List

__all__ = ["format_rows", "write_json"]

COLUMNS = (("direction", "<12", ""), ("t", ">4", "d"), ("x0_mse_true", ">11", ".5f"), ("x0_mse_swap", ">11", ".5f"),
           ("x0_gain", ">8", ".3f"), ("eps_mse_true", ">12", ".5f"), ("eps_mse_swap", ">12", ".5f"),
           ("rel_change", ">10", ".2e"))


def format_rows(rows: List[Dict[str, Any]]) -> str:
    """A fixed-width table, one line per row: direction, t, x0 MSE true / swapped, x0 gain (swap/true - 1),
    eps MSE true / swapped, relative change of the x0 prediction."""
    lines = ["  ".join(f"{name:{width}}" for name, width, _ in COLUMNS)]
    for row in rows:
        lines.append("  ".join(f"{row[name]:{width}{fmt}}" for name, width, fmt in COLUMNS))
    return "\n".join(lines)


def write_json(path: str, payload: Dict[str, Any]) -> str:
    """Write ``payload`` (the probe's settings and ``rows``) as indented JSON; returns the path."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=1, sort_keys=True)
        fh.write("\n")
    return path
