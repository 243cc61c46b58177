"""How sure the demo's gap-closed ratios are: bootstrap standard errors over the generated clips.

A gap ratio from 32 clips moves by 1 / 32 of the figure per clip, and a clip's colour-pitch agreement is a coin
toss between right and wrong, so the ratio carries a standard error near 0.1 at the demo's counts. This module
resamples the generated clips of a task with replacement (the held-out reference clips, hence ``R`` and ``S``,
stay fixed: they do not change with the sampling seed), scores each resample with the analyser and returns the
standard deviation of the ratios. Deterministic for a given ``seed``.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

from ..data.synthetic import score_analyses
from .report import GAP_FIGURES, gap_ratio

__all__ = ["gap_standard_errors", "DEFAULT_RESAMPLES"]

DEFAULT_RESAMPLES = 200


def gap_standard_errors(task_analyses: Dict[str, Sequence[dict]], rows: Dict[str, Dict[str, float]],
                        resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Dict[str, Dict[str, Optional[float]]]:
    """``{task: {figure: standard error}}`` of the gap ratios of AV-sync F1 and colour-pitch agreement.

    ``task_analyses``: per generated task, the per-clip ``analyse_pair`` outputs; ``rows``: the demo's rows
    (``real`` and ``shuffled`` give ``R`` and ``S``). A figure whose ratio is undefined (``R == S``) or a task with
    fewer than 2 clips gets None."""
    if int(resamples) < 2:
        raise ValueError(f"need at least 2 bootstrap resamples, got {resamples}")
    rng = np.random.default_rng(int(seed))
    out: Dict[str, Dict[str, Optional[float]]] = {}
    for task, analyses in task_analyses.items():
        n = len(analyses)
        if n < 2:
            out[task] = {f: None for f in GAP_FIGURES}
            continue
        draws: Dict[str, list] = {f: [] for f in GAP_FIGURES}
        for _ in range(int(resamples)):
            picked = [analyses[i] for i in rng.integers(0, n, size=n)]
            scores = score_analyses(picked)
            for figure in GAP_FIGURES:
                draws[figure].append(gap_ratio(scores[figure], rows["real"][figure], rows["shuffled"][figure]))
        out[task] = {f: None if any(v is None for v in draws[f]) else float(np.std(draws[f], ddof=1))
                     for f in GAP_FIGURES}
    return out
