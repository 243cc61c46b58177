"""The sampling jobs end to end: checkpoints -> models -> batches -> files, across ranks, resumable.

:func:`run` is what ``python -m mm_diffusion.sample`` / ``.audio2video`` / ``.video2audio`` call. Per checkpoint
it counts the complete samples already on disk (rank 0, broadcast), shares the missing indices round-robin
between the ranks, generates them batch by batch (and super-resolves their frames when an SR model is given)
and writes them (see :mod:`.sample_layout`). No collective runs inside the batch loop, so ranks with unequal
shares never wait on each other until the final barrier.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable, Dict, List, Optional

import torch
from tqdm.auto import tqdm

from ..runs import dist
from ..cli import flags
from ..diffusion.samplers import solver_overrides
from ..runs.checkpoint import load_model_weights
from ..models.precision import inference_model, resolve_precision
from .conditional import ConditionSource, generate_conditional, known_modality
from ..runs.log import RunLog
from ..runs.locate import (default_model_path, default_sr_model_path, find_recommended_sampling, model_name,
                           resolve_model_paths)
from .args import checkpoint_args, finalize_args, parse_sample_args
from .condition_settings import resolve_condition_mode, resolve_guidance_scale, resolve_joint_guidance_scale
from .generate import generate_av
from .layout import OutputLayout, conditional_products, plan_batches, sampler_prefix, unconditional_products
from .writer import write_conditional, write_unconditional
from .sr_stage import SRStage, load_sr_noise

__all__ = ["run", "main", "sample", "audio2video", "video2audio", "load_multimodal", "load_sr"]


def _model_key(args: argparse.Namespace) -> tuple:
    kwargs = flags.model_kwargs_from_args(args)
    diff = flags.diffusion_kwargs_from_args(args)
    return repr(sorted(kwargs.items())), repr(sorted(diff.items()))


def load_multimodal(args: argparse.Namespace, checkpoint: str, device: torch.device, log: Callable[[str], None]):
    """``(model, diffusion)`` built from ``args`` with ``checkpoint``'s weights, in eval mode on ``device``.

    ``--is_strict True``: a mismatching file raises ``ValueError`` listing missing / unexpected / mis-shaped keys;
    ``False``: loads what fits and logs every skipped key."""
    model, diffusion = flags.create_model_and_diffusion(args)
    report = load_model_weights(model, checkpoint, strict=flags.str2bool(args.is_strict), log=log)
    log(f"loaded {len(report.loaded)} tensors from {checkpoint}")
    return _for_inference(model.to(device).eval(), args, device), diffusion


def load_sr(args: argparse.Namespace, checkpoint: str, device: torch.device, log: Callable[[str], None]):
    """``(sr_model, sr_diffusion)`` from the ``sr_`` flags (completed by the SR run's saved flags) and ``checkpoint``."""
    sr_args = checkpoint_args(args, checkpoint, sr=True)
    model, diffusion = flags.create_sr_model_and_diffusion(sr_args)
    report = load_model_weights(model, checkpoint, strict=flags.str2bool(args.is_strict), log=log)
    log(f"loaded {len(report.loaded)} SR tensors from {checkpoint}")
    return _for_inference(model.to(device).eval(), args, device), diffusion


def _for_inference(model, args: argparse.Namespace, device: torch.device):
    """``--use_fp16 True``: a bf16 copy of the network on the CPU, autocast on GPUs (fp32 otherwise)."""
    return inference_model(model, resolve_precision("auto", flags.str2bool(args.use_fp16), device))


class _LazySR:
    """The SR stage of a job, its model loaded on first use (``--sr_model_path`` empty: disabled)."""

    def __init__(self, args, device, log):
        self.path = getattr(args, "sr_model_path", "") or ""
        if self.path == "auto":
            self.path = default_sr_model_path(args.search_dir) or ""
            log(f"--sr_model_path auto: {self.path or 'no SR checkpoint found, skipping super-resolution'}")
        if self.path and not os.path.isfile(self.path):
            raise FileNotFoundError(f"--sr_model_path {self.path!r} does not exist (leave it empty to skip the "
                                    f"super-resolution stage)")
        self.device, self.log, self.stage = device, log, None

    @property
    def enabled(self) -> bool:
        return bool(self.path)

    def __call__(self, args, video: torch.Tensor, indices: List[int]) -> torch.Tensor:
        if self.stage is None:
            model, diffusion = load_sr(args, self.path, self.device, self.log)
            shared = None
            if args.load_noise:
                shared = load_sr_noise(args.load_noise, args.video_size[1], int(model.image_size))
            self.stage = SRStage(model, diffusion, large_size=int(model.image_size), method=args.sr_sample_fn,
                                 steps=int(args.sr_steps), seed=int(args.seed), shared_noise=shared,
                                 frame_batch=int(args.sr_batch_size), clip_denoised=flags.str2bool(args.clip_denoised),
                                 device=self.device, class_id=int(args.class_id))
        return self.stage(video, indices)


def _checkpoints(args, log) -> List[str]:
    spec = args.multimodal_model_path
    if not spec:
        path = default_model_path(args.search_dir)
        log(f"no --multimodal_model_path given: sampling from {path}")
        return [path]
    return resolve_model_paths(spec, int(args.skip_steps))


def run(args: argparse.Namespace) -> Dict[str, Any]:
    """Run a parsed sampling job (``args.job`` in ``sample``, ``audio2video``, ``video2audio``).

    Returns ``{"models": {checkpoint: {"root", "existing", "made", "seconds"}}, "output_dir"}`` (this rank's
    counts for ``made``)."""
    info = dist.setup_dist(args.devices)
    device = info.device
    if not args.output_dir:
        args.output_dir = os.path.join("samples", args.job)
    log = RunLog(args.output_dir, dist.is_main_process(), progress=False, progress_csv=False).log
    checkpoints = _checkpoints(args, log)
    log(f"{args.job}: {len(checkpoints)} checkpoint(s), {args.all_save_num} samples each, {info.world_size} "
        f"rank(s) on {device}, sampler {args.sample_fn}")
    conditional = args.job != "sample"
    summary: Dict[str, Any] = {"models": {}, "output_dir": args.output_dir}
    source, source_key = None, None
    sr = _LazySR(args, device, log)
    current_key, model, diffusion = None, None, None
    for ckpt in checkpoints:
        margs = finalize_args(checkpoint_args(args, ckpt))
        recommended = find_recommended_sampling(ckpt)
        if not conditional:
            margs.joint_guidance_scale, setting_from = resolve_joint_guidance_scale(
                args.joint_guidance_scale, margs.independent_t_prob, recommended)
            if margs.joint_guidance_scale != 1.0 or setting_from != "default":
                log(f"{ckpt}: joint guidance (audio by video) {margs.joint_guidance_scale:g} ({setting_from})")
        else:
            margs.condition_mode = resolve_condition_mode(args.condition_mode, margs.independent_t_prob,
                                                         float(args.classifier_scale))
            margs.guidance_scale, setting_from = resolve_guidance_scale(args.guidance_scale, margs.condition_mode,
                                                                        recommended)
            log(f"{ckpt}: conditioning {margs.condition_mode} (--condition_mode {args.condition_mode}), guidance "
                f"scale {margs.guidance_scale:g} ({setting_from})")
        frames = margs.video_size[0]
        with_sr = sr.enabled
        products = (conditional_products if conditional else unconditional_products)(frames, margs.save_type, with_sr)
        layout = OutputLayout(os.path.join(args.output_dir, model_name(ckpt)), sampler_prefix(margs.sample_fn), products)
        missing = dist.broadcast_object(layout.missing(int(margs.all_save_num)) if info.is_main else None)
        existing = int(margs.all_save_num) - len(missing)
        log(f"{ckpt}: {existing} of {margs.all_save_num} samples already in {layout.root}; making {len(missing)}")
        stats = {"root": layout.root, "existing": existing, "made": 0, "seconds": 0.0}
        summary["models"][ckpt] = stats
        if not missing:
            continue
        key = _model_key(margs) + (ckpt,)
        if key != current_key:
            model, diffusion = load_multimodal(margs, ckpt, device, log)
            current_key = key
        if conditional and source_key != (margs.ref_path, tuple(margs.video_size), tuple(margs.audio_size)):
            source_key = (margs.ref_path, tuple(margs.video_size), tuple(margs.audio_size))
            source = ConditionSource(margs.ref_path, margs.video_size, margs.audio_size, margs.video_fps,
                                     margs.audio_fps, progress=flags.str2bool(margs.progress))
        layout.make_dirs()
        batches = plan_batches(missing, int(margs.batch_size), info.rank, info.world_size)
        start = time.time()
        show = flags.str2bool(margs.progress) and info.is_main
        bar = tqdm(total=sum(len(b) for b in batches), desc=f"samples (rank {info.rank})", disable=not show,
                   unit="sample", dynamic_ncols=True)
        for indices in batches:
            _one_batch(margs, model, diffusion, sr, source, layout, indices, device, show)
            stats["made"] += len(indices)
            bar.update(len(indices))
        bar.close()
        dist.barrier()
        stats["seconds"] = time.time() - start
        made_total = len(missing)
        log(f"{ckpt}: wrote {made_total} samples to {layout.root} in {stats['seconds']:.1f} s "
            f"({stats['seconds'] * info.world_size / max(made_total, 1):.2f} s per sample per rank)")
    log("sampling complete")
    return summary


def _one_batch(args, model, diffusion, sr, source, layout, indices, device, progress) -> None:
    seed = int(args.seed)
    common = dict(method=args.sample_fn, steps=int(args.steps), seed=seed, device=device,
                  clip_denoised=flags.str2bool(args.clip_denoised), progress=progress, class_id=int(args.class_id),
                  solver=solver_overrides(args.order, args.skip_type, args.solver_method, args.solver_type,
                                          flags.str2bool(args.denoise_to_zero)))
    if source is None:
        av = generate_av(model, diffusion, indices, video_size=args.video_size, audio_size=args.audio_size,
                         joint_guidance_scale=float(args.joint_guidance_scale), **common)
        reference = None
    else:
        reference = source.batch(indices)
        av = generate_conditional(model, diffusion, {k: v.to(device) for k, v in reference.items()}, indices,
                                  mode=args.job, classifier_scale=float(args.classifier_scale),
                                  condition_mode=str(args.condition_mode), guidance_scale=float(args.guidance_scale),
                                  **common)
    sr_video = sr(args, av["video"], indices) if sr.enabled else None
    for i, k in enumerate(indices):
        extra = dict(video_fps=float(args.video_fps), audio_fps=int(args.audio_fps),
                     sr_video=None if sr_video is None else sr_video[i])
        if reference is None:
            write_unconditional(layout, k, av["video"][i], av["audio"][i], **extra)
        else:
            write_conditional(layout, k, reference["video"][i], reference["audio"][i], av["video"][i], av["audio"][i],
                              **extra)


def main(job: str, argv: Optional[List[str]] = None) -> Dict[str, Any]:
    """Parse ``argv`` for ``job`` and run it; returns :func:`run`'s summary."""
    args = parse_sample_args(job, argv)
    if job != "sample":
        known_modality(job)
    had_group = torch.distributed.is_available() and torch.distributed.is_initialized()
    try:
        return run(args)
    finally:
        if not had_group and not dist.is_distributed():
            dist.cleanup()  # a single-process call leaves no global set-up behind


def sample(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    """``python -m mm_diffusion.sample``: unconditional generation; returns the run summary."""
    return main("sample", argv)


def audio2video(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    """``python -m mm_diffusion.audio2video``: the audio of each reference clip kept, the video generated."""
    return main("audio2video", argv)


def video2audio(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    """``python -m mm_diffusion.video2audio``: the video of each reference clip kept, the audio generated."""
    return main("video2audio", argv)
