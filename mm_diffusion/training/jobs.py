"""The two training jobs: ``python -m mm_diffusion.train`` (the coupled audio-video U-Net) and
``python -m mm_diffusion.image_sr_train`` (the 64 -> 256 frame super-resolution U-Net).

Without ``--data_dir`` both train on the built-in synthetic dataset (bouncing ball + tones). Flags keep
the original names (``--num_channels --cross_attention_windows --lr --batch_size ...``); ``--config NAME``
starts from a named model configuration. Launch on several processes with ``mpiexec -n N python -m ...``
or ``torchrun --nproc_per_node N -m ...``. See docs/training.md.

Each job: parse the flags, set up the processes, build model / data / :class:`TrainLoop`, record the run's
``config.json``, train; it returns the final step.
"""
from __future__ import annotations

import argparse
import os
import warnings
from typing import Optional, Sequence

from ..cli import flags
from ..data.synthetic.spec import is_synthetic_spec
from ..runs import dist
from ..runs.rng import seed_everything
from .args import check_output_dir, log_run_start, train_config_from_args, train_defaults, write_run_config
from .loop import TrainLoop, resolve_resume
from .sr_data import sr_frames
from .tasks import AVTask, SRTask

__all__ = ["create_argparser", "create_sr_argparser", "train", "train_sr"]


# ---------------------------------------------------------------------------------------------- audio-video
def create_argparser() -> argparse.ArgumentParser:
    """Flags of ``python -m mm_diffusion.train``."""
    parser = argparse.ArgumentParser(
        prog="python -m mm_diffusion.train",
        description="Train MM-Diffusion's coupled U-Net on audio-video clips (default: the synthetic dataset).",
    )
    defaults = train_defaults()
    defaults.update(video_fps=10.0, audio_fps=0, drop_short_audio=False, independent_t_prob=0.0, loss_band_weights="",
                    own_step_inputs="")
    flags.add_dict_to_argparser(parser, defaults)
    flags.add_dict_to_argparser(parser, flags.model_and_diffusion_defaults())
    flags.add_config_flag(parser)
    return parser


def _data_source(args) -> str:
    """``--data_dir`` as ``load_data`` takes it: a folder, or a ``synthetic[:N]`` spec (empty: the default synthetic set)."""
    if not args.data_dir:
        return f"synthetic:{int(args.synthetic_num)}"
    text = os.path.expanduser(args.data_dir)
    if is_synthetic_spec(text):
        return text
    if not os.path.isdir(text):
        raise FileNotFoundError(f"--data_dir {args.data_dir!r} is not a folder; pass a folder of videos "
                                f"(searched recursively) or leave it out for the synthetic dataset")
    return text


def _audio_fps(args, video_size, audio_size) -> int:
    """``--audio_fps``, or (0) the rate that makes the audio last as long as the frames; warns on a mismatch."""
    if not args.audio_fps:
        return flags.infer_audio_fps(video_size, audio_size, args.video_fps)
    expected = audio_size[-1] * float(args.video_fps) / video_size[0]
    if abs(expected - args.audio_fps) > 1e-6:
        warnings.warn(f"--audio_fps {args.audio_fps} makes {audio_size[-1]} samples last "
                      f"{audio_size[-1] / args.audio_fps:.3f} s but {video_size[0]} frames at {args.video_fps:g} fps "
                      f"last {video_size[0] / args.video_fps:.3f} s; use --audio_fps {expected:g} to match")
    return int(args.audio_fps)


def _build_model(args, create, info, output_dir):
    """``(model, diffusion, TrainConfig)`` on the process's device (``--precision fp32`` turns the model's autocast off)."""
    seed_everything(args.seed)
    model, diffusion = create(args)
    cfg = train_config_from_args(args, output_dir, info.device, flags.str2bool(args.use_fp16))
    if cfg.precision == "fp32" and model.use_fp16:
        model.use_fp16 = False
    return model.to(info.device), diffusion, cfg


def _class_folders(args, data_dir: str, flag: str):
    """With ``--class_cond`` / ``--sr_class_cond True``: the sorted class-folder names of ``data_dir``, and
    ``args.num_classes`` / ``args.sr_num_classes`` set to their count (None when the flag is off)."""
    count = "sr_num_classes" if flag == "sr_class_cond" else "num_classes"
    if not flags.str2bool(getattr(args, flag)):
        return None
    from ..data.clip_index import folder_classes

    classes = folder_classes(data_dir, getattr(args, count))
    setattr(args, count, len(classes))
    return classes


def _resume_record(plan) -> Optional[dict]:
    return None if plan is None else {"exact": plan.exact, "path": plan.model_path}


def train(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m mm_diffusion.train``: parse ``argv``, train, return the final step."""
    args = flags.parse_args(create_argparser(), argv)
    info = dist.setup_dist(args.devices or None)
    try:
        classes = _class_folders(args, _data_source(args), "class_cond")  # labels = sorted class folders
        model_kwargs = flags.model_kwargs_from_args(args)  # validates sizes before anything heavy
        video_size, audio_size = model_kwargs["video_size"], model_kwargs["audio_size"]
        audio_fps = _audio_fps(args, video_size, audio_size)
        source = _data_source(args)
        output_dir = check_output_dir(args.output_dir)
        plan = resolve_resume(args.resume_checkpoint)
        model, diffusion, cfg = _build_model(args, flags.create_model_and_diffusion, info, output_dir)

        from ..data import load_data

        data = load_data(data_dir=source, batch_size=cfg.batch_size, video_size=video_size, audio_size=audio_size,
                         video_fps=args.video_fps, audio_fps=audio_fps, random_flip=bool(args.random_flip),
                         rank=info.rank, world_size=info.world_size, num_workers=int(args.num_workers),
                         seed=int(args.seed), progress=bool(args.progress), hum_level=float(args.hum_level),
                         drop_short_audio=bool(args.drop_short_audio), class_cond=classes is not None)
        write_run_config(output_dir, {
            "job": "train", "args": vars(args), "model": model_kwargs,
            "diffusion": flags.diffusion_kwargs_from_args(args), "precision": cfg.precision,
            "audio_fps": audio_fps, "data": source, "world_size": info.world_size, "classes": classes,
            "resume": _resume_record(plan),
        })
        loop = TrainLoop(model, diffusion, data, AVTask(video_size, audio_size, args.video_fps, audio_fps), cfg,
                         resume=plan)
        n_params = sum(p.numel() for p in model.parameters())
        log_run_start(loop, plan, output_dir,
                      f"model: MultimodalUNet {n_params / 1e6:.2f}M parameters, video {video_size} at {args.video_fps:g} "
                      f"fps, audio {audio_size} at {audio_fps} Hz; data: {source}; output: {output_dir}")
        return loop.run()
    finally:
        dist.cleanup()


# ---------------------------------------------------------------------------------------------- super-resolution
def create_sr_argparser() -> argparse.ArgumentParser:
    """Flags of ``python -m mm_diffusion.image_sr_train``."""
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


def train_sr(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m mm_diffusion.image_sr_train``: parse ``argv``, train, return the final step."""
    args = flags.parse_args(create_sr_argparser(), argv)
    info = dist.setup_dist(args.devices or None)
    try:
        classes = _class_folders(args, args.data_dir, "sr_class_cond")
        model_kwargs = flags.sr_model_kwargs_from_args(args)
        output_dir = check_output_dir(args.output_dir)
        plan = resolve_resume(args.resume_checkpoint)
        frames = sr_frames(args.data_dir, int(args.large_size), video_fps=float(args.video_fps),
                           frame_gap=int(args.frame_gap), synthetic_num=int(args.synthetic_num),
                           synthetic_frames=int(args.synthetic_frames), seed=int(args.seed),
                           random_flip=bool(args.random_flip), progress=bool(args.progress),
                           class_cond=classes is not None)
        model, diffusion, cfg = _build_model(args, flags.create_sr_model_and_diffusion, info, output_dir)

        from ..data import load_data

        data = load_data(dataset=frames, batch_size=cfg.batch_size, video_size=(1, 3, args.large_size, args.large_size),
                         audio_size=(1, 1), rank=info.rank, world_size=info.world_size,
                         num_workers=int(args.num_workers), seed=int(args.seed))
        write_run_config(output_dir, {
            "job": "image_sr_train", "args": vars(args), "model": model_kwargs,
            "diffusion": flags.diffusion_kwargs_from_args(args, sr=True), "precision": cfg.precision,
            "world_size": info.world_size, "frames": len(frames), "classes": classes, "resume": _resume_record(plan),
        })
        loop = TrainLoop(model, diffusion, data, SRTask(args.large_size, args.small_size), cfg, resume=plan)
        n_params = sum(p.numel() for p in model.parameters())
        log_run_start(loop, plan, output_dir,
                      f"model: SuperResModel {n_params / 1e6:.2f}M parameters, {args.small_size} -> {args.large_size}; "
                      f"{len(frames)} training frames; output: {output_dir}")
        return loop.run()
    finally:
        dist.cleanup()
