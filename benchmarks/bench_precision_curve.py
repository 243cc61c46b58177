"""Numerics guard for the bf16 compute path: the demo task trained from the same seed in fp32 and in bf16.

Runs ``python -m mm_diffusion.train`` twice with the demo model's stage-1 recipe (``--config demo``, the
synthetic dataset with hum level 0.1, batch 8, lr 5e-4 with a 200-step warm-up, grad clip 1), once with
``--precision fp32`` and once with ``--precision bf16`` (fp32 master weights, bf16 compute copy), for
``--steps`` steps each, and draws both loss curves (and their ratio) into one PNG. Same seed, so both runs see
the same clips, timesteps and noise; any difference is bf16 rounding.

    python benchmarks/bench_precision_curve.py --steps 300 --out benchmarks/out/precision_curve
    #   -> fp32/ and bf16/ run folders, precision_curve.png, precision_curve.json (per-run s/step, loss summary)
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RECIPE = ["--config", "demo", "--hum_level", "0.1", "--synthetic_num", "4096", "--seed", "0", "--batch_size", "8",
          "--lr", "5e-4", "--lr_warmup_steps", "200", "--grad_clip", "1.0", "--ema_rate", "0.999",
          "--save_interval", "0", "--sample_interval", "0", "--progress", "False"]


def train(precision: str, out: Path, steps: int, log_interval: int, threads: int) -> float:
    """One run; returns its wall time in seconds."""
    cmd = [sys.executable, "-m", "mm_diffusion.train", *RECIPE, "--precision", precision, "--max_steps", str(steps),
           "--log_interval", str(log_interval), "--output_dir", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    return time.perf_counter() - start


def read_losses(folder: Path) -> tuple:
    rows = list(csv.DictReader(open(folder / "progress.csv")))
    return [int(r["step"]) for r in rows], [float(r["loss"]) for r in rows]


def plot(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True, gridspec_kw=dict(height_ratios=[3, 1]))
    for name, (steps, losses) in curves.items():
        top.plot(steps, losses, label=name, lw=1.4)
    top.set_yscale("log")
    top.set_ylabel(f"training loss (mean of {curves_interval(curves)} steps)")
    top.legend()
    top.set_title("demo task, same seed: fp32 vs bf16 compute copy (fp32 master weights)")
    (s32, l32), (_, l16) = curves["fp32"], curves["bf16"]
    bottom.plot(s32, [b / a for a, b in zip(l32, l16)], color="k", lw=1)
    bottom.axhline(1.0, color="grey", lw=0.8, ls="--")
    bottom.set_ylabel("bf16 / fp32")
    bottom.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def curves_interval(curves: dict) -> int:
    steps = next(iter(curves.values()))[0]
    return steps[1] - steps[0] if len(steps) > 1 else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="training steps per run (default: 300)")
    parser.add_argument("--log_interval", type=int, default=10, help="steps per progress.csv row (default: 10)")
    parser.add_argument("--threads", type=int, default=2, help="OMP threads per run (default: 2)")
    parser.add_argument("--out", default="benchmarks/out/precision_curve", help="output folder")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary, curves = {}, {}
    for precision in ("fp32", "bf16"):
        wall = train(precision, out / precision, args.steps, args.log_interval, args.threads)
        curves[precision] = read_losses(out / precision)
        losses = curves[precision][1]
        tail = losses[-max(1, len(losses) // 5):]
        summary[precision] = dict(wall_s=round(wall, 1), s_per_step=round(wall / args.steps, 3),
                                  first_loss=losses[0], last_fifth_mean_loss=sum(tail) / len(tail))
    ratios = [b / a for a, b in zip(curves["fp32"][1], curves["bf16"][1])]
    summary["ratio_bf16_over_fp32"] = dict(min=min(ratios), max=max(ratios), mean=sum(ratios) / len(ratios))
    plot(curves, out / "precision_curve.png")
    (out / "precision_curve.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    print(f"wrote {out / 'precision_curve.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
