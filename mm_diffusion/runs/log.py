"""Run logs of rank 0: ``log.txt`` (human-readable lines) and ``progress.csv`` (one row per log interval).

``progress.csv`` columns: ``step, samples, loss, <loss terms...>, grad_norm, lr, step_time, samples_per_sec,
nonfinite_skips`` (the loss terms depend on the diffusion: ``mse``, ``video_mse``, ``audio_mse``, and
``vb``... with a learned variance). When a run resumes from step S, rows with ``step > S`` (written
after that checkpoint by the interrupted run) are dropped, so the file describes one consistent history.
Every rewrite of the file is atomic.
"""
from __future__ import annotations

import csv
import io
import os
import time
from typing import Dict, List, Optional

from tqdm.auto import tqdm

from ..data.media import atomic_path

__all__ = ["RunLog", "ProgressCSV"]


class ProgressCSV:
    """``progress.csv`` writer; ``keep_until``: keep existing rows with ``step <= keep_until`` (None: start anew)."""

    def __init__(self, path: str, keep_until: Optional[int] = None):
        self.path = path
        self.fields: List[str] = []
        self.rows: List[Dict[str, str]] = []
        if keep_until is not None and os.path.exists(path):
            with open(path, newline="") as handle:
                reader = csv.DictReader(handle)
                self.fields = list(reader.fieldnames or [])
                for row in reader:
                    try:
                        if int(float(row.get("step", "0"))) <= keep_until:
                            self.rows.append(row)
                    except ValueError:
                        continue
        self._rewrite_needed = True

    def write(self, row: Dict[str, object]) -> None:
        text_row = {k: _fmt(v) for k, v in row.items()}
        new = [k for k in text_row if k not in self.fields]
        if new:
            self.fields.extend(new)
            self._rewrite_needed = True
        self.rows.append(text_row)
        if self._rewrite_needed:
            self._rewrite()
        else:
            with open(self.path, "a", newline="") as handle:
                csv.DictWriter(handle, fieldnames=self.fields, restval="").writerow(text_row)

    def _rewrite(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.fields, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        with atomic_path(self.path) as tmp:
            with open(tmp, "w", newline="") as handle:
                handle.write(buf.getvalue())
        self._rewrite_needed = False


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class RunLog:
    """The one run log of the jobs: ``log.txt`` + ``progress.csv`` + a tqdm bar, all active on the main process only.

    Training uses all three; the sampling jobs only the timestamped lines (``progress_csv=False``, ``progress=False``)."""

    def __init__(self, out_dir: str, is_main: bool, start_step: int = 0, total_steps: int = 0, progress: bool = True,
                 keep_until: Optional[int] = None, progress_csv: bool = True):
        self.is_main = bool(is_main)
        self.out_dir = out_dir
        self.bar = None
        self.csv = None
        if not self.is_main:
            return
        os.makedirs(out_dir, exist_ok=True)
        self.log_path = os.path.join(out_dir, "log.txt")
        self.csv = ProgressCSV(os.path.join(out_dir, "progress.csv"), keep_until) if progress_csv else None
        self.bar = tqdm(total=total_steps or None, initial=start_step, disable=not progress, unit="step",
                        dynamic_ncols=True, desc="train")

    def log(self, message: str) -> None:
        """Append a timestamped line to ``log.txt`` and print it (above the progress bar)."""
        if not self.is_main:
            return
        line = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {message}"
        with open(self.log_path, "a") as handle:
            handle.write(line + "\n")
        if self.bar is not None and not self.bar.disable:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def row(self, values: Dict[str, object]) -> None:
        if self.is_main and self.csv is not None:
            self.csv.write(values)

    def advance(self, n: int = 1, **postfix) -> None:
        if self.bar is not None:
            self.bar.update(n)
            if postfix:
                self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
