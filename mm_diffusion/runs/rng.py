"""Capture and restore every random-number state a training step depends on.

``rng_state() -> dict`` holds tensors and plain Python values only, so it survives
``torch.save`` / ``torch.load(weights_only=True)``: torch's CPU generator, the current CUDA device's generator
(when CUDA is initialised), numpy's legacy global generator and Python's ``random``.
``set_rng_state(state)`` puts them back. CUDA: only the current device's generator is kept (every rank
computes on its own device and, in the trainer, draws the same numbers), and it is restored into the
current device of the process that loads it. ``seed_everything(seed)`` seeds all of them.
"""
from __future__ import annotations

import random
from typing import Any, Dict

import numpy as np
import torch

__all__ = ["rng_state", "set_rng_state", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy's global generator and Python's ``random`` with ``seed``."""
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> Dict[str, Any]:
    """The current generator states (see the module docstring)."""
    np_state = np.random.get_state(legacy=False)
    py_version, py_internal, py_gauss = random.getstate()
    state: Dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": str(np_state["bit_generator"]),
            "key": torch.from_numpy(np.asarray(np_state["state"]["key"], dtype=np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "python": {"version": int(py_version), "internal": torch.tensor(py_internal, dtype=torch.int64),
                   "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore states captured by :func:`rng_state` (``ValueError`` on a malformed state)."""
    try:
        torch.set_rng_state(state["torch"].cpu())
        nps = state["numpy"]
        np.random.set_state({
            "bit_generator": nps["bit_generator"],
            "state": {"key": nps["key"].numpy().astype(np.uint32), "pos": int(nps["pos"])},
            "has_gauss": int(nps["has_gauss"]), "gauss": float(nps["gauss"]),
        })
        py = state["python"]
        random.setstate((int(py["version"]), tuple(int(v) for v in py["internal"].tolist()), py["gauss"]))
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"malformed RNG state in the checkpoint ({err!r}); was it written by mm_diffusion.train?") from None
    if torch.is_tensor(state.get("cuda")) and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())
