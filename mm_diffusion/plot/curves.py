"""Training curves from a run's ``progress.csv``: loss, video/audio MSE, gradient norm and learning rate
against the optimisation step, as one PNG."""
from __future__ import annotations

import csv
import math
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from ._io import plt, save_figure

REQUIRED_COLUMNS = ("step", "loss")
OPTIONAL_COLUMNS = ("video_mse", "audio_mse", "grad_norm", "lr")
DEFAULT_SIZE = (1200, 900)  # pixels (width, height)
DEFAULT_DPI = 100


def resolve_progress_csv(path: str) -> str:
    """``path`` itself if it is a file, else ``path/progress.csv``; FileNotFoundError if neither exists."""
    if os.path.isdir(path):
        candidate = os.path.join(path, "progress.csv")
        if not os.path.isfile(candidate):
            raise FileNotFoundError(
                f"no progress.csv in {path!r}; pass a training OUTPUT directory (the one given as --output_dir "
                "to training) or the csv file itself"
            )
        return candidate
    if os.path.isfile(path):
        return path
    raise FileNotFoundError(f"{path!r} does not exist; pass a training OUTPUT directory or a progress.csv file")


def read_progress(path: str) -> Dict[str, np.ndarray]:
    """Numeric columns of a ``progress.csv`` as float arrays ``[T]`` keyed by column name, rows in file order.

    ``step`` and ``loss`` are required; empty cells become NaN. Raises ValueError for an empty file, a header
    without the required columns, no data rows, a row of the wrong length or a non-numeric cell (naming the
    line and column)."""
    csv_path = resolve_progress_csv(path)
    with open(csv_path, newline="") as handle:
        rows = list(csv.reader(handle))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise ValueError(f"{csv_path} is empty; expected a header line with at least {list(REQUIRED_COLUMNS)}")
    header = [name.strip() for name in rows[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{csv_path}: header {header} lacks required column(s) {missing}")
    if len(rows) == 1:
        raise ValueError(f"{csv_path} has a header but no data rows (has the run logged a step yet?)")
    columns: Dict[str, List[float]] = {name: [] for name in header}
    for line_no, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ValueError(f"{csv_path} line {line_no}: {len(row)} fields, expected {len(header)} ({header})")
        for name, cell in zip(header, row):
            cell = cell.strip()
            try:
                value = float(cell) if cell else math.nan
            except ValueError:
                raise ValueError(
                    f"{csv_path} line {line_no}, column {name!r}: {cell!r} is not a number"
                ) from None
            columns[name].append(value)
    data = {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()}
    for name in REQUIRED_COLUMNS:
        if not np.isfinite(data[name]).any():
            raise ValueError(f"{csv_path}: column {name!r} has no finite values")
    return data


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over ``window`` points ``[T] -> [T]`` (NaNs ignored; window 1 = identity)."""
    if window < 1:
        raise ValueError(f"smoothing window must be >= 1, got {window}")
    values = np.asarray(values, dtype=np.float64)
    if window == 1 or values.size == 0:
        return values.copy()
    finite = np.isfinite(values)
    sums = np.cumsum(np.where(finite, values, 0.0))
    counts = np.cumsum(finite.astype(np.float64))
    lagged_sums = np.concatenate([np.zeros(window), sums[:-window]])[: values.size]
    lagged_counts = np.concatenate([np.zeros(window), counts[:-window]])[: values.size]
    n = counts - lagged_counts
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (sums - lagged_sums) / n, np.nan)


def _positive(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return finite.size > 0 and bool((finite > 0).all())


def _draw_panel(ax, step: np.ndarray, curves, title: str, log_scale: bool, smoothed: bool) -> None:
    """One panel: ``curves`` = ``[(label, raw values or None, smoothed values or None)]``; with ``smoothed`` the
    smoothed curve is drawn over a faint raw one. A panel with nothing finite to draw says so."""
    drawn = []
    for label, raw, smooth_values in curves:
        if raw is None or not np.isfinite(raw).any():
            continue
        if smoothed:
            line = ax.plot(step, smooth_values, label=label, linewidth=1.2)[0]
            ax.plot(step, raw, color=line.get_color(), linewidth=0.6, alpha=0.25)
        else:
            ax.plot(step, raw, label=label, linewidth=1.2)
        drawn.append(raw)
    if not drawn:
        ax.text(0.5, 0.5, "not in progress.csv", ha="center", va="center", transform=ax.transAxes)
    elif log_scale and all(_positive(v) for v in drawn):
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.3)
    if len(drawn) > 1:
        ax.legend(fontsize=8)


def plot_training_curves(
    path: str,
    out: Optional[str] = None,
    smooth_window: int = 1,
    size: Sequence[int] = DEFAULT_SIZE,
    dpi: int = DEFAULT_DPI,
    title: Optional[str] = None,
) -> str:
    """Draw the curves of a run and write them as a PNG of exactly ``size`` pixels (width, height).

    ``path``: a training OUTPUT directory or its ``progress.csv``. ``out`` defaults to
    ``<OUTPUT>/training_curves.png``. Panels: loss (log scale), video and audio MSE (log scale), gradient
    norm, learning rate; a panel whose column is absent says so. With ``smooth_window > 1`` the smoothed
    curves are drawn over faint raw ones (the learning rate is never smoothed). Returns the written path."""
    if len(size) != 2 or min(size) < 100:
        raise ValueError(f"size must be (width, height) in pixels, each >= 100, got {tuple(size)}")
    data = read_progress(path)
    csv_path = resolve_progress_csv(path)
    if out is None:
        out = os.path.join(os.path.dirname(os.path.abspath(csv_path)), "training_curves.png")
    order = np.argsort(data["step"], kind="stable")
    step = data["step"][order]

    def series(name, smoothed=True):
        if name not in data:
            return None
        values = data[name][order]
        return smooth(values, smooth_window) if smoothed else values

    fig, axes = plt.subplots(2, 2, figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    suffix = f" (moving average over {smooth_window} rows)" if smooth_window > 1 else ""
    fig.suptitle((title or f"training curves: {csv_path}") + suffix, fontsize=9)
    per_modality = [(c, c) for c in ("video_mse", "audio_mse") if c in data]
    mse_curves = per_modality or [("mse", "mse")]  # e.g. a super-resolution run logs only mse
    panels = [
        (axes[0, 0], "loss", [("loss", "loss")], True, True),
        (axes[0, 1], "MSE per modality", mse_curves, True, True),
        (axes[1, 0], "gradient norm (before clipping)", [("grad_norm", "grad_norm")], False, True),
        (axes[1, 1], "learning rate", [("lr", "lr")], False, False),  # a schedule: never smoothed
    ]
    for ax, panel_title, curves, log_scale, smoothed in panels:
        _draw_panel(ax, step, [(label, series(column, smoothed=False), series(column)) for column, label in curves],
                    panel_title, log_scale, smoothed and smooth_window > 1)
    fig.subplots_adjust(left=0.08, right=0.97, top=0.9, bottom=0.08, hspace=0.35, wspace=0.22)
    return save_figure(fig, out, dpi)
