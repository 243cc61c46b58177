"""Train the 64->256 super-resolution U-Net on video frames: ``python -m mm_diffusion.image_sr_train [flags]``.

Frames are drawn from the videos under ``--data_dir`` (one every ``--frame_gap`` frames at
``--video_fps``), or from the synthetic dataset without it; the low-resolution input is the frame
downsampled to ``--small_size`` (bicubic, antialiased). ``--resume_checkpoint`` also accepts
guided-diffusion's ``64_256_upsampler.pt`` to fine-tune from. Flags keep the original ``sr_`` names;
``--config sr_tiny`` / ``sr_paper`` start from a named configuration. See docs/training.md.
"""
from __future__ import annotations

import argparse
from typing import Optional, Sequence

from .runs import dist
from .cli import flags
from .runs.rng import seed_everything
from .training.sr_data import sr_frames
from .training.args import (
    check_output_dir, log_run_start, run_cli, train_config_from_args, train_defaults, write_run_config,
)
from .training.loop import TrainLoop, resolve_resume
from .training.tasks import SRTask

__all__ = ["create_argparser", "main"]


def create_argparser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mm_diffusion.image_sr_train",
        description="Train the image super-resolution U-Net on video frames (default: the synthetic dataset).",
    )
    defaults = train_defaults()
    defaults.pop("hum_level")  # synthetic audio option; SR training reads frames only
    defaults.update(output_dir="outputs/sr_train", video_fps=10.0, frame_gap=1, synthetic_frames=4)
    flags.add_dict_to_argparser(parser, defaults)
    flags.add_dict_to_argparser(parser, flags.sr_model_and_diffusion_defaults())
    flags.add_config_flag(parser)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse flags, train, return the final step."""
    args = flags.parse_args(create_argparser(), argv)
    info = dist.setup_dist(args.devices or None)
    try:
        classes = None
        if flags.str2bool(args.sr_class_cond):  # labels = sorted class folders; --sr_num_classes follows them
            from .data.clip_index import folder_classes

            classes = folder_classes(args.data_dir, args.sr_num_classes)
            args.sr_num_classes = len(classes)
        model_kwargs = flags.sr_model_kwargs_from_args(args)
        output_dir = check_output_dir(args.output_dir)
        plan = resolve_resume(args.resume_checkpoint)
        frames = sr_frames(args.data_dir, int(args.large_size), video_fps=float(args.video_fps),
                           frame_gap=int(args.frame_gap), synthetic_num=int(args.synthetic_num),
                           synthetic_frames=int(args.synthetic_frames), seed=int(args.seed),
                           random_flip=bool(args.random_flip), progress=bool(args.progress),
                           class_cond=classes is not None)

        seed_everything(args.seed)
        model, diffusion = flags.create_sr_model_and_diffusion(args)
        cfg = train_config_from_args(args, output_dir, info.device, flags.str2bool(args.use_fp16))
        if cfg.precision == "fp32" and model.use_fp16:
            model.use_fp16 = False
        model.to(info.device)

        from .data import load_data

        data = load_data(dataset=frames, batch_size=cfg.batch_size, video_size=(1, 3, args.large_size, args.large_size),
                         audio_size=(1, 1), rank=info.rank, world_size=info.world_size,
                         num_workers=int(args.num_workers), seed=int(args.seed))
        write_run_config(output_dir, {
            "job": "image_sr_train", "args": vars(args), "model": model_kwargs,
            "diffusion": flags.diffusion_kwargs_from_args(args, sr=True), "precision": cfg.precision,
            "world_size": info.world_size, "frames": len(frames), "classes": classes,
            "resume": None if plan is None else {"exact": plan.exact, "path": plan.model_path},
        })
        loop = TrainLoop(model, diffusion, data, SRTask(args.large_size, args.small_size), cfg, resume=plan)
        n_params = sum(p.numel() for p in model.parameters())
        log_run_start(loop, plan, output_dir,
                      f"model: SuperResModel {n_params / 1e6:.2f}M parameters, {args.small_size} -> {args.large_size}; "
                      f"{len(frames)} training frames; output: {output_dir}")
        return loop.run()
    finally:
        dist.cleanup()


if __name__ == "__main__":
    run_cli(main)
