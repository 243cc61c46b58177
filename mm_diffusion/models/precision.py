"""Reduced-precision compute copies of a network, with float32 master weights.

Autocast casts every weight and many activations again at every call; on a CPU with native bf16 (AMX or
AVX512-BF16) that eats most of the bf16 speed-up. Here the network itself runs in bf16 instead:

* :func:`compute_copy` makes a bf16 copy of a model for inference (sampling, the demo, evaluation). Every
  parameter and floating buffer becomes bf16 except those of the GroupNorms, which stay float32; the
  networks compute in the dtype of their weights (activations bf16 end to end, the norms' statistics, the
  timestep sinusoids and the returned outputs in float32).
* :class:`MasterWeights` keeps the float32 model as the master (optimizer state, EMA and checkpoints are
  unchanged and stay float32) and a bf16 compute copy that runs forward and backward. The copy's weights
  are refreshed from the master once per optimizer step (:meth:`MasterWeights.sync`), and its gradients
  moved into the master's ``.grad`` in float32 (:meth:`MasterWeights.pull_grads`).
"""
from __future__ import annotations

import copy
import functools
from typing import List, Tuple

import torch
import torch.nn as nn

__all__ = ["compute_copy", "cast_for_compute", "MasterWeights", "native_bf16_cpu", "PRECISIONS", "resolve_precision",
           "inference_model"]

# What --precision accepts once "auto" is resolved:
#   fp32           float32 everywhere (the published behaviour);
#   bf16           bf16 compute copy of the weights, float32 master weights (this module);
#   bf16_autocast  float32 weights under torch.autocast(bf16);
#   fp16           float32 weights under torch.autocast(fp16) with a grad scaler (CUDA only).
PRECISIONS = ("fp32", "bf16", "bf16_autocast", "fp16")


def _keeps_float32(module: nn.Module) -> bool:
    return isinstance(module, nn.GroupNorm)


def cast_for_compute(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> nn.Module:
    """Cast ``model`` in place to ``dtype`` except its GroupNorm parameters (kept float32); returns it."""
    keep = {id(t) for m in model.modules() if _keeps_float32(m) for t in list(m.parameters()) + list(m.buffers())}
    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.is_floating_point() and id(tensor) not in keep:
                tensor.data = tensor.data.to(dtype)
    return model


def compute_copy(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> nn.Module:
    """A deep copy of ``model`` cast for ``dtype`` compute (see :func:`cast_for_compute`); ``model`` is untouched."""
    return cast_for_compute(copy.deepcopy(model), dtype)


class MasterWeights:
    """A float32 ``master`` model and its ``compute`` copy in ``dtype``.

    Use: forward/backward through ``self.compute``; then :meth:`pull_grads` (float32 gradients into the
    master's parameters, the copy's cleared); the optimizer steps the master; then :meth:`sync`.
    Parameters are paired by name; only trainable ones take part.
    """

    def __init__(self, master: nn.Module, dtype: torch.dtype = torch.bfloat16):
        self.master = master
        self.dtype = dtype
        self.compute = compute_copy(master, dtype)
        compute_params = dict(self.compute.named_parameters())
        self._pairs: List[Tuple[torch.Tensor, torch.Tensor]] = [
            (p, compute_params[name]) for name, p in master.named_parameters() if p.requires_grad
        ]

    @torch.no_grad()
    def sync(self) -> None:
        """Copy (and round) the master weights into the compute copy: once after every optimizer step."""
        torch._foreach_copy_([c for _, c in self._pairs], [m for m, _ in self._pairs])

    @torch.no_grad()
    def pull_grads(self) -> None:
        """Add the compute copy's gradients, in float32, to the master's ``.grad`` and clear the copy's."""
        for master, comp in self._pairs:
            if comp.grad is None:
                continue
            grad = comp.grad.float()
            if master.grad is None:
                master.grad = grad
            else:
                master.grad.add_(grad)
            comp.grad = None


@functools.lru_cache(maxsize=1)
def native_bf16_cpu() -> bool:
    """True when this CPU computes bf16 natively (the ``amx_bf16`` or ``avx512_bf16`` flags in
    ``/proc/cpuinfo``); elsewhere bf16 is emulated and slower than float32."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(requested: str, use_fp16: bool, device: torch.device) -> str:
    """The precision a job runs in, one of :data:`PRECISIONS`, from ``--precision`` and ``--use_fp16``.

    ``auto`` (the default) is ``fp32`` unless ``use_fp16``; with it: ``bf16`` (the compute copy) on the CPU,
    ``bf16_autocast`` on GPUs with bf16, ``fp16`` on older GPUs. Explicit values are checked against the
    device (``fp16`` needs CUDA; bf16 on CUDA needs a GPU that supports it).
    """
    requested = (requested or "auto").lower()
    if requested not in ("auto",) + PRECISIONS:
        raise ValueError(f"--precision must be auto, {', '.join(PRECISIONS)}, got {requested!r}")
    cuda_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if requested == "auto":
        if not use_fp16:
            return "fp32"
        if device.type != "cuda":
            return "bf16"
        return "bf16_autocast" if cuda_bf16 else "fp16"
    if requested == "fp16" and device.type != "cuda":
        raise ValueError("--precision fp16 needs a CUDA device (fp16 autocast with a grad scaler); use bf16 on the CPU")
    if requested.startswith("bf16") and device.type == "cuda" and not cuda_bf16:
        raise ValueError("this GPU does not support bf16; use --precision fp16")
    return requested


def inference_model(model: nn.Module, precision: str) -> nn.Module:
    """The network to sample or evaluate with at a resolved ``precision``: a bf16 :func:`compute_copy` for
    ``bf16``, else ``model`` itself with its ``use_fp16`` autocast switched to match (on for the autocast
    precisions, off for ``fp32``)."""
    if precision == "bf16":
        return compute_copy(model).eval() if next(model.parameters()).dtype != torch.bfloat16 else model
    if hasattr(model, "use_fp16"):
        model.use_fp16 = precision in ("bf16_autocast", "fp16")
    return model
