"""Sampling speed: seconds per generated sample, per named config and sampler, plus the SR stage per frame.

For each config (``tiny``, ``small``, ``paper``) and precision (fp32; bf16 autocast on CUDA, or on CPU with
``--bf16``), with randomly initialised weights (speed does not depend on them):

* ``dpm_solver``: the sampling path of ``python -m mm_diffusion.sample`` (``generate_av``: per-sample noise,
  RS-MMA shifts, 20 solver steps + 1 final call = 21 model evaluations) on a batch of ``--batch`` clips.
  Measured end to end, unless the config is in ``--extrapolate`` (default on CPU: ``paper``): then timed on
  ``--probe_steps`` solver steps and scaled by NFE (labelled ``extrapolated``).
* ``ddpm``: 1000 steps, always extrapolated from a run of ``--probe_steps`` respaced steps (labelled).
* ``sr``: the SR stage (``SRStage``, ``sr_paper``: 64 -> 256 frames, DPM-Solver 50 steps = 51 evaluations) per
  frame, extrapolated from ``--sr_probe_steps`` steps on ``--sr_frames`` frames (``--sr_config sr_tiny`` for a
  quick look).

Timings are the median of ``--repeats`` runs after one warm-up run, in this process.

    python benchmarks/bench_sample.py                                  # CPU, 2 threads
    python benchmarks/bench_sample.py --device cuda --batch 4          # + bf16
    python benchmarks/bench_sample.py --configs tiny,small --sr_config sr_tiny --quick
    python benchmarks/bench_sample.py --json benchmarks/out/bench_sample.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from mm_diffusion.diffusion import create_gaussian_diffusion  # noqa: E402
from mm_diffusion.models.configs import create_model, create_sr_model, model_config, sr_config  # noqa: E402
from mm_diffusion.sampling.generate import generate_av  # noqa: E402
from mm_diffusion.testing.checkpoints import randomize_  # noqa: E402
from mm_diffusion.sampling.sr_stage import SRStage  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device, repeats: int) -> float:
    fn()  # warm-up (allocator, lazy init, cuDNN autotuning)
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_config(name: str, device: torch.device, bf16: bool, batch: int, probe_steps: int, extrapolate: bool,
                 repeats: int) -> list:
    cfg = model_config(name, use_fp16=bf16)
    torch.manual_seed(0)
    model = randomize_(create_model(name, use_fp16=bf16)).to(device).eval()
    video_size, audio_size = cfg["video_size"], cfg["audio_size"]
    diffusion = create_gaussian_diffusion(steps=1000)
    rows = []
    indices = list(range(batch))

    def run(method, diff, steps):
        return lambda: generate_av(model, diff, indices, video_size=video_size, audio_size=audio_size, method=method,
                                   steps=steps, seed=0, device=device)

    precision = "bf16" if bf16 else "fp32"
    # DPM-Solver, 20 steps: 21 model evaluations
    if extrapolate:
        t = _timed(run("dpm_solver", diffusion, probe_steps), device, repeats)
        seconds = t / (probe_steps + 1) * 21
        how = f"extrapolated from {probe_steps} steps"
    else:
        seconds = _timed(run("dpm_solver", diffusion, 20), device, repeats)
        how = "measured"
    rows.append(dict(config=name, precision=precision, sampler="dpm_solver", steps=20, nfe=21, batch=batch,
                     seconds_per_batch=seconds, seconds_per_sample=seconds / batch, how=how))
    # DDPM, 1000 steps: 1000 model evaluations, always extrapolated
    short = diffusion.respace(str(probe_steps))
    t = _timed(run("ddpm", short, None), device, repeats)
    seconds = t / probe_steps * 1000
    rows.append(dict(config=name, precision=precision, sampler="ddpm", steps=1000, nfe=1000, batch=batch,
                     seconds_per_batch=seconds, seconds_per_sample=seconds / batch,
                     how=f"extrapolated from {probe_steps} steps"))
    return rows


def bench_sr(name: str, device: torch.device, bf16: bool, frames: int, probe_steps: int, repeats: int) -> dict:
    cfg = sr_config(name, use_fp16=bf16)
    torch.manual_seed(0)
    model = randomize_(create_sr_model(name, use_fp16=bf16)).to(device).eval()
    large = cfg["image_size"]
    small = large // 4
    diffusion = create_gaussian_diffusion(steps=1000, learn_sigma=cfg["out_channels"] == 6)
    stage = SRStage(model, diffusion, large_size=large, method="dpm_solver", steps=probe_steps, seed=0, device=device)
    video = torch.rand(1, frames, 3, small, small, device=device) * 2 - 1
    t = _timed(lambda: stage(video, [0]), device, repeats)
    seconds = t / (probe_steps + 1) * 51
    return dict(config=name, precision="bf16" if bf16 else "fp32", sampler="dpm_solver", steps=50, nfe=51,
                frames=frames, size=f"{small}->{large}", seconds_per_frame=seconds / frames,
                how=f"extrapolated from {probe_steps} steps on {frames} frames")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--configs", default="tiny,small,paper")
    p.add_argument("--batch", type=int, default=2, help="clips per sampler call")
    p.add_argument("--probe_steps", type=int, default=3, help="steps actually run when extrapolating")
    p.add_argument("--extrapolate", default=None,
                   help="configs whose 20-step DPM-Solver run is extrapolated (default: paper on CPU, none on CUDA)")
    p.add_argument("--sr_config", default="sr_paper", help="sr_paper, sr_tiny or '' to skip")
    p.add_argument("--sr_frames", type=int, default=2)
    p.add_argument("--sr_probe_steps", type=int, default=1)
    p.add_argument("--bf16", action="store_true", help="also measure bf16 autocast on CPU (always on CUDA)")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    p.add_argument("--quick", action="store_true", help="tiny/small only, sr_tiny, one repeat")
    p.add_argument("--json", default="", help="also write the rows to this JSON file")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available")
    configs = [c for c in args.configs.split(",") if c]
    if args.quick:
        configs = [c for c in configs if c != "paper"]
        args.sr_config = "sr_tiny" if args.sr_config else ""
    extrapolate = set((args.extrapolate if args.extrapolate is not None
                       else ("paper" if device.type == "cpu" else "")).split(","))
    precisions = [False, True] if (device.type == "cuda" or args.bf16) else [False]
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {args.threads} threads"
    print(f"device: {where}; torch {torch.__version__}; batch {args.batch}")
    rows, sr_rows = [], []
    for name in configs:
        for bf16 in precisions:
            rows.extend(bench_config(name, device, bf16, args.batch, args.probe_steps, name in extrapolate,
                                     args.repeats))
            for r in rows[-2:]:
                print(f"{r['config']:6s} {r['precision']:5s} {r['sampler']:11s} {r['steps']:5d} steps  "
                      f"{r['seconds_per_sample']:10.3f} s/sample   ({r['how']})", flush=True)
    if args.sr_config:
        for bf16 in precisions:
            r = bench_sr(args.sr_config, device, bf16, args.sr_frames, args.sr_probe_steps, args.repeats)
            sr_rows.append(r)
            print(f"SR {r['config']:8s} {r['precision']:5s} {r['size']:9s} dpm_solver 50 steps  "
                  f"{r['seconds_per_frame']:10.3f} s/frame    ({r['how']})", flush=True)
    if args.json:
        out = {"device": where, "torch": torch.__version__, "batch": args.batch, "sample": rows, "sr": sr_rows}
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        tmp = args.json + ".tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(out, handle, indent=1)
        os.replace(tmp, args.json)


if __name__ == "__main__":
    main()
