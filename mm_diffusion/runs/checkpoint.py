"""Checkpoint files: atomic writes, safe loading, tolerant weight loading, finding the latest checkpoint.

Public API (stable; the jobs import it):

``save_checkpoint(obj, path) -> str``
    ``torch.save`` to a temporary file in the same folder, fsync, then ``os.replace``: a reader (or a
    crash) never sees a half-written ``path``.
``load_checkpoint_file(path, map_location="cpu") -> Any``
    Any checkpoint object (state dicts, optimizer files) with ``torch.load(weights_only=True)``; never
    runs code from the file. ``.safetensors`` files are read with safetensors.
``load_state_dict_file(path, map_location="cpu") -> Dict[str, Tensor]``
    A model state dict from ``.pt``/``.pth``/``.safetensors``. Accepts a plain state dict (the published
    layout), ``{"state_dict": sd}`` / ``{"model": sd}`` wrappers and DDP's ``module.`` prefixes.
``load_model_weights(model, path_or_state_dict, strict=True, log=None) -> LoadReport``
    Copies weights into ``model`` casting each tensor to the parameter's dtype (fp16 files load into
    fp32 models). ``strict=True``: any missing / unexpected / mis-shaped key raises ``ValueError``
    listing them all. ``strict=False``: the matching keys are loaded and every skipped key is reported
    through ``log`` (default: :mod:`logging` warning).
``find_latest_checkpoint(run_dir, complete_only=True) -> Optional[CheckpointSet]``
    The newest *complete* training checkpoint of a run folder, or ``None``. ``CheckpointSet`` has
    ``step``, ``model``, ``opt`` and ``ema`` (rate string -> path) and ``ema_path(rate)``.
``checkpoint_paths(run_dir, step, ema_rates=()) -> CheckpointSet``
    The file names of step ``step``.

Training-checkpoint layout of a run folder (written by ``mm_diffusion.train``)::

    model{step:06d}.pt         plain MultimodalUNet / SuperResModel state_dict (the published layout)
    ema_{rate}_{step:06d}.pt   EMA weights, same layout (rate as given, e.g. ema_0.9999_010000.pt)
    opt{step:06d}.pt           optimizer, grad scaler, step, RNG states, data order (written LAST)

A step is complete when its ``opt`` and ``model`` files both exist: the trainer writes the EMA files,
then the model, then the optimizer file, each atomically, so a crash in the middle of a checkpoint leaves
the previous complete step to resume from.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from ..data.media import atomic_path

__all__ = [
    "save_checkpoint",
    "load_checkpoint_file",
    "load_state_dict_file",
    "load_model_weights",
    "LoadReport",
    "CheckpointSet",
    "find_latest_checkpoint",
    "checkpoint_paths",
    "list_checkpoint_steps",
    "parse_checkpoint_name",
]

logger = logging.getLogger("mm_diffusion.checkpoint")

MODEL_RE = re.compile(r"^model(\d{6,})\.pt$")
OPT_RE = re.compile(r"^opt(\d{6,})\.pt$")
EMA_RE = re.compile(r"^ema_([0-9.eE+-]+)_(\d{6,})\.pt$")


# ----------------------------------------------------------------------------------------------
# writing
# ----------------------------------------------------------------------------------------------
def save_checkpoint(obj: Any, path: str) -> str:
    """Write ``obj`` with ``torch.save`` atomically (temporary file in the same folder, fsync, rename).

    Raises ``FileNotFoundError`` if the folder does not exist and ``PermissionError`` (with the path)
    if it is not writable. Returns ``path``.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write checkpoint {path!r}: folder {folder!r} does not exist")
    with atomic_path(path) as tmp:
        try:
            handle = open(tmp, "wb")
        except PermissionError:
            raise PermissionError(f"cannot write checkpoint {path!r}: folder {folder!r} is not writable") from None
        with handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
    return path


# ----------------------------------------------------------------------------------------------
# reading
# ----------------------------------------------------------------------------------------------
def file_sha256(path: Union[str, os.PathLike]) -> str:
    """Hex SHA-256 of a file's bytes (read in 4 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_file(path: str) -> str:
    path = os.path.expanduser(os.fspath(path))
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint file {path!r} does not exist")
    if os.path.isdir(path):
        raise FileNotFoundError(f"checkpoint {path!r} is a folder; pass a .pt / .safetensors file")
    return path


def load_checkpoint_file(path: str, map_location: Union[str, torch.device] = "cpu") -> Any:
    """Load a checkpoint object without running code from it (``weights_only=True`` / safetensors)."""
    path = _check_file(path)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path, device=str(map_location))
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle errors, truncated files, unsafe globals
        raise ValueError(f"cannot load checkpoint {path!r} safely (weights_only=True): {err}") from None


def _unwrap_state_dict(obj: Any, source: str) -> Dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(torch.is_tensor(v) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not all(isinstance(k, str) for k in obj):
        raise ValueError(f"{source} does not hold a model state dict (a mapping of parameter names to tensors); "
                         f"got {type(obj).__name__}")
    bad = [k for k, v in obj.items() if not torch.is_tensor(v)]
    if bad:
        raise ValueError(f"{source} is not a plain state dict: entries {bad[:5]} are not tensors "
                         f"(an optimizer file? model weights are in model######.pt / ema_*.pt)")
    out = dict(obj)
    if out and all(k.startswith("module.") for k in out):
        out = {k[len("module."):]: v for k, v in out.items()}
    return out


def load_state_dict_file(path: str, map_location: Union[str, torch.device] = "cpu") -> Dict[str, torch.Tensor]:
    """A model state dict from ``path`` (``.pt``, ``.pth``, ``.safetensors``); see the module docstring."""
    return _unwrap_state_dict(load_checkpoint_file(path, map_location), f"checkpoint {os.fspath(path)!r}")


@dataclass
class LoadReport:
    """What :func:`load_model_weights` did. ``mismatched``: ``(key, file_shape, model_shape)``."""

    loaded: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 20) -> str:
        """Human-readable list of the problems (at most ``limit`` keys per kind)."""
        lines = []

        def block(title, items):
            if items:
                lines.append(f"{title} ({len(items)}):")
                lines.extend(f"  {item}" for item in items[:limit])
                if len(items) > limit:
                    lines.append(f"  ... and {len(items) - limit} more")

        block("missing keys (in the model, not in the file)", self.missing)
        block("unexpected keys (in the file, not in the model)", self.unexpected)
        block("mis-shaped keys (file shape vs model shape)",
              [f"{k}: {tuple(a)} vs {tuple(b)}" for k, a, b in self.mismatched])
        return "\n".join(lines)


def load_model_weights(model: nn.Module, path_or_state_dict: Union[str, os.PathLike, Mapping[str, torch.Tensor]],
                       strict: bool = True, log: Optional[Callable[[str], None]] = None) -> LoadReport:
    """Load weights into ``model`` in place; see the module docstring. Returns a :class:`LoadReport`.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` (listing every missing,
    unexpected and mis-shaped key) when ``strict`` and the weights do not fit the architecture.
    """
    if isinstance(path_or_state_dict, (str, os.PathLike)):
        source = f"checkpoint {os.fspath(path_or_state_dict)!r}"
        state = load_state_dict_file(path_or_state_dict)
    else:
        source = "the given state dict"
        state = _unwrap_state_dict(path_or_state_dict, source)
    target = model.state_dict()
    report = LoadReport()
    for key, value in state.items():
        if key not in target:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(target[key].shape):
            report.mismatched.append((key, tuple(value.shape), tuple(target[key].shape)))
    report.missing = [k for k in target if k not in state]
    if strict and not report.ok:
        raise ValueError(f"{source} does not match the {type(model).__name__} architecture "
                         f"(check the model flags / --config):\n{report.describe()}")
    matching = {}
    for key, value in state.items():
        if key in target and tuple(value.shape) == tuple(target[key].shape):
            ref = target[key]
            matching[key] = value.to(dtype=ref.dtype) if value.is_floating_point() and ref.is_floating_point() else value
            report.loaded.append(key)
    model.load_state_dict(matching, strict=False)
    if not report.ok:
        emit = log or logger.warning
        emit(f"loaded {len(report.loaded)} of {len(target)} tensors from {source}; skipped:\n{report.describe(limit=10**9)}")
    return report


# ----------------------------------------------------------------------------------------------
# finding checkpoints
# ----------------------------------------------------------------------------------------------
@dataclass
class CheckpointSet:
    """The files of one training step. ``ema``: rate string (as in the file name) -> path."""

    step: int
    model: str
    opt: Optional[str] = None
    ema: Dict[str, str] = field(default_factory=dict)

    def ema_path(self, rate: Union[str, float]) -> Optional[str]:
        """The EMA file for ``rate`` (``0.9999`` or ``"0.9999"``), or ``None``."""
        for key, path in self.ema.items():
            if key == str(rate) or _same_rate(key, rate):
                return path
        return None


def _same_rate(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def parse_checkpoint_name(name: str) -> Optional[Tuple[str, int, Optional[str]]]:
    """``"model000100.pt"`` -> ``("model", 100, None)``; ``"ema_0.9999_000100.pt"`` -> ``("ema", 100, "0.9999")``;
    ``"opt000100.pt"`` -> ``("opt", 100, None)``; anything else -> ``None``."""
    base = os.path.basename(name)
    m = MODEL_RE.match(base)
    if m:
        return "model", int(m.group(1)), None
    m = OPT_RE.match(base)
    if m:
        return "opt", int(m.group(1)), None
    m = EMA_RE.match(base)
    if m:
        return "ema", int(m.group(2)), m.group(1)
    return None


def checkpoint_paths(run_dir: str, step: int, ema_rates: Sequence[Union[str, float]] = ()) -> CheckpointSet:
    """The names the trainer uses for step ``step`` in ``run_dir`` (the files need not exist)."""
    run_dir = os.fspath(run_dir)
    return CheckpointSet(
        step=int(step),
        model=os.path.join(run_dir, f"model{int(step):06d}.pt"),
        opt=os.path.join(run_dir, f"opt{int(step):06d}.pt"),
        ema={str(r): os.path.join(run_dir, f"ema_{r}_{int(step):06d}.pt") for r in ema_rates},
    )


def list_checkpoint_steps(run_dir: str, complete_only: bool = True) -> List[CheckpointSet]:
    """Every complete checkpoint (``model`` and ``opt`` files present) of ``run_dir``, oldest first.

    ``complete_only=False`` also lists steps that only have a ``model`` file (``opt`` is then ``None``),
    e.g. a folder of published or exported weights.
    """
    run_dir = os.path.expanduser(os.fspath(run_dir))
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"checkpoint folder {run_dir!r} does not exist")
    found: Dict[int, Dict[str, Any]] = {}
    for name in os.listdir(run_dir):
        parsed = parse_checkpoint_name(name)
        if parsed is None:
            continue
        kind, step, rate = parsed
        entry = found.setdefault(step, {"ema": {}})
        if kind == "ema":
            entry["ema"][rate] = os.path.join(run_dir, name)
        else:
            entry[kind] = os.path.join(run_dir, name)
    out = []
    for step in sorted(found):
        entry = found[step]
        if "model" in entry and ("opt" in entry or not complete_only):
            out.append(CheckpointSet(step, entry["model"], entry.get("opt"), dict(sorted(entry["ema"].items()))))
    return out


def find_latest_checkpoint(run_dir: str, complete_only: bool = True) -> Optional[CheckpointSet]:
    """The newest complete checkpoint of ``run_dir`` (see the module docstring), or ``None`` if it has none.

    ``FileNotFoundError`` if ``run_dir`` does not exist. Files of a step whose ``opt`` file is missing
    (a checkpoint interrupted mid-write) and temporary files are ignored; ``complete_only=False`` accepts
    steps with only a model file (for sampling from a folder of weights).
    """
    steps = list_checkpoint_steps(run_dir, complete_only)
    return steps[-1] if steps else None
