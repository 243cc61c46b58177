"""Command-line flags of the sampling jobs (``sample``, ``audio2video``, ``video2audio``).

The original flag names (``py_scripts/multimodal_sample_sr.py`` and friends) plus ``--steps`` / ``--sr_steps``
(DPM-Solver step counts), the DPM-Solver settings ``--order``, ``--skip_type``, ``--solver_method``,
``--solver_type``, ``--denoise_to_zero`` (defaults: MM-Diffusion's), ``--sr_batch_size``, ``--skip_steps``,
``--progress``; for the conditional jobs ``--condition_mode auto`` and an unset ``--guidance_scale`` are made
concrete per checkpoint (:mod:`.condition_settings`). Model flags come from
:mod:`.flags` (and ``--config NAME``); flags saved by the training run next to a checkpoint fill in every model
flag not given on the command line (see :func:`checkpoint_args`).
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
from typing import Any, Dict, Optional, Sequence

from ..diffusion import METHODS
from ..cli import flags
from ..diffusion.samplers import SKIP_TYPES, SOLVER_METHODS, SOLVER_TYPES
from ..runs.locate import find_run_config
from .condition_settings import CONDITION_MODE_CHOICES

__all__ = ["JOBS", "sample_defaults", "create_parser", "parse_sample_args", "explicit_flags", "checkpoint_args",
           "finalize_args"]

JOBS = ("sample", "audio2video", "video2audio")

# Training flags that describe how a run trained, not what it built: never taken from a run's JSON.
NOT_FROM_RUN = {"timestep_respacing", "sr_timestep_respacing", "use_fp16", "use_checkpoint", "dropout", "sr_dropout"}


def sample_defaults(job: str = "sample") -> Dict[str, Any]:
    """The job flags and their defaults (model / SR flags are added by :func:`create_parser`)."""
    if job not in JOBS:
        raise ValueError(f"unknown sampling job {job!r}; valid: {JOBS}")
    out = dict(
        multimodal_model_path="",
        model_path="",
        output_dir="",
        batch_size=4,
        all_save_num=16,
        sample_fn="dpm_solver",
        steps=20,
        order=0,
        skip_type="",
        solver_method="",
        solver_type="",
        denoise_to_zero=False,
        clip_denoised=True,
        save_type="mp4",
        video_fps=10.0,
        audio_fps=None,
        seed=42,
        devices=None,
        is_strict=True,
        skip_steps=0,
        search_dir="outputs",
        progress=True,
        class_id=-1,
    )
    if job != "video2audio":
        out.update(sr_model_path="", sr_sample_fn="dpm_solver", sr_steps=50, sr_batch_size=0, load_noise="")
    if job != "sample":
        out.update(ref_path="", classifier_scale=0.0, condition_mode="auto", guidance_scale=None,
                   sample_fn="ddpm" if job == "video2audio" else "dpm_solver")
    else:
        out.update(ref_path="", joint_guidance_scale=None)
    return out


def create_parser(job: str = "sample") -> argparse.ArgumentParser:
    """The argparse parser of a sampling job: job flags, model + diffusion flags, SR flags (not for video2audio)."""
    descriptions = {
        "sample": "Generate audio-video pairs (and super-resolve their frames) from a trained MM-Diffusion model.",
        "audio2video": "Zero-shot audio-to-video: generate videos for the audio of reference clips.",
        "video2audio": "Zero-shot video-to-audio: generate audio for the video of reference clips.",
    }
    parser = argparse.ArgumentParser(prog=f"python -m mm_diffusion.{job}", description=descriptions[job])
    flags.add_dict_to_argparser(parser, sample_defaults(job), types={"guidance_scale": float,
                                                                     "joint_guidance_scale": float},
                                choices={"condition_mode": CONDITION_MODE_CHOICES} if job != "sample" else None)
    flags.add_dict_to_argparser(parser, flags.model_and_diffusion_defaults())
    if job != "video2audio":
        flags.add_dict_to_argparser(parser, flags.sr_model_and_diffusion_defaults())
    flags.add_config_flag(parser)
    return parser


def explicit_flags(argv: Sequence[str]) -> set:
    """Names of the flags given on the command line (``--name value`` or ``--name=value``)."""
    out = set()
    for token in argv:
        if token.startswith("--") and len(token) > 2:
            out.add(token[2:].split("=", 1)[0])
    return out


def parse_sample_args(job: str, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse and validate the flags of ``job``; ``args.explicit`` holds the flags given on the command line."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = create_parser(job)
    args = flags.parse_args(parser, argv)
    args.job = job
    args.explicit = explicit_flags(argv)
    if args.config:
        args.explicit |= set(flags.config_to_flags(args.config))
    for name in ("sample_fn", "sr_sample_fn"):
        value = getattr(args, name, None)
        if value is not None and value.replace("-", "_") not in METHODS:
            parser.error(f"--{name} {value!r} is not a sampler; valid: {', '.join(METHODS)}")
    _check_solver_flags(parser, args)
    if args.save_type not in ("mp4", "gif"):
        parser.error(f"--save_type {args.save_type!r}: valid values are mp4, gif")
    for name in ("batch_size", "all_save_num", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if job != "video2audio" and args.sr_steps < 1:
        parser.error(f"--sr_steps must be >= 1, got {args.sr_steps}")
    if job != "sample" and args.classifier_scale < 0:
        parser.error(f"--classifier_scale must be >= 0 (0 = replacement), got {args.classifier_scale}")
    if args.model_path and not args.multimodal_model_path:
        args.multimodal_model_path = args.model_path
    return args


def _check_solver_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The DPM-Solver flags: 0 / '' keep the sampler's published setting."""
    if args.order not in (0, 1, 2, 3):
        parser.error(f"--order must be 1, 2 or 3 (0 = the sampler's default), got {args.order}")
    for name, valid in (("skip_type", SKIP_TYPES), ("solver_method", SOLVER_METHODS), ("solver_type", SOLVER_TYPES)):
        value = getattr(args, name)
        if value and value not in valid:
            parser.error(f"--{name} {value!r}: valid values are {', '.join(valid)} ('' = the sampler's default)")


def checkpoint_args(args: argparse.Namespace, checkpoint: str, sr: bool = False) -> argparse.Namespace:
    """``args`` completed from the training flags saved next to ``checkpoint``: every model / diffusion flag
    (SR flags with ``sr=True``), and ``video_fps`` / ``audio_fps``, that was not given on the command line (or by
    ``--config``) takes the run's value. Returns a copy; ``args.run_config`` is the JSON path used or None."""
    out = copy.copy(args)
    saved = find_run_config(checkpoint)
    out.run_config_found = saved is not None
    out.independent_t_prob = float((saved or {}).get("independent_t_prob") or 0.0)
    if not saved:
        return out
    keys = set(flags.sr_model_and_diffusion_defaults() if sr else flags.model_and_diffusion_defaults())
    keys |= {"video_fps", "audio_fps"} if not sr else set()
    for key in sorted(keys - NOT_FROM_RUN - set(args.explicit)):
        if key in saved and saved[key] is not None:
            setattr(out, key, saved[key])
    return out


def finalize_args(args: argparse.Namespace) -> argparse.Namespace:
    """Parse list flags, infer ``audio_fps`` when not given, and pick the default output folder."""
    args.video_size = [int(v) for v in flags.number_list(args.video_size)]
    args.audio_size = [int(v) for v in flags.number_list(args.audio_size)]
    if len(args.video_size) != 4 or len(args.audio_size) != 2:
        raise ValueError(f"--video_size needs F,C,H,W and --audio_size C,L; got {args.video_size} and {args.audio_size}")
    if args.audio_fps in (None, "", "None") or float(args.audio_fps) <= 0:  # 0: inferred, as training's flag
        args.audio_fps = flags.infer_audio_fps(args.video_size, args.audio_size, args.video_fps)
    args.audio_fps = int(args.audio_fps)
    if not args.output_dir:
        args.output_dir = os.path.join("samples", args.job)
    return args
