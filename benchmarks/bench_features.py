"""Feature-extraction throughput (clips/s) of the FVD / KVD / FAD networks, random weights.

Each encoder runs exactly as ``mm_diffusion.evaluate`` calls it: I3D on 16-frame 64x64 clips
(resized to 224, the published setting), AudioCLIP and VGGish on 1.6-s 16-kHz clips (resampled
internally to 44.1 kHz / 16 kHz). Weights are random (the speed does not depend on them); the files
are written once to a temporary folder.

    python benchmarks/bench_features.py                          # CPU, batch 8, all encoders
    python benchmarks/bench_features.py --device cuda --batch 32
    python benchmarks/bench_features.py --encoders i3d --threads 2 --repeats 2
    python benchmarks/bench_features.py --compare_unfused       # also time the BatchNorm-unfused path
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from mm_diffusion.evaluation import encoders as enc
from mm_diffusion.testing import encoders as fakes


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _unfused(module: torch.nn.Module) -> None:
    """Run the plain path (BatchNorm applied separately, still with running statistics)."""
    for m in module.modules():
        m.training = not isinstance(m, torch.nn.modules.batchnorm._BatchNorm)


def time_encoder(fn, batch_fn, batch: int, repeats: int, device: torch.device) -> float:
    """Clips per second of ``fn(batch_fn())`` after one warm-up call (inputs made outside the timing)."""
    x = batch_fn()
    fn(x)
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        x = batch_fn()
        _sync(device)
        start = time.perf_counter()
        fn(x)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return batch / best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3, help="timed calls per encoder (the best is reported)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--encoders", default="i3d,audioclip,vggish")
    p.add_argument("--resize_to", type=int, default=224, help="I3D input side (224 = published)")
    p.add_argument("--video_hw", type=int, default=64, help="side of the generated frames before resizing")
    p.add_argument("--compare_unfused", action="store_true")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = [n.strip() for n in args.encoders.split(",") if n.strip()]
    unknown = set(names) - {"i3d", "audioclip", "vggish"}
    if unknown:
        raise SystemExit(f"--encoders: unknown {sorted(unknown)}; valid: i3d, audioclip, vggish")
    b = args.batch
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in names:
            if name == "i3d":
                encoder = enc.load_video_encoder(fakes.make_random_i3d_file(tmp / "i3d.pt"), device=device,
                                                 resize_to=args.resize_to)
                make = lambda: torch.rand(b, 16, 3, args.video_hw, args.video_hw, device=device) * 2 - 1  # noqa: E731
                call = encoder
                what = f"16x{args.video_hw}x{args.video_hw} -> 16x{args.resize_to}x{args.resize_to}, 400 logits"
            else:
                if name == "audioclip":
                    path = fakes.make_random_audioclip_file(tmp / "ac.pt")
                    what = "1.6 s @16 kHz -> 44.1 kHz, 1024-d"
                else:
                    path = fakes.make_random_vggish_file(tmp / "vggish.pth")
                    what = "1.6 s @16 kHz, first 0.96-s example, 128-d"
                encoder = enc.load_audio_encoder(name, path, device=device)
                make = lambda: torch.rand(b, 1, 25600) * 2 - 1  # noqa: E731  (the dataset yields CPU audio)
                call = lambda a, e=encoder: e(a, 16000)  # noqa: E731
            rate = time_encoder(call, make, b, args.repeats, device)
            row = [name, what, f"{rate:.2f}"]
            if args.compare_unfused:
                _unfused(encoder.network)
                with torch.no_grad():
                    rate_plain = time_encoder(call, make, b, args.repeats, device)
                encoder.train(False)
                row.append(f"{rate_plain:.2f}")
            rows.append(row)
            print(f"{name}: {rate:.2f} clips/s", flush=True)
            del encoder
    threads = torch.get_num_threads()
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {threads} threads"
    print(f"\n{dev}, batch {b}, best of {args.repeats}, float32\n")
    header = ["encoder", "input", "clips/s"] + (["clips/s unfused BN"] if args.compare_unfused else [])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
