"""Speed and memory of the coupled U-Net.

Measures, per named config (``tiny``, ``small``, ``demo`` at its training batch 8, ``paper``), per precision
(``fp32``; ``bf16``: a bf16 compute copy with float32 master weights; ``bf16_autocast``; ``fp16`` on CUDA):
  - ``forward``: eval-mode forward, no grad;
  - ``train``: train-mode forward + backward + AdamW step;
each the median of ``--repeats`` runs after ``--warmup`` runs, and peak memory (CPU: peak RSS of a fresh
worker process above its baseline; CUDA: ``torch.cuda.max_memory_allocated``). Default precisions: fp32 and
bf16 on the CPU, plus bf16_autocast on CUDA (``--dtypes``). It also times vectorised RS-MMA against the per-frame loop used as the test oracle.

    python benchmarks/bench_model.py                       # CPU, 2 threads, the project's targets
    python benchmarks/bench_model.py --device cuda --configs tiny,small,paper --batch 4
    python benchmarks/bench_model.py --json benchmarks/out/model.json

Each measurement runs in its own process so peak memory is per measurement.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _sync(device):
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(config: str, mode: str, device: str, dtype: str, batch: int, warmup: int, repeats: int,
            threads: int, compile_model: bool = False, layout: str = "auto") -> dict:
    """One measurement in this process. Returns a dict of timings (seconds) and memory (MiB)."""
    import torch

    from benchmarks.precision_steps import precision_steps
    from mm_diffusion.models.configs import create_model

    torch.set_num_threads(threads)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    torch.manual_seed(0)
    model = create_model(config).to(device)
    f, c, h, w = model.video_size
    video = torch.randn(batch, f, c, h, w, device=device)
    audio = torch.randn(batch, model.audio_size[0], model.audio_size[1], device=device)
    t = torch.randint(0, 1000, (batch,), device=device)
    train_step, forward = precision_steps(model, dtype, video, audio, t, compile_backend="inductor" if compile_model else "",
                                          channels_last={"auto": None, "cl": True, "cf": False}[layout])
    step = train_step if mode == "train" else forward

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(warmup + repeats):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base_rss
    return dict(config=config, mode=mode, device=device, dtype=dtype, batch=batch, threads=threads,
                compile=compile_model, layout=layout, median_s=statistics.median(times), min_s=min(times), runs=len(times),
                peak_mib=round(peak, 1), params=sum(p.numel() for p in model.parameters()))


def measure_rs_mma(threads: int, device: str = "cpu", repeats: int = 5) -> list:
    """Vectorised RS-MMA vs the per-frame loop oracle (tests/models/test_rs_mma.py) at the paper's
    level-1 sizes (16 frames, 32x32 px, 6400 audio samples, 256 channels) and the small config's."""
    import torch

    from mm_diffusion.models.attention import rs_mma
    from tests.models.test_rs_mma import naive_rs_mma

    torch.set_num_threads(threads)
    rows = []
    for name, (n, c, frames, s, p, heads, window) in {
        "paper ds=2 (16x32x32, 6400)": (1, 256, 16, 32 * 32, 400, 4, 1),
        "paper ds=4 (16x16x16, 1600)": (1, 384, 16, 16 * 16, 100, 6, 4),
        "small ds=2 (8x16x16, 1600)": (2, 128, 8, 16 * 16, 200, 4, 1),
    }.items():
        v = [torch.randn(n, c, frames * s, device=device) for _ in range(3)]
        a = [torch.randn(n, c, frames * p, device=device) for _ in range(3)]
        res = {}
        for label, fn in (("vectorised", lambda: rs_mma(tuple(v), tuple(a), frames, heads, window, 1)),
                          ("loop", lambda: naive_rs_mma(*v, *a, frames, heads, window, 1))):
            with torch.no_grad():
                fn()
                ts = []
                for _ in range(repeats):
                    _sync(device)
                    t0 = time.perf_counter()
                    fn()
                    _sync(device)
                    ts.append(time.perf_counter() - t0)
            res[label] = statistics.median(ts)
        rows.append(dict(case=name, vectorised_s=res["vectorised"], loop_s=res["loop"],
                         speedup=res["loop"] / res["vectorised"]))
    return rows


def run_worker(args_list: list) -> dict:
    cmd = [sys.executable, __file__, "--worker", json.dumps(args_list)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        return dict(zip(["config", "mode", "device", "dtype", "batch"], args_list[:5]), error=out.stderr.strip()[-400:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="tiny,small,demo,paper", help="comma list of named configs")
    parser.add_argument("--device", default="cuda" if _cuda() else "cpu", help="cpu or cuda[:i]")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the targets use 2)")
    parser.add_argument("--batch", type=int, default=2, help="batch size for train steps and forwards")
    parser.add_argument("--demo_batch", type=int, default=8, help="batch size for the demo config (its training batch)")
    parser.add_argument("--paper_batch", type=int, default=1, help="batch size for the paper config")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before timing")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (the median is reported)")
    parser.add_argument("--paper_train", action="store_true",
                        help="also time the paper config's train step (slow on CPU; always on for CUDA)")
    parser.add_argument("--dtypes", default=None,
                        help="comma list of fp32, bf16 (bf16 compute copy, fp32 master weights), bf16_autocast, fp16 "
                             "(autocast + grad scaler, CUDA); default fp32,bf16 on CPU, fp32,bf16,bf16_autocast on CUDA")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (CUDA)")
    parser.add_argument("--layouts", default="auto",
                        help="comma list of video memory layouts inside the network: auto (the model's default), "
                             "cl (channels-last), cf (channels-first)")
    parser.add_argument("--skip_rs_mma", action="store_true", help="skip the RS-MMA vectorised-vs-loop timing")
    parser.add_argument("--json", default="benchmarks/out/bench_model.json", help="where to write the results")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(measure(*json.loads(args.worker))))
        return

    cuda = args.device.startswith("cuda")
    dtypes = args.dtypes.split(",") if args.dtypes else (["fp32", "bf16", "bf16_autocast"] if cuda else ["fp32", "bf16"])
    rows = []
    for config in args.configs.split(","):
        batch = {"paper": args.paper_batch, "demo": args.demo_batch}.get(config, args.batch)
        modes = ["forward", "train"] if (config != "paper" or cuda or args.paper_train) else ["forward"]
        for mode in modes:
            for dtype in dtypes:
                for comp in ([False, True] if (args.compile and cuda) else [False]):
                    for layout in args.layouts.split(","):
                        row = run_worker([config, mode, args.device, dtype, batch, args.warmup, args.repeats,
                                          args.threads, comp, layout])
                        rows.append(row)
                        print(_fmt(row), flush=True)
    rs = [] if args.skip_rs_mma else measure_rs_mma(args.threads, args.device)
    for r in rs:
        print(f"RS-MMA {r['case']:<30} vectorised {r['vectorised_s'] * 1e3:8.1f} ms   loop {r['loop_s'] * 1e3:8.1f} ms"
              f"   x{r['speedup']:.1f}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(torch=_torch_version(), device=args.device, threads=args.threads, cpu=_cpu_name(), time=time.ctime())
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(meta=meta, model=rows, rs_mma=rs), indent=1))
    os.replace(tmp, out)
    print(f"wrote {out}")


def _fmt(row):
    if "error" in row:
        return f"{row['config']:<6} {row['mode']:<8} {row['dtype']:<13} ERROR {row['error']}"
    return (f"{row['config']:<6} {row['mode']:<8} {row['dtype']:<13} {row.get('layout', 'auto'):<4} batch {row['batch']}"
            f"{' compiled' if row['compile'] else ''}: median {row['median_s']:.3f} s (min {row['min_s']:.3f}, "
            f"{row['runs']} runs)  peak {row['peak_mib']:.0f} MiB  params {row['params'] / 1e6:.1f}M")


def _cuda():
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def _torch_version():
    import torch

    return torch.__version__


def _cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    main()
