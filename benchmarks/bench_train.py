"""Training throughput (samples/s) and peak memory of the coupled U-Net training step.

    python benchmarks/bench_train.py                      # CPU: tiny + small, fp32; 1 -> 2 CPU ranks
    python benchmarks/bench_train.py --quick              # fewer steps
    python benchmarks/bench_train.py --configs small --device cuda --precisions fp32,bf16,bf16_autocast --compile both

Every measurement runs in a fresh subprocess (so peak memory is that run's own): a full optimizer step of
``TrainLoop`` (data, noise, forward, backward, clipping, AdamW, EMA) on the synthetic dataset, after
``--warmup`` untimed steps. Peak memory: ``torch.cuda.max_memory_allocated`` on CUDA, the process's peak
resident set size on CPU. Scaling: the same per-rank batch on 1 and on 2 gloo ranks (torchrun, one thread
per rank), reported as global samples/s and the efficiency ``samples/s(2) / (2 * samples/s(1))``.
``cpu_s_per_step`` (process CPU time per step, rank 0) is less sensitive than wall time to other load
on a shared machine.
Results: printed as a table and written to ``benchmarks/out/bench_train.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def worker(opts) -> None:
    """One measurement in this process; prints one JSON line."""
    import torch

    if opts.threads:
        torch.set_num_threads(opts.threads)
    sys.path.insert(0, str(REPO))
    from mm_diffusion.runs import dist
    from mm_diffusion.data import load_data
    from mm_diffusion.cli import flags
    from mm_diffusion.runs.rng import seed_everything
    from mm_diffusion.training.loop import TrainConfig, TrainLoop
    from mm_diffusion.training.tasks import AVTask
    from mm_diffusion.models.precision import resolve_precision

    info = dist.setup_dist()
    device = info.device if opts.device != "cpu" else torch.device("cpu")
    seed_everything(0)
    args = flags.config_to_flags(opts.config)
    model, diffusion = flags.create_model_and_diffusion(args)
    model.to(device)
    vs, aus = args["video_size"], args["audio_size"]
    fps = flags.infer_audio_fps(vs, aus, 10)
    data = load_data(data_dir="synthetic:256", batch_size=opts.batch, video_size=vs, audio_size=aus, video_fps=10,
                     audio_fps=fps, rank=info.rank, world_size=info.world_size, progress=False)
    precision = resolve_precision(opts.precision, opts.precision != "fp32", device)
    out_dir = tempfile.mkdtemp(prefix="bench_train_")
    cfg = TrainConfig(output_dir=out_dir, batch_size=opts.batch, log_interval=0, save_interval=0,
                      ema_rates=["0.9999"], precision=precision, compile=opts.compile, grad_clip=1.0,
                      progress=False)
    loop = TrainLoop(model, diffusion, data, AVTask(vs, aus, 10, fps), cfg)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(opts.warmup):
        loop.run_step(loop._next_batch())
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    dist.barrier()
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(opts.steps):
        loop.run_step(loop._next_batch())
    sync()
    dist.barrier()
    elapsed = time.perf_counter() - start
    cpu_per_step = (time.process_time() - cpu_start) / opts.steps
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    shutil.rmtree(out_dir, ignore_errors=True)
    if info.is_main:
        print("RESULT " + json.dumps({
            "config": opts.config, "device": str(device.type), "precision": precision, "compile": bool(opts.compile),
            "ranks": info.world_size, "batch_per_rank": opts.batch, "threads": torch.get_num_threads(),
            "step_time_s": elapsed / opts.steps,
            "cpu_s_per_step": cpu_per_step,
            "samples_per_s": opts.steps * opts.batch * info.world_size / elapsed,
            "peak_mem_mb": peak / 2**20,
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        }), flush=True)
    dist.cleanup()


def _launch(cmd, env_extra=None, timeout=1800):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"benchmark run failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")


def _worker_cmd(opts, config, device, precision, compiled, batch, threads, ranks=1):
    args = ["--worker", "--config", config, "--device", device, "--precision", precision, "--batch", str(batch),
            "--steps", str(opts.steps), "--warmup", str(opts.warmup), "--threads", str(threads)]
    if compiled:
        args += ["--compile", "on"]
    if ranks == 1:
        return [sys.executable, __file__, *args]
    return ["torchrun", "--standalone", "--nproc_per_node", str(ranks), __file__, *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="tiny,small")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (CPU, plus CUDA when present)")
    parser.add_argument("--precisions", default="", help="comma list of fp32, bf16 (compute copy), bf16_autocast, fp16; default: fp32,bf16 on CPU; "
                             "fp32,bf16,bf16_autocast on CUDA")
    parser.add_argument("--compile", default="off", choices=["off", "on", "both"], help="torch.compile (CUDA runs)")
    parser.add_argument("--batch", type=int, default=4, help="samples per rank per step")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for single-process CPU runs")
    parser.add_argument("--no_scaling", action="store_true", help="skip the 1 -> 2 CPU rank comparison")
    parser.add_argument("--quick", action="store_true", help="3 timed steps after 1 warm-up step")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "bench_train.json"))
    # worker-only options
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", default="tiny", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.quick:
        opts.steps, opts.warmup = 3, 1
    if opts.worker:
        opts.compile = opts.compile == "on"
        return worker(opts)

    import torch

    devices = ["cpu"] if opts.device in ("auto", "cpu") else []
    if opts.device == "cuda" or (opts.device == "auto" and torch.cuda.is_available()):
        devices.append("cuda")
    compiles = {"off": [False], "on": [True], "both": [False, True]}[opts.compile]
    results = []
    for device in devices:
        precisions = opts.precisions.split(",") if opts.precisions else (["fp32", "bf16"] if device == "cpu" else ["fp32", "bf16", "bf16_autocast"])
        for config in opts.configs.split(","):
            for precision in precisions:
                for compiled in (compiles if device == "cuda" else [False]):
                    cmd = _worker_cmd(opts, config, device, precision, compiled, opts.batch, opts.threads)
                    res = _launch(cmd)
                    results.append(res)
                    print(f"{config:6s} {device:4s} {precision:5s} compile={int(compiled)} ranks=1 "
                          f"{res['samples_per_s']:8.2f} samples/s  {res['step_time_s'] * 1e3:8.1f} ms/step  "
                          f"{res['cpu_s_per_step']:7.2f} CPU s/step  "
                          f"peak {res['peak_mem_mb']:8.0f} MB", flush=True)
    if not opts.no_scaling and shutil.which("torchrun"):
        config = opts.configs.split(",")[0]
        env = {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
        one = _launch(_worker_cmd(opts, config, "cpu", "fp32", False, opts.batch, 1), env)
        two = _launch(_worker_cmd(opts, config, "cpu", "fp32", False, opts.batch, 1, ranks=2), env)
        eff = two["samples_per_s"] / (2 * one["samples_per_s"])
        results += [one, two]
        print(f"scaling {config}: 1 CPU rank {one['samples_per_s']:.2f} samples/s, 2 CPU ranks "
              f"{two['samples_per_s']:.2f} samples/s (efficiency {eff:.0%}, 1 thread per rank)", flush=True)
    os.makedirs(os.path.dirname(opts.out), exist_ok=True)
    with open(opts.out, "w") as handle:
        json.dump({"batch_per_rank": opts.batch, "steps": opts.steps, "results": results,
                   "torch": torch.__version__}, handle, indent=2)
    print(f"wrote {opts.out}")


if __name__ == "__main__":
    main()
