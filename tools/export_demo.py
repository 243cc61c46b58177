"""Export one checkpoint of a training run as the shipped demo model.

    python tools/export_demo.py outputs/demo_train [--step N] [--ema RATE] [--out_dir mm_diffusion/assets]
                                [--recommend_steps N] [--recommend_guidance 2] [--recommend_joint_guidance 2]

writes, into ``--out_dir``:

* ``demo.pt``: the weights as a plain float32 state dict (the EMA weights of ``--ema``, default the run's
  largest rate; ``--ema model`` takes the raw weights), loaded back with ``torch.load(weights_only=True)``;
* ``demo.json``: the run's training flags (``{"args": ...}``, as in the run's ``config.json``) with the
  frame rate and audio rate written out, plus where the weights came from and their SHA-256, and (with
  ``--recommend_steps`` / ``--recommend_guidance``) the ``recommended_sampling`` the demo and the conditional
  jobs use when their flags are left out;
* ``demo_progress.csv``: the run's ``progress.csv`` (the training curve of the shipped weights).

The weights are checked before anything is written: they must load strictly into the architecture the flags
describe. Prints the SHA-256 and size to put in the model card (``mm_diffusion/assets/MODEL_CARD.md``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from mm_diffusion.cli.flags import create_model_and_diffusion, run_rates  # noqa: E402
from mm_diffusion.runs.checkpoint import (  # noqa: E402
    file_sha256, find_latest_checkpoint, list_checkpoint_steps, load_model_weights, load_state_dict_file, save_checkpoint)
from mm_diffusion.runs.files import write_json  # noqa: E402
from mm_diffusion.runs.locate import RECOMMENDED_SAMPLING_KEY, find_recommended_sampling  # noqa: E402

MAX_BYTES = 25 * 2 ** 20


def pick_weights(run_dir: str, step: int, ema: str):
    """``(path, step, source)`` of the weights to export; ValueError naming what is missing."""
    if step:
        sets = [s for s in list_checkpoint_steps(run_dir) if s.step == step]
        if not sets:
            raise ValueError(f"{run_dir}: no complete checkpoint of step {step}")
        chosen = sets[0]
    else:
        chosen = find_latest_checkpoint(run_dir)
        if chosen is None:
            raise ValueError(f"{run_dir}: no complete checkpoint (model######.pt with its opt######.pt)")
    if ema == "model":
        return chosen.model, chosen.step, "model"
    if not ema:
        if not chosen.ema:
            return chosen.model, chosen.step, "model"
        ema = max(chosen.ema, key=float)
    path = chosen.ema_path(ema)
    if path is None:
        raise ValueError(f"{run_dir}: step {chosen.step} has no EMA {ema} weights (has: {sorted(chosen.ema)})")
    return path, chosen.step, f"ema_{ema}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", help="training output folder (config.json, checkpoints, progress.csv)")
    p.add_argument("--step", type=int, default=0, help="checkpoint step (default: the newest complete one)")
    p.add_argument("--ema", default="", help="EMA rate to export, or 'model' for the raw weights "
                                             "(default: the run's largest EMA rate)")
    p.add_argument("--out_dir", default=os.path.join(REPO, "mm_diffusion", "assets"), help="where to write")
    p.add_argument("--name", default="demo", help="file stem (default: demo)")
    p.add_argument("--recommend_steps", type=int, default=0,
                   help="DPM-Solver steps to recommend in the JSON (0: none; the demo then uses 20)")
    p.add_argument("--recommend_joint_guidance", type=float, default=None,
                   help="unconditional joint guidance (the audio guided by the video) to recommend (default: none)")
    p.add_argument("--recommend_guidance", type=float, default=None,
                   help="cross-modal guidance scale to recommend for clean conditioning (default: none, i.e. 1)")
    args = p.parse_args(argv)

    with open(os.path.join(args.run_dir, "config.json"), encoding="utf-8") as handle:
        run_config = json.load(handle)
    flags = dict(run_config["args"])
    flags["video_fps"], flags["audio_fps"] = run_rates(flags)
    path, step, source = pick_weights(args.run_dir, args.step, args.ema)
    state = {k: v.detach().to(torch.float32).clone().contiguous() if v.is_floating_point() else v.clone()
             for k, v in load_state_dict_file(path).items()}
    model, _ = create_model_and_diffusion(flags)
    load_model_weights(model, state, strict=True)

    os.makedirs(args.out_dir, exist_ok=True)
    weights = os.path.join(args.out_dir, f"{args.name}.pt")
    save_checkpoint(state, weights)
    size = os.path.getsize(weights)
    if size > MAX_BYTES:
        raise SystemExit(f"{weights} is {size / 2 ** 20:.1f} MiB, over the 25 MiB limit for shipped weights")
    digest = file_sha256(weights)
    doc = {"args": flags, "job": run_config.get("job", "train"),
           "source": {"run": os.path.basename(os.path.normpath(args.run_dir)), "step": step, "weights": source,
                      "file": os.path.basename(path)},
           "sha256": digest, "parameters": sum(v.numel() for v in state.values() if v.is_floating_point())}
    recommended = {}
    if args.recommend_steps:
        recommended["steps"] = int(args.recommend_steps)
    if args.recommend_guidance is not None:
        recommended["guidance_scale"] = float(args.recommend_guidance)
    if args.recommend_joint_guidance is not None:
        recommended["joint_guidance_scale"] = float(args.recommend_joint_guidance)
    if recommended:
        doc[RECOMMENDED_SAMPLING_KEY] = recommended
    meta = os.path.join(args.out_dir, f"{args.name}.json")
    write_json(meta, doc, indent=1, newline=True)
    find_recommended_sampling(weights)  # the entry must read back (ValueError otherwise)
    progress = os.path.join(args.run_dir, "progress.csv")
    if os.path.isfile(progress):
        shutil.copyfile(progress, os.path.join(args.out_dir, f"{args.name}_progress.csv"))
    print(f"wrote {weights} ({size / 2 ** 20:.2f} MiB, {source} of step {step})\nsha256 {digest}\nwrote {meta}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
