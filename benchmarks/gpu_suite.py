"""The GPU benchmark suite: every figure a first lent GPU should give, in one command, into one folder.

Sections (each in its own process, with its own time limit, so one failure or hang costs only its row):

* ``train``: paper-config train step (forward + backward + AdamW) at the largest batch that fits, for fp32,
  bf16 autocast, fp16 autocast with a grad scaler and the bf16 compute copy (fp32 master weights):
  seconds per step, samples/s, model FLOPs utilisation, peak memory;
* ``sdpa``: for every attention call of the paper network (spatial, temporal, RS-MMA, middle full
  cross-attention), whether SDPA's flash and memory-efficient kernels accept it in bf16;
* ``sample``: DPM-Solver (20 steps, the ``dpm_solver`` defaults) seconds per clip, paper config, bf16 autocast;
  the SR stage (``sr_paper``, 64 -> 256, DPM-Solver 50 steps) seconds per frame;
* ``compile``: the paper train step (bf16 autocast) with and without ``torch.compile``;
* ``ddp``: one NCCL DistributedDataParallel train step on one GPU (world size 1), loss finite.

FLOPs: counted by ``torch.utils.flop_counter.FlopCounterMode`` on one forward of the network (convolutions,
matrix products and SDPA); a train step is counted as 3x its forward. MFU = counted FLOP/s divided by
``--peak_tflops`` (default 989: the H200's dense bf16 tensor-core peak; the same peak is used for every
precision, so the fp32 row reads as a share of the bf16 peak).

    bash benchmarks/gpu_suite.sh                  # on the GPU machine; writes $OUT (or benchmarks/out/gpu)
    python benchmarks/gpu_suite.py --out DIR       # the same
    python benchmarks/gpu_suite.py --dry_run       # CPU, tiny configs, one step each: checks that it all runs

Writes ``gpu_suite.json`` (every row) and ``gpu_suite.md`` (tables) into the output folder, after each section.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECTIONS = ("train", "sdpa", "sample", "compile", "ddp")
# each section's time limit, as a multiple of --section_timeout (the whole suite: 8.5 x 60 s at most)
SECTION_SHARE = {"train": 3.0, "sdpa": 1.0, "sample": 1.5, "compile": 2.0, "ddp": 1.0}
TRAIN_PRECISIONS = ("fp32", "bf16_autocast", "fp16", "bf16")
BATCHES = (1, 2, 4, 8, 16, 32, 64)


# --------------------------------------------------------------------------- shared pieces
def _setup(opts):
    import torch

    device = torch.device("cpu" if opts.dry_run else "cuda")
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    return torch, device


def _config(opts) -> str:
    return "tiny" if opts.dry_run else "paper"


def _inputs(torch, model, batch, device):
    f, c, h, w = model.video_size
    return (torch.randn(batch, f, c, h, w, device=device), torch.randn(batch, *model.audio_size, device=device),
            torch.randint(0, 1000, (batch,), device=device))


def _timed(torch, fn, device, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forward_flops(torch, model, device) -> int:
    """FLOPs of one forward of ``model`` on a batch of 1 (counted, not estimated)."""
    from torch.utils.flop_counter import FlopCounterMode

    video, audio, t = _inputs(torch, model, 1, device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(video, audio, t)
    return int(counter.get_total_flops())


def train_step_fn(torch, model, precision: str, batch: int, device, compile_model: str = ""):
    """A closure running one train step of ``model`` at ``precision`` (``benchmarks/precision_steps.py``),
    through ``torch.compile(backend=compile_model)`` when that is not empty."""
    from benchmarks.precision_steps import precision_steps

    video, audio, t = _inputs(torch, model, batch, device)
    return precision_steps(model, precision, video, audio, t, compile_backend=compile_model)[0]


def _peak_mib(torch, device) -> float:
    return round(torch.cuda.max_memory_allocated() / 2 ** 20, 1) if device.type == "cuda" else float("nan")


# --------------------------------------------------------------------------- sections
def section_train(opts) -> list:
    torch, device = _setup(opts)
    from mm_diffusion.models.configs import create_model

    model = create_model(_config(opts)).to(device)
    flops = forward_flops(torch, model, device)
    rows = []
    for precision in TRAIN_PRECISIONS if not opts.dry_run else ("fp32", "bf16"):
        best = None
        for batch in BATCHES if not opts.dry_run else (1,):
            try:
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
                step = train_step_fn(torch, model, precision, batch, device)
                seconds = _timed(torch, step, device, opts.warmup, opts.repeats)
            except torch.OutOfMemoryError:
                break
            best = dict(section="train", config=_config(opts), precision=precision, batch=batch, step_s=seconds,
                        samples_per_s=batch / seconds, peak_mib=_peak_mib(torch, device),
                        flop_per_step=3 * flops * batch,
                        mfu=3 * flops * batch / seconds / (opts.peak_tflops * 1e12))
            print(json.dumps(best), flush=True)
            del step
        if best is not None:
            rows.append(best)
    return rows


def section_sdpa(opts) -> list:
    torch, device = _setup(opts)
    import torch.nn.functional as F

    import mm_diffusion.models.attention as attention_module
    from mm_diffusion.models.configs import create_model

    model = create_model(_config(opts)).to(device).eval()
    calls = []
    original = attention_module.attention

    def recording(q, k, v):
        calls.append((tuple(q.shape), tuple(k.shape), q.stride(-1) == k.stride(-1) == v.stride(-1) == 1))
        return original(q, k, v)

    attention_module.attention = recording
    try:
        with torch.no_grad():
            model(*_inputs(torch, model, 1, device))
    finally:
        attention_module.attention = original
    rows = []
    for q_shape, k_shape, contiguous in dict.fromkeys(calls):
        row = dict(section="sdpa", q=list(q_shape), k=list(k_shape), head_dim_contiguous=contiguous,
                   calls=calls.count((q_shape, k_shape, contiguous)), kind=_attention_kind(q_shape, k_shape))
        for name in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION"):
            row[name.lower()] = _kernel_accepts(torch, F, name, q_shape, k_shape, device)
        rows.append(row)
    return rows


def _attention_kind(q_shape, k_shape) -> str:
    if q_shape == k_shape:
        return "self (spatial, temporal or audio)"
    return "RS-MMA / cross"


def _kernel_accepts(torch, F, name: str, q_shape, k_shape, device) -> str:
    if device.type != "cuda":
        return "n/a (CPU)"
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q = torch.randn(q_shape, device=device, dtype=torch.bfloat16)
    k = torch.randn(k_shape, device=device, dtype=torch.bfloat16)
    try:
        with sdpa_kernel(getattr(SDPBackend, name)):
            F.scaled_dot_product_attention(q, k, k)
        return "yes"
    except RuntimeError as err:
        return f"no: {str(err).splitlines()[0][:120]}"


def section_sample(opts) -> list:
    torch, device = _setup(opts)
    from mm_diffusion.diffusion import create_gaussian_diffusion
    from mm_diffusion.diffusion.samplers import sample
    from mm_diffusion.models.configs import create_model, create_sr_model

    diffusion = create_gaussian_diffusion(steps=1000)
    model = create_model(_config(opts)).to(device).eval()
    batch = 1 if opts.dry_run else opts.sample_batch
    f, c, h, w = model.video_size
    shapes = {"video": (batch, f, c, h, w), "audio": (batch, *model.audio_size)}

    def av_fn(x, t):
        v, a = model(x["video"], x["audio"], t)
        return {"video": v, "audio": a}

    steps = 2 if opts.dry_run else 20
    rows = []
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        seconds = _timed(torch, lambda: sample(av_fn, shapes, diffusion=diffusion, method="dpm_solver", steps=steps,
                                               progress=False, device=device), device, 1, opts.repeats)
        rows.append(dict(section="sample", what=f"DPM-Solver {steps} steps, {_config(opts)}", batch=batch,
                         seconds_per_clip=seconds / batch))
        sr = create_sr_model("sr_tiny" if opts.dry_run else "sr_paper").to(device).eval()
        frames = 2 if opts.dry_run else opts.sr_frames
        size = 64 if opts.dry_run else 256
        low = torch.rand(frames, 3, size // 4, size // 4, device=device) * 2 - 1
        sr_diffusion = create_gaussian_diffusion(steps=1000)  # the eps half of the learned-sigma output
        sr_steps = 2 if opts.dry_run else 50

        def sr_fn(x, t):
            return sr(x, t, low_res=low)[:, :3]

        seconds = _timed(torch, lambda: sample(sr_fn, (frames, 3, size, size), diffusion=sr_diffusion,
                                               method="dpm_solver", steps=sr_steps, order=2, skip_type="time_uniform",
                                               solver_method="multistep", progress=False, device=device),
                         device, 1, opts.repeats)
        rows.append(dict(section="sample", what=f"SR {size // 4}->{size}, DPM-Solver {sr_steps} steps", batch=frames,
                         seconds_per_frame=seconds / frames))
    return rows


def section_compile(opts) -> list:
    torch, device = _setup(opts)
    from mm_diffusion.models.configs import create_model

    rows = []
    batch = 1 if opts.dry_run else opts.compile_batch
    precision = "fp32" if opts.dry_run else "bf16_autocast"
    backend = "eager" if opts.dry_run else "inductor"  # the dry run checks the wiring, not inductor's C++ build
    for compiled in (False, True):
        model = create_model(_config(opts)).to(device)
        step = train_step_fn(torch, model, precision, batch, device, compile_model=backend if compiled else "")
        start = time.perf_counter()
        step()
        first = time.perf_counter() - start
        seconds = _timed(torch, step, device, opts.warmup, opts.repeats)
        rows.append(dict(section="compile", config=_config(opts), precision=precision, batch=batch,
                         compiled=backend if compiled else "no", first_step_s=first, step_s=seconds))
    return rows


def section_ddp(opts) -> list:
    torch, device = _setup(opts)
    import torch.distributed as tdist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from mm_diffusion.models.configs import create_model

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
    backend = "gloo" if device.type == "cpu" else "nccl"
    tdist.init_process_group(backend, rank=0, world_size=1)
    try:
        model = create_model(_config(opts)).to(device)
        net = DDP(model, device_ids=[0] if device.type == "cuda" else None)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        video, audio, t = _inputs(torch, model, 1, device)
        v, a = net(video, audio, t)
        loss = (v - video).square().mean() + (a - audio).square().mean()
        loss.backward()
        opt.step()
        return [dict(section="ddp", backend=backend, world_size=tdist.get_world_size(), loss=float(loss),
                     finite=bool(torch.isfinite(loss)))]
    finally:
        tdist.destroy_process_group()


# --------------------------------------------------------------------------- driver
def write_report(rows: list, meta: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_suite.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    lines = [f"# GPU suite ({meta.get('device_name', '?')}, torch {meta.get('torch', '?')}, {meta.get('time', '')})", ""]
    for section in SECTIONS:
        found = [r for r in rows if r.get("section") == section]
        if not found:
            continue
        keys = [k for k in found[0] if k != "section"]
        for r in found[1:]:
            keys += [k for k in r if k not in keys and k != "section"]
        lines += [f"## {section}", "", "| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(_cell(r.get(k, "")) for k in keys) + " |" for r in found]
        lines.append("")
    (out / "gpu_suite.md").write_text("\n".join(lines))


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _meta(opts) -> dict:
    import torch

    meta = dict(torch=torch.__version__, time=time.ctime(), dry_run=opts.dry_run, peak_tflops=opts.peak_tflops)
    if torch.cuda.is_available():
        meta["device_name"] = torch.cuda.get_device_name(0)
    else:
        meta["device_name"] = "cpu"
    return meta


def run_section(name: str, opts, argv_rest: list) -> list:
    """Run one section in a child process with its time limit; an error or time-out becomes one row."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--section", name, *argv_rest]
    limit = int(opts.section_timeout * SECTION_SHARE[name])
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, cwd=ROOT)
    except subprocess.TimeoutExpired as err:
        out = err.stdout.decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
        partial = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return partial + [dict(section=name, error=f"timed out after {limit} s")]
    for line in reversed(proc.stdout.strip().splitlines()):
        if line.startswith("ROWS "):
            return json.loads(line[5:])
    return [dict(section=name, error=(proc.stderr.strip() or proc.stdout.strip())[-600:])]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.environ.get("OUT") or "benchmarks/out/gpu",
                        help="output folder (default: $OUT, else benchmarks/out/gpu)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {', '.join(SECTIONS)}")
    parser.add_argument("--dry_run", action="store_true", help="CPU, tiny configs, one timed step: checks it runs")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing (default: 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps; the median is reported (default: 3)")
    parser.add_argument("--peak_tflops", type=float, default=989.0,
                        help="peak TFLOP/s for MFU (default: 989, the H200's dense bf16 peak)")
    parser.add_argument("--sample_batch", type=int, default=8, help="clips per DPM-Solver batch (default: 8)")
    parser.add_argument("--sr_frames", type=int, default=16, help="frames per SR batch (default: 16)")
    parser.add_argument("--compile_batch", type=int, default=4, help="batch of the compile on/off step (default: 4)")
    parser.add_argument("--section_timeout", type=int, default=60,
                        help="time unit of the sections' limits: train 3x, sample 1.5x, compile 2x, others 1x "
                             "(default: 60 s, so at most 8.5 minutes in all)")
    parser.add_argument("--section", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    opts = parse_args(argv)
    if opts.dry_run:
        opts.warmup, opts.repeats = 0, 1
    if opts.section:
        rows = globals()[f"section_{opts.section}"](opts)
        print("ROWS " + json.dumps(rows), flush=True)
        return 0
    names = [s for s in opts.sections.split(",") if s]
    unknown = set(names) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    rest = ["--out", opts.out, "--warmup", str(opts.warmup), "--repeats", str(opts.repeats),
            "--peak_tflops", str(opts.peak_tflops), "--sample_batch", str(opts.sample_batch),
            "--sr_frames", str(opts.sr_frames), "--compile_batch", str(opts.compile_batch)] + \
        (["--dry_run"] if opts.dry_run else [])
    meta, rows, out = _meta(opts), [], Path(opts.out)
    for name in names:
        start = time.perf_counter()
        found = run_section(name, opts, rest)
        rows += found
        print(f"[gpu_suite] {name}: {len(found)} row(s) in {time.perf_counter() - start:.0f} s"
              + ("" if "error" not in found[0] else f" ERROR {found[0]['error'][-200:]}"), flush=True)
        write_report(rows, meta, out)
    print(f"[gpu_suite] wrote {out / 'gpu_suite.json'} and {out / 'gpu_suite.md'}")
    return 0 if not any("error" in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
