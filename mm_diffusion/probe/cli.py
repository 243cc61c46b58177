"""``python -m mm_diffusion.probe coupling``: the swap test (see :mod:`.coupling`) on a checkpoint and held-out clips."""
from __future__ import annotations

import argparse
import time
from typing import Dict, List, Optional, Sequence

import torch

from .coupling import DEFAULT_TIMESTEPS, coupling_probe
from .report import format_rows, write_json

__all__ = ["create_parser", "fixed_offset_model_fn", "load_clips", "main"]

HELD_OUT_SEED = 1_000_003  # the demo's held-out synthetic clips


def create_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mm_diffusion.probe",
                                     description="Research probes of a trained coupled U-Net.")
    sub = parser.add_subparsers(dest="probe", required=True)
    p = sub.add_parser("coupling", help="the swap test: does each modality's prediction use the other modality?",
                       description="For each t: noise held-out clips, predict, swap the other modality for another "
                                   "clip's (same noise) and predict again; print x0/eps errors and the relative "
                                   "change of the prediction in both directions.")
    p.add_argument("--checkpoint", default="", help="coupled U-Net weights with its flags in <name>.json or "
                                                    "config.json beside it (default: the shipped demo model)")
    p.add_argument("--data_dir", default="synthetic",
                   help="held-out clips: 'synthetic' (the demo's held-out synthetic clips, dataset seed "
                        f"--data_seed), synthetic:N[:SEED], or a folder of videos (default: synthetic)")
    p.add_argument("--data_seed", type=int, default=HELD_OUT_SEED,
                   help=f"dataset seed of --data_dir synthetic (default: {HELD_OUT_SEED})")
    p.add_argument("--num_clips", type=int, default=16, help="clips in the test batch (default: 16, >= 2)")
    p.add_argument("--t", default=",".join(str(t) for t in DEFAULT_TIMESTEPS),
                   help=f"comma-separated diffusion steps (default: {','.join(map(str, DEFAULT_TIMESTEPS))})")
    p.add_argument("--other_t", type=int, default=None,
                   help="noise level of the swapped (conditioning) modality, e.g. 0 = given clean (per-modality "
                        "timesteps; default: the same t as the scored modality)")
    p.add_argument("--swap", choices=("clip", "roll"), default="clip",
                   help="what replaces the other modality: 'clip' = another clip's (does the prediction use it at "
                        "all?), 'roll' = the clip's own shifted in time by --roll_frames (does it use the timing: "
                        "the synchrony probe; default: clip)")
    p.add_argument("--roll_frames", type=int, default=None,
                   help="frames of the --swap roll shift (cyclic; the audio by the same duration; default: half "
                        "the clip)")
    p.add_argument("--seed", type=int, default=0, help="noise and RS-MMA offset seed (default: 0)")
    p.add_argument("--out", default="", help="write the rows and settings as JSON to this file")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    return parser


def fixed_offset_model_fn(model: torch.nn.Module, seed: int):
    """``fn(x, t)`` over AV pairs whose RS-MMA window offsets are the same at every call (drawn from ``seed``), so
    the true and the swapped inputs meet the same windows."""

    def fn(x: Dict[str, torch.Tensor], t) -> Dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(int(seed))
        video, audio = model(x["video"], x["audio"], t, generator=gen)
        return {"video": video, "audio": audio}

    return fn


def load_clips(data_dir: str, num: int, info: dict, data_seed: int) -> Dict[str, torch.Tensor]:
    """``num`` clips ``{"video": [num, F, C, H, W], "audio": [num, C, L]}`` with the checkpoint's sizes and rates."""
    from ..sampling.conditional import ConditionSource
    from ..demo.run import held_out_clips

    if data_dir in ("", "synthetic"):
        return held_out_clips(num, info, data_seed)
    source = ConditionSource(data_dir, info["video_size"], info["audio_size"], info["fps"], info["audio_rate"],
                             progress=False)
    if len(source) < num:
        raise ValueError(f"--data_dir {data_dir!r} has {len(source)} clips, fewer than --num_clips {num}")
    return source.batch(list(range(num)))


def _timesteps(text: str) -> List[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--t must be comma-separated integers, got {text!r}") from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = create_parser().parse_args(argv)
    if args.num_clips < 2:
        raise SystemExit(f"--num_clips must be >= 2, got {args.num_clips}")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    from ..demo.run import load_demo_model, resolve_checkpoint

    checkpoint = resolve_checkpoint(args.checkpoint)
    model, diffusion, info = load_demo_model(checkpoint)
    clips = load_clips(args.data_dir, args.num_clips, info, args.data_seed)
    start = time.time()
    rows = coupling_probe(fixed_offset_model_fn(model, args.seed), diffusion, clips, _timesteps(args.t),
                          seed=args.seed, other_t=args.other_t, swap=args.swap, roll_frames=args.roll_frames)
    print(f"coupling probe ({rows[0]['swap']} swap): {checkpoint}, {args.num_clips} clips from {args.data_dir}, "
          f"{time.time() - start:.1f} s")
    print(format_rows(rows))
    if args.out:
        payload = dict(checkpoint=checkpoint, data_dir=args.data_dir, data_seed=args.data_seed,
                       num_clips=args.num_clips, seed=args.seed, other_t=args.other_t,
                       swap=args.swap, roll_frames=args.roll_frames, data_scale=getattr(diffusion, "data_scale", None), rows=rows)
        print(f"wrote {write_json(args.out, payload)}")
    return 0
