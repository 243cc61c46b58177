"""Pieces shared by ``python -m mm_diffusion.train`` and ``python -m mm_diffusion.image_sr_train``:
the training flags, output-folder checks, the run's ``config.json`` and building :class:`TrainConfig`.
"""
from __future__ import annotations

import os
import platform
from typing import Any, Dict, Mapping

import torch

from ..runs import dist
from ..runs.checkpoint import find_latest_checkpoint
from ..runs.ema import parse_ema_rates
from ..models.precision import resolve_precision
from ..runs.files import jsonable, write_json
from .loop import TrainConfig

__all__ = ["train_defaults", "check_output_dir", "write_run_config", "train_config_from_args"]


def train_defaults() -> Dict[str, Any]:
    """Training flags (original names first, then the additions)."""
    return dict(
        data_dir="",
        output_dir="outputs/train",
        schedule_sampler="uniform",
        lr=1e-4,
        weight_decay=0.0,
        lr_anneal_steps=0,
        batch_size=1,
        microbatch=-1,
        ema_rate="0.9999",
        log_interval=100,
        save_interval=10000,
        resume_checkpoint="",
        num_workers=0,
        devices="",
        seed=42,
        sample_fn="dpm_solver",
        # accepted for the published scripts, no effect here
        fp16_scale_growth=1e-3,
        use_db=False,
        save_type="mp4",
        # additions
        max_steps=0,
        lr_warmup_steps=0,
        grad_clip=0.0,
        compile=False,
        precision="auto",
        sample_interval=0,
        sample_num=2,
        sample_steps=10,
        max_nonfinite=5,
        synthetic_num=1024,
        hum_level=0.0,
        random_flip=True,
        progress=True,
    )


def check_output_dir(path: str) -> str:
    """Create ``path`` if needed and make sure this process can write into it.

    ``ValueError`` for an empty path, ``PermissionError`` naming the folder when it cannot be written.
    """
    if not path:
        raise ValueError("--output_dir is empty; pass a folder for checkpoints and logs, e.g. --output_dir outputs/run1")
    path = os.path.abspath(os.path.expanduser(path))
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, f".write_test_{os.getpid()}")
        with open(probe, "w") as handle:
            handle.write("ok")
        os.remove(probe)
    except OSError as err:
        raise PermissionError(f"--output_dir {path!r} is not writable ({err.strerror or err}); choose a folder you "
                              f"can write to") from None
    return path


def write_run_config(out_dir: str, payload: Mapping[str, Any], name: str = "config.json") -> str:
    """Write ``payload`` (plus versions) as JSON atomically on the main process; returns the path."""
    path = os.path.join(out_dir, name)
    if dist.is_main_process():
        data = dict(payload)
        data["versions"] = {"torch": torch.__version__, "python": platform.python_version()}
        write_json(path, jsonable(data), indent=2)
    return path


def train_config_from_args(args, output_dir: str, device: torch.device, use_fp16: bool) -> TrainConfig:
    """:class:`TrainConfig` from parsed flags (``ValueError`` for invalid values)."""
    return TrainConfig(
        output_dir=output_dir,
        batch_size=int(args.batch_size),
        microbatch=int(args.microbatch),
        lr=float(args.lr),
        weight_decay=float(args.weight_decay),
        lr_warmup_steps=int(args.lr_warmup_steps),
        lr_anneal_steps=int(args.lr_anneal_steps),
        grad_clip=float(args.grad_clip),
        ema_rates=parse_ema_rates(args.ema_rate),
        max_steps=int(args.max_steps),
        log_interval=int(args.log_interval),
        save_interval=int(args.save_interval),
        sample_interval=int(args.sample_interval),
        sample_num=int(args.sample_num),
        sample_steps=int(args.sample_steps),
        sample_method=str(args.sample_fn),
        schedule_sampler=str(args.schedule_sampler),
        precision=resolve_precision(args.precision, use_fp16, device),
        compile=bool(args.compile),
        seed=int(args.seed),
        max_nonfinite=int(args.max_nonfinite),
        progress=bool(args.progress),
        independent_t_prob=float(getattr(args, "independent_t_prob", 0.0)),
        loss_band_weights=str(getattr(args, "loss_band_weights", "") or ""),
        own_step_inputs=str(getattr(args, "own_step_inputs", "") or ""),
    )


def log_run_start(loop, plan, output_dir: str, description: str) -> None:
    """Rank 0's opening lines: what is trained, and whether this run resumes or starts over existing checkpoints."""
    if not dist.is_main_process():
        return
    loop.log.log(description)
    if plan is not None:
        loop.log.log(f"resumed {'exactly' if plan.exact else 'weights only'} from {plan.model_path} at step {loop.step}")
    elif find_latest_checkpoint(output_dir, complete_only=False) is not None:
        loop.log.log(f"warning: {output_dir} already holds checkpoints; this run starts from step 0 and "
                     f"overwrites them (pass --resume_checkpoint {output_dir} to continue instead)")
