"""Which checkpoints to sample from, and the training flags saved next to them.

``--multimodal_model_path`` (alias ``--model_path``) is a file, a comma list of files, or a folder:

* a file: that checkpoint (``.pt`` / ``.pth`` / ``.safetensors``: a plain state dict, e.g. a published one);
* a comma list: each file in turn (every one must exist);
* a folder: every ``model{step}.pt`` and ``ema_{rate}_{step}.pt`` with ``step >= --skip_steps``, oldest first.

Empty: the newest checkpoint under ``outputs/`` (of the training runs of the coupled model: the run folder whose
newest checkpoint file was written last; of that step the EMA weights when there are any, else the model
weights), else the shipped demo checkpoint (``mm_diffusion/assets/demo.pt``), else an error that says to train
first. ``--sr_model_path auto`` likewise picks the newest ``image_sr_train`` run's checkpoint, else
``mm_diffusion/assets/demo_sr.pt``, else no super-resolution.

A training run stores its flags in a JSON file next to its checkpoints. :func:`find_run_config` reads it
(plain JSON, never code), so the sampler rebuilds the trained architecture without repeating its flags; a
shipped model's JSON may also say how to sample it (:func:`find_recommended_sampling`).
"""
from __future__ import annotations

import glob
import json
import os
from typing import Any, Dict, List, Optional, Tuple

from .checkpoint import list_checkpoint_steps, parse_checkpoint_name

__all__ = ["TRAIN_FIRST", "resolve_model_paths", "newest_checkpoint", "demo_checkpoint", "default_model_path",
           "default_sr_model_path", "run_job", "find_run_config", "find_recommended_sampling", "RECOMMENDED_SAMPLING_KEY", "model_name"]

TRAIN_FIRST = "train a model first: `bash ssh_scripts/multimodal_train.sh` (writes checkpoints under outputs/)"
ASSETS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")
WEIGHT_EXTS = (".pt", ".pth", ".safetensors")
# JSON names tried first in a checkpoint's folder; any other *.json holding model flags is accepted too.
CONFIG_NAMES = ("config.json", "args.json", "flags.json", "train_config.json", "train_args.json")
# The optional entry of a checkpoint's JSON with the sampling settings its trainer recommends (see
# find_recommended_sampling): key -> (type, lowest valid value).
RECOMMENDED_SAMPLING_KEY = "recommended_sampling"
RECOMMENDED_SAMPLING_TYPES = {"steps": (int, 1), "guidance_scale": (float, 0.0), "joint_guidance_scale": (float, 0.0)}


def _step_files(folder: str, skip_steps: int) -> List[str]:
    out = []
    for entry in list_checkpoint_steps(folder, complete_only=False):
        if entry.step < skip_steps:
            continue
        out.append(entry.model)
        out.extend(entry.ema.values())
    # EMA files of steps that have no model file are still weights worth sampling
    listed = set(out)
    for name in sorted(os.listdir(folder)):
        parsed = parse_checkpoint_name(name)
        if parsed and parsed[0] == "ema" and parsed[1] >= skip_steps:
            path = os.path.join(folder, name)
            if path not in listed:
                out.append(path)
    key = {p: (parse_checkpoint_name(p)[1], os.path.basename(p)) for p in out}
    return sorted(out, key=key.__getitem__)


def resolve_model_paths(spec: str, skip_steps: int = 0, flag: str = "--multimodal_model_path") -> List[str]:
    """The checkpoint files ``spec`` names (see the module docstring); ``FileNotFoundError`` names a missing one."""
    spec = (spec or "").strip()
    if not spec:
        raise ValueError(f"{flag} is empty")
    if os.path.isdir(spec):
        files = _step_files(spec, skip_steps)
        if not files:
            raise FileNotFoundError(f"{flag} {spec!r}: no model{{step}}.pt / ema_{{rate}}_{{step}}.pt checkpoints "
                                    f"with step >= {skip_steps} in this folder; {TRAIN_FIRST}")
        return files
    paths = [p.strip() for p in spec.split(",") if p.strip()]
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{flag}: checkpoint {path!r} does not exist (give a file, a comma list of files "
                                    f"or a folder of model######.pt / ema_*.pt checkpoints)")
    return paths


def run_job(folder: str) -> Optional[str]:
    """The ``"job"`` recorded in a run folder's ``config.json`` (``train``, ``image_sr_train``), or None."""
    path = os.path.join(folder, "config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            obj = json.load(handle)
    except (OSError, ValueError):
        return None
    job = obj.get("job") if isinstance(obj, dict) else None
    return job if isinstance(job, str) else None


def newest_checkpoint(root: str = "outputs", job: str = "train") -> Optional[str]:
    """The newest checkpoint under ``root`` (recursively) of runs of ``job`` (``train``: the coupled model;
    ``image_sr_train``: the SR model), preferring the EMA weights of the newest step; or None.

    A run folder counts when its ``config.json`` names that job; folders without one count as ``train`` runs.
    """
    if not os.path.isdir(root):
        return None
    best = None  # (mtime, path)
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if not any(parse_checkpoint_name(f) for f in files):
            continue
        if (run_job(folder) or "train") != job:
            continue
        by_step: Dict[int, Dict[str, str]] = {}
        for name in files:
            parsed = parse_checkpoint_name(name)
            if parsed and parsed[0] in ("model", "ema"):
                kind, step, rate = parsed
                by_step.setdefault(step, {})["model" if kind == "model" else rate] = os.path.join(folder, name)
        if not by_step:
            continue
        last = by_step[max(by_step)]
        rates = [r for r in last if r != "model"]
        # the slowest average (largest rate) is the usual sampling choice
        path = last[max(rates, key=float)] if rates else last["model"]
        mtime = max(os.path.getmtime(p) for p in last.values())
        if best is None or mtime > best[0]:
            best = (mtime, path)
    return best[1] if best else None


def demo_checkpoint(kind: str = "demo") -> Optional[str]:
    """The shipped checkpoint ``mm_diffusion/assets/<kind>.{pt,pth,safetensors}`` (``demo``: the coupled model,
    ``demo_sr``: the SR model; flags in ``<kind>.json`` beside it), or None."""
    for ext in WEIGHT_EXTS:
        path = os.path.join(ASSETS_DIR, kind + ext)
        if os.path.isfile(path):
            return path
    return None


def default_model_path(search_root: str = "outputs") -> str:
    """The checkpoint used when no model path is given: newest under ``search_root``, else the demo one."""
    path = newest_checkpoint(search_root) or demo_checkpoint()
    if path is None:
        raise FileNotFoundError(f"no checkpoint to sample from: --multimodal_model_path is empty, there is no "
                                f"checkpoint under {os.path.abspath(search_root)!r} and no demo checkpoint in "
                                f"{ASSETS_DIR!r}; {TRAIN_FIRST}")
    return path


def default_sr_model_path(search_root: str = "outputs") -> Optional[str]:
    """``--sr_model_path auto``: the newest SR checkpoint under ``search_root`` (runs of ``image_sr_train``), else
    the shipped ``demo_sr`` checkpoint, else None (no super-resolution)."""
    return newest_checkpoint(search_root, job="image_sr_train") or demo_checkpoint("demo_sr")


def _looks_like_flags(obj: Any) -> Optional[Dict[str, Any]]:
    if not isinstance(obj, dict):
        return None
    if "video_size" in obj and ("num_channels" in obj or "model_channels" in obj or "config" in obj):
        return obj
    if "sr_num_channels" in obj or "large_size" in obj:
        return obj
    for key in ("args", "flags", "config", "model"):
        inner = obj.get(key)
        if isinstance(inner, dict):
            found = _looks_like_flags(inner)
            if found is not None:
                return found
    return None


def _find_run_document(checkpoint: str) -> Optional[Tuple[str, Dict[str, Any], Dict[str, Any]]]:
    """``(path, document, flags)`` of the first JSON next to ``checkpoint`` that holds model flags, or None."""
    folder = os.path.dirname(os.path.abspath(checkpoint))
    stem = os.path.splitext(os.path.abspath(checkpoint))[0]
    candidates = [stem + ".json"] + [os.path.join(folder, n) for n in CONFIG_NAMES]
    candidates += sorted(p for p in glob.glob(os.path.join(folder, "*.json")) if p not in candidates)
    for path in candidates:
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                obj = json.load(handle)
        except (OSError, ValueError):
            continue
        flags = _looks_like_flags(obj)
        if flags is not None:
            return path, obj, dict(flags)
    return None


def find_run_config(checkpoint: str) -> Optional[Dict[str, Any]]:
    """The training flags saved as JSON next to ``checkpoint`` (``<name>.json`` beside it, then ``config.json``,
    ``args.json``, ..., then any ``*.json`` in its folder holding model flags), or None."""
    found = _find_run_document(checkpoint)
    return None if found is None else found[2]


def find_recommended_sampling(checkpoint: str) -> Dict[str, Any]:
    """The sampling settings recommended for ``checkpoint``: the ``"recommended_sampling"`` entry of the JSON that
    holds its flags (written by ``tools/export_demo.py --recommend_steps / --recommend_guidance /
    --recommend_joint_guidance``), ``{}`` when
    there is none (a training run's own ``config.json``, a published checkpoint).

    Keys (each optional): ``steps`` (int >= 1, the DPM-Solver step count) and ``guidance_scale`` (float >= 0,
    cross-modal classifier-free guidance under ``condition_mode`` clean) and ``joint_guidance_scale`` (float >= 0,
    the audio guided by the video in unconditional sampling). ValueError naming the file on any other key or
    value."""
    found = _find_run_document(checkpoint)
    if found is None:
        return {}
    path, doc, _ = found
    entry = doc.get(RECOMMENDED_SAMPLING_KEY) if isinstance(doc, dict) else None
    if entry is None:
        return {}
    if not isinstance(entry, dict):
        raise ValueError(f"{path}: {RECOMMENDED_SAMPLING_KEY!r} must be an object, got {entry!r}")
    unknown = sorted(set(entry) - set(RECOMMENDED_SAMPLING_TYPES))
    if unknown:
        raise ValueError(f"{path}: {RECOMMENDED_SAMPLING_KEY!r} has unknown keys {unknown}; valid: "
                         f"{', '.join(RECOMMENDED_SAMPLING_TYPES)}")
    out: Dict[str, Any] = {}
    for key, value in entry.items():
        kind, low = RECOMMENDED_SAMPLING_TYPES[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)) \
                or value < low:
            raise ValueError(f"{path}: {RECOMMENDED_SAMPLING_KEY}.{key} must be a number >= {low}"
                             f"{' (an integer)' if kind is int else ''}, got {value!r}")
        out[key] = kind(value)
    return out


def model_name(checkpoint: str) -> str:
    """The output sub-folder for a checkpoint: its file name (as the original names it)."""
    return os.path.basename(os.path.normpath(checkpoint))
