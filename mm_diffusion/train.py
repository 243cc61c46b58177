"""Train the coupled audio-video U-Net: ``python -m mm_diffusion.train [flags]``.

Without ``--data_dir`` it trains on the built-in synthetic dataset (bouncing ball + tones). Flags keep
the original names (``--num_channels --cross_attention_windows --lr --batch_size ...``); ``--config NAME``
(``tiny``, ``small``, ``demo``, ``paper``) starts from a named model configuration. Launch on several
processes with ``mpiexec -n N python -m mm_diffusion.train ...`` or
``torchrun --nproc_per_node N -m mm_diffusion.train ...``. See docs/training.md.
"""
from __future__ import annotations

import argparse
import os
import warnings
from typing import Optional, Sequence

from .runs import dist
from .cli import flags
from .training.args import (
    check_output_dir, log_run_start, run_cli, train_config_from_args, train_defaults, write_run_config,
)
from .training.loop import TrainLoop, resolve_resume
from .training.tasks import AVTask
from .runs.rng import seed_everything

__all__ = ["create_argparser", "main"]


def create_argparser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mm_diffusion.train",
        description="Train MM-Diffusion's coupled U-Net on audio-video clips (default: the synthetic dataset).",
    )
    defaults = train_defaults()
    defaults.update(video_fps=10.0, audio_fps=0, drop_short_audio=False)
    flags.add_dict_to_argparser(parser, defaults)
    flags.add_dict_to_argparser(parser, flags.model_and_diffusion_defaults())
    flags.add_config_flag(parser)
    return parser


def _data_source(args) -> str:
    if not args.data_dir:
        return f"synthetic:{int(args.synthetic_num)}"
    text = os.path.expanduser(args.data_dir)
    if text == "synthetic" or text.startswith("synthetic:"):
        return text
    if not os.path.isdir(text):
        raise FileNotFoundError(f"--data_dir {args.data_dir!r} is not a folder; pass a folder of videos "
                                f"(searched recursively) or leave it out for the synthetic dataset")
    return text


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse flags, train, return the final step."""
    args = flags.parse_args(create_argparser(), argv)
    info = dist.setup_dist(args.devices or None)
    try:
        classes = None
        if flags.str2bool(args.class_cond):  # labels = sorted class folders; --num_classes follows them
            from .data.clip_index import folder_classes

            classes = folder_classes(_data_source(args), args.num_classes)
            args.num_classes = len(classes)
        model_kwargs = flags.model_kwargs_from_args(args)  # validates sizes before anything heavy
        video_size, audio_size = model_kwargs["video_size"], model_kwargs["audio_size"]
        inferred = flags.infer_audio_fps(video_size, audio_size, args.video_fps) if not args.audio_fps else None
        audio_fps = int(args.audio_fps) or inferred
        if args.audio_fps:
            expected = audio_size[-1] * float(args.video_fps) / video_size[0]
            if abs(expected - args.audio_fps) > 1e-6:
                warnings.warn(f"--audio_fps {args.audio_fps} makes {audio_size[-1]} samples last "
                              f"{audio_size[-1] / args.audio_fps:.3f} s but {video_size[0]} frames at {args.video_fps:g} fps "
                              f"last {video_size[0] / args.video_fps:.3f} s; use --audio_fps {expected:g} to match")
        source = _data_source(args)
        output_dir = check_output_dir(args.output_dir)
        plan = resolve_resume(args.resume_checkpoint)

        seed_everything(args.seed)
        model, diffusion = flags.create_model_and_diffusion(args)
        cfg = train_config_from_args(args, output_dir, info.device, flags.str2bool(args.use_fp16))
        if cfg.precision == "fp32" and model.use_fp16:
            model.use_fp16 = False  # --precision fp32 overrides the model's own autocast
        model.to(info.device)

        from .data import load_data

        data = load_data(data_dir=source, batch_size=cfg.batch_size, video_size=video_size, audio_size=audio_size,
                         video_fps=args.video_fps, audio_fps=audio_fps, random_flip=bool(args.random_flip),
                         rank=info.rank, world_size=info.world_size, num_workers=int(args.num_workers),
                         seed=int(args.seed), progress=bool(args.progress), hum_level=float(args.hum_level),
                         drop_short_audio=bool(args.drop_short_audio), class_cond=classes is not None)
        write_run_config(output_dir, {
            "job": "train", "args": vars(args), "model": model_kwargs,
            "diffusion": flags.diffusion_kwargs_from_args(args), "precision": cfg.precision,
            "audio_fps": audio_fps, "data": source, "world_size": info.world_size, "classes": classes,
            "resume": None if plan is None else {"exact": plan.exact, "path": plan.model_path},
        })
        task = AVTask(video_size, audio_size, args.video_fps, audio_fps)
        loop = TrainLoop(model, diffusion, data, task, cfg, resume=plan)
        n_params = sum(p.numel() for p in model.parameters())
        log_run_start(loop, plan, output_dir,
                      f"model: MultimodalUNet {n_params / 1e6:.2f}M parameters, video {video_size} at {args.video_fps:g} "
                      f"fps, audio {audio_size} at {audio_fps} Hz; data: {source}; output: {output_dir}")
        return loop.run()
    finally:
        dist.cleanup()


if __name__ == "__main__":
    run_cli(main)
