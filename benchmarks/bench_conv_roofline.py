"""The convolution roofline of a train step: how fast this CPU runs the network's OWN convolutions, alone.

Records every convolution call of one train-mode forward of a named config (input shape, weight shape,
stride, padding, dilation, memory layout), replays each one in isolation (forward + backward for weights and
input) in fp32 and in bf16, and reports the FLOPs, the time and the GFLOP/s, next to the model's measured train
step. The ratio says how much of the step the convolutions alone need at this CPU's rate, i.e. how far any
non-convolution optimisation can take the step.

    python benchmarks/bench_conv_roofline.py --config demo --batch 8
    python benchmarks/bench_conv_roofline.py --config small --batch 2 --json benchmarks/out/roofline_small.json
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from mm_diffusion.models.configs import create_model  # noqa: E402
from mm_diffusion.models.precision import compute_copy  # noqa: E402

CONVS = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def record_convs(model, batch: int) -> list:
    """``(dims, input shape, weight shape, has bias, stride, padding, dilation, channels_last)`` of every call."""
    calls = []
    originals = dict(CONVS)

    def recorder(dims):
        def fn(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
            cl = x.dim() >= 4 and not x.is_contiguous() and x.is_contiguous(
                memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d)
            calls.append((dims, tuple(x.shape), tuple(w.shape), b is not None, stride, padding, dilation, cl))
            return originals[dims](x, w, b, stride, padding, dilation, groups)
        return fn

    patched = {1: recorder(1), 2: recorder(2), 3: recorder(3)}
    modules = [F, torch.nn.functional]
    try:
        for mod in modules:
            mod.conv1d, mod.conv2d, mod.conv3d = patched[1], patched[2], patched[3]
        f, c, h, w = model.video_size
        with torch.no_grad():
            model(torch.randn(batch, f, c, h, w), torch.randn(batch, *model.audio_size), torch.zeros(batch))
    finally:
        for mod in modules:
            mod.conv1d, mod.conv2d, mod.conv3d = originals[1], originals[2], originals[3]
    return calls


def conv_flops(x_shape, w_shape, out_numel: int) -> int:
    """Multiply-adds x 2 of the forward (``out elements * C_in * kernel``)."""
    per_out = w_shape[1]
    for k in w_shape[2:]:
        per_out *= k
    return 2 * out_numel * per_out


def time_call(call, dtype, repeats: int) -> tuple:
    dims, xs, ws, bias, stride, padding, dilation, cl = call
    x = torch.randn(xs, dtype=dtype)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last if len(xs) == 4 else torch.channels_last_3d)
    x.requires_grad_()
    w = torch.randn(ws, dtype=dtype, requires_grad=True)
    b = torch.randn(ws[0], dtype=dtype, requires_grad=True) if bias else None
    conv = CONVS[dims]
    out = conv(x, w, b, stride, padding, dilation)
    grad = torch.randn_like(out)

    def step():
        conv(x, w, b, stride, padding, dilation).backward(grad)

    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times), 3 * conv_flops(xs, ws, out.numel())  # forward + 2 backward products


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="demo", help="named config (default: demo)")
    parser.add_argument("--batch", type=int, default=8, help="batch size (default: 8, the demo's)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per convolution (median)")
    parser.add_argument("--json", default="", help="also write the rows here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = create_model(args.config)
    rows = {}
    for name, model in (("fp32", base), ("bf16", compute_copy(base))):
        calls = record_convs(model, args.batch)
        dtype = torch.float32 if name == "fp32" else torch.bfloat16
        total_s, total_flop = 0.0, 0
        for call in calls:
            seconds, flop = time_call(call, dtype, args.repeats)
            total_s += seconds
            total_flop += flop
        rows[name] = dict(convs=len(calls), seconds=round(total_s, 4), gflop=round(total_flop / 1e9, 2),
                          gflop_per_s=round(total_flop / total_s / 1e9, 1))
        print(f"{args.config} batch {args.batch} {name}: {len(calls)} convolutions, {total_flop / 1e9:.1f} GFLOP "
              f"(fwd + bwd), {total_s:.3f} s alone -> {total_flop / total_s / 1e9:.1f} GFLOP/s", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(dict(config=args.config, batch=args.batch, threads=args.threads,
                                                   rows=rows), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
