"""The demo's verdict: analyser rows per task, gap-closed ratios and the quality bars, as one table.

A *row* is a dict of three analyser figures (``ball_detected_rate``, ``av_sync_f1`` exact frame,
``colour_pitch_agreement``). For a figure, with ``R`` its value on real clips and ``S`` on real clips with
shuffled audio (chance), a generated value ``G`` closes the fraction ``(G - S) / (R - S)`` of the gap. When
``R == S`` the ratio is undefined (``None``, printed ``n/a``) and the bar counts as failed: the reference
clips cannot tell synchrony from chance, so nothing was shown.

Bars (the project's targets; not to be lowered here): unconditional ball-detected rate >= 0.9; for every generated task,
AV-sync F1 and colour-pitch agreement each close >= 0.6 of the gap.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional

__all__ = ["FIGURES", "TASKS", "GAP_BAR", "BALL_BAR", "gap_ratio", "gap_ratios", "check_bars", "reference_rows",
           "rows_from_scores", "all_passed", "format_table", "narrow_passes", "GAP_FIGURES"]

FIGURES = ("ball_detected_rate", "av_sync_f1", "colour_pitch_agreement")
GAP_FIGURES = ("av_sync_f1", "colour_pitch_agreement")
TASKS = ("unconditional", "audio2video", "video2audio")
FIGURE_LABELS = {"av_sync_f1": "F1", "colour_pitch_agreement": "col-pitch"}
TASK_LABELS = {"unconditional": "unconditional", "audio2video": "audio-to-video", "video2audio": "video-to-audio",
               "real": "real", "shuffled": "shuffled"}
GAP_BAR = 0.6
BALL_BAR = 0.9
_EPS = 1e-12


def gap_ratio(generated: float, real: float, shuffled: float) -> Optional[float]:
    """``(G - S) / (R - S)``, or None when ``R == S`` (or any value is missing / not finite)."""
    values = (generated, real, shuffled)
    if any(v is None or not math.isfinite(float(v)) for v in values):
        return None
    denom = float(real) - float(shuffled)
    if abs(denom) < _EPS:
        return None
    return (float(generated) - float(shuffled)) / denom


def reference_rows(real_scores: Dict[str, Optional[float]]) -> Dict[str, Dict[str, float]]:
    """The ``real`` and ``shuffled`` rows from one ``synthetic.score`` result on real clips (>= 2 clips).

    The shuffled row keeps the real ball-detected rate (shuffling audio leaves the frames unchanged)."""
    if real_scores.get("shuffled_av_sync_f1") is None:
        raise ValueError("the real clips' scores have no shuffled figures: score at least 2 real clips")
    real = {k: float(real_scores[k]) for k in FIGURES}
    shuffled = {"ball_detected_rate": real["ball_detected_rate"],
                "av_sync_f1": float(real_scores["shuffled_av_sync_f1"]),
                "colour_pitch_agreement": float(real_scores["shuffled_colour_pitch_agreement"])}
    return {"real": real, "shuffled": shuffled}


def gap_ratios(rows: Dict[str, Dict[str, float]]) -> Dict[str, Dict[str, Optional[float]]]:
    """``{task: {figure: ratio}}`` for every generated task present in ``rows`` (which holds real and shuffled)."""
    out: Dict[str, Dict[str, Optional[float]]] = {}
    for task in TASKS:
        if task not in rows:
            continue
        out[task] = {f: gap_ratio(rows[task][f], rows["real"][f], rows["shuffled"][f]) for f in GAP_FIGURES}
    return out


def check_bars(rows: Dict[str, Dict[str, float]], gaps: Dict[str, Dict[str, Optional[float]]]
               ) -> Dict[str, Dict[str, dict]]:
    """``{task: {bar name: {"value", "threshold", "passed"}}}``; an undefined ratio fails its bar."""
    bars: Dict[str, Dict[str, dict]] = {}
    for task, ratios in gaps.items():
        entry: Dict[str, dict] = {}
        if task == "unconditional":
            value = rows[task]["ball_detected_rate"]
            entry["ball_detected_rate"] = {"value": value, "threshold": BALL_BAR, "passed": bool(value >= BALL_BAR)}
        for figure in GAP_FIGURES:
            value = ratios[figure]
            entry[f"gap_{figure}"] = {"value": value, "threshold": GAP_BAR,
                                      "passed": bool(value is not None and value >= GAP_BAR)}
        bars[task] = entry
    return bars


def _cell(value: Optional[float], width: int) -> str:
    return ("n/a" if value is None else f"{value:.3f}").rjust(width)


def _mark(bar: Optional[dict]) -> str:
    if bar is None:
        return "    "
    return "pass" if bar["passed"] else "FAIL"


def _gap_cell(value: Optional[float], error: Optional[float], width: int) -> str:
    if error is None:
        return _cell(value, width)
    return (_cell(value, 0) + f" +-{error:.2f}").rjust(width)


def narrow_passes(bars: Dict[str, Dict[str, dict]], errors: Dict[str, Dict[str, Optional[float]]]) -> List[str]:
    """``"<task> <figure> (value +- error)"`` for every passed gap bar whose value lies within one standard
    error of the threshold: a pass that another sampling seed may well turn into a miss."""
    out = []
    for task, entry in bars.items():
        for figure in GAP_FIGURES:
            bar, error = entry.get(f"gap_{figure}"), errors.get(task, {}).get(figure)
            if bar and bar["passed"] and error is not None and bar["value"] - error < bar["threshold"]:
                out.append(f"{TASK_LABELS[task]} {FIGURE_LABELS[figure]} ({bar['value']:.3f} +- {error:.2f})")
    return out


def format_table(rows: Dict[str, Dict[str, float]], gaps: Dict[str, Dict[str, Optional[float]]],
                 bars: Dict[str, Dict[str, dict]], counts: Optional[Dict[str, int]] = None,
                 errors: Optional[Dict[str, Dict[str, Optional[float]]]] = None) -> str:
    """One plain-text table: a row per task (generated ones, then real and shuffled), the three analyser
    figures, the gap-closed ratios of AV-sync F1 and colour-pitch agreement with pass / FAIL against the bars
    (with ``errors``, ``{task: {figure: standard error}}``, each ratio followed by its standard error), and a
    last line with the overall verdict (with ``errors``, a line naming the passes within one error of a bar)."""
    width = 7 if errors is None else 13
    head = (f"{'task':<16}{'n':>4}  {'ball-det':>8}     {'F1 exact':>8}  {'col-pitch':>9}  "
            f"{'gap F1':>{width}}      {'gap col-pitch':>13}")
    lines: List[str] = [head, "-" * len(head)]
    for task in (*TASKS, "real", "shuffled"):
        if task not in rows:
            continue
        row, bar = rows[task], bars.get(task, {})
        n = "" if counts is None or task not in counts else str(counts[task])
        ball = _cell(row["ball_detected_rate"], 8) + " " + _mark(bar.get("ball_detected_rate"))
        line = (f"{TASK_LABELS[task]:<16}{n:>4}  {ball}  {_cell(row['av_sync_f1'], 8)}  "
                f"{_cell(row['colour_pitch_agreement'], 9)}")
        if task in gaps:
            err = (errors or {}).get(task, {})
            line += (f"  {_gap_cell(gaps[task]['av_sync_f1'], err.get('av_sync_f1'), width)} "
                     f"{_mark(bar.get('gap_av_sync_f1'))}"
                     f"  {_gap_cell(gaps[task]['colour_pitch_agreement'], err.get('colour_pitch_agreement'), 13)} "
                     f"{_mark(bar.get('gap_colour_pitch_agreement'))}")
        lines.append(line.rstrip())
    verdict = all_passed(bars)
    lines.append("-" * len(head))
    lines.append(f"bars: ball-detected >= {BALL_BAR} (unconditional); gap closed (G - S) / (R - S) >= {GAP_BAR} "
                 f"for F1 and colour-pitch per task -> {'ALL PASS' if verdict else 'NOT MET'}")
    if errors is not None:
        narrow = narrow_passes(bars, errors)
        lines.append("+-: bootstrap standard error over the generated clips (reference clips fixed); passes within "
                     f"one error of the bar: {', '.join(narrow) if narrow else 'none'}")
    return "\n".join(lines)


def all_passed(bars: Dict[str, Dict[str, dict]]) -> bool:
    """True when every bar passed (False for no bars)."""
    return bool(bars) and all(b["passed"] for entry in bars.values() for b in entry.values())


def rows_from_scores(task_scores: Dict[str, Dict[str, Optional[float]]], real_scores: Dict[str, Optional[float]]
                     ) -> Dict[str, Dict[str, float]]:
    """All table rows from ``synthetic.score`` results per generated task and on real clips."""
    rows = {task: {f: float(s[f]) for f in FIGURES} for task, s in task_scores.items()}
    rows.update(reference_rows(real_scores))
    return rows

