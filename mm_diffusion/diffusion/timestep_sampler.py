"""Which timesteps to train on: uniform, or importance sampling by the loss second moment."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

__all__ = ["ScheduleSampler", "UniformSampler", "LossSecondMomentResampler", "create_named_schedule_sampler"]


class ScheduleSampler(ABC):
    """Draws training timesteps ``t`` with importance weights so the loss estimate stays unbiased."""

    @abstractmethod
    def weights(self) -> np.ndarray:
        """Unnormalised positive sampling weights ``[T]``."""

    def sample(self, batch_size: int, device=None, generator: Optional[torch.Generator] = None
               ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return ``(t, weights)``: int64 ``[batch_size]`` timesteps and float32 ``[batch_size]`` loss weights
        ``1 / (T * p(t))``. ``generator`` (on any device) makes the draw reproducible."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        w = np.asarray(self.weights(), dtype=np.float64)
        p = w / w.sum()
        draw_device = generator.device if generator is not None else torch.device("cpu")
        probs = torch.as_tensor(p, dtype=torch.float64, device=draw_device)
        t = torch.multinomial(probs, batch_size, replacement=True, generator=generator)
        weights = 1.0 / (len(p) * probs[t])
        return t.to(device=device, dtype=torch.long), weights.to(device=device, dtype=torch.float32)

    def update_with_local_losses(self, local_ts: torch.Tensor, local_losses: torch.Tensor) -> None:
        """Report this rank's ``(t, loss)`` pairs; gathers from all ranks when torch.distributed is
        initialised, otherwise uses the local values directly."""

    def update_with_all_losses(self, ts: Sequence[int], losses: Sequence[float]) -> None:
        """Report ``(t, loss)`` pairs from every rank (no-op for non-adaptive samplers)."""

    def state_dict(self) -> Optional[Dict[str, torch.Tensor]]:
        """What a checkpoint must keep to resume the sampler exactly (None: it keeps no state)."""
        return None

    def load_state_dict(self, state: Optional[Dict[str, torch.Tensor]]) -> None:
        """Restore :meth:`state_dict` (no-op for samplers without state)."""


class UniformSampler(ScheduleSampler):
    def __init__(self, diffusion):
        self._weights = np.ones(diffusion.num_timesteps, dtype=np.float64)

    def weights(self) -> np.ndarray:
        return self._weights


class LossSecondMomentResampler(ScheduleSampler):
    """Sample ``t`` with probability proportional to ``sqrt(E[loss_t^2])`` (improved DDPM), once every
    timestep has ``history_per_term`` recorded losses; uniform until then."""

    def __init__(self, diffusion, history_per_term: int = 10, uniform_prob: float = 0.001):
        self.num_timesteps = diffusion.num_timesteps
        self.history_per_term = int(history_per_term)
        self.uniform_prob = float(uniform_prob)
        self._history = np.zeros((self.num_timesteps, self.history_per_term), dtype=np.float64)
        self._counts = np.zeros(self.num_timesteps, dtype=np.int64)

    def warmed_up(self) -> bool:
        return bool((self._counts == self.history_per_term).all())

    def weights(self) -> np.ndarray:
        if not self.warmed_up():
            return np.ones(self.num_timesteps, dtype=np.float64)
        w = np.sqrt(np.mean(self._history ** 2, axis=-1))
        w = w / w.sum()
        return w * (1.0 - self.uniform_prob) + self.uniform_prob / len(w)

    def update_with_local_losses(self, local_ts: torch.Tensor, local_losses: torch.Tensor) -> None:
        ts = local_ts.detach().reshape(-1)
        losses = local_losses.detach().reshape(-1).to(torch.float64)
        if ts.shape != losses.shape:
            raise ValueError(f"local_ts {tuple(ts.shape)} and local_losses {tuple(losses.shape)} must match")
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            ts, losses = _all_gather_pairs(ts, losses)
        self.update_with_all_losses(ts.cpu().tolist(), losses.cpu().tolist())

    def state_dict(self) -> Dict[str, torch.Tensor]:
        """``{"history": float64 [T, history_per_term], "counts": int64 [T]}`` (copies)."""
        return {"history": torch.from_numpy(self._history.copy()), "counts": torch.from_numpy(self._counts.copy())}

    def load_state_dict(self, state: Optional[Dict[str, torch.Tensor]]) -> None:
        """Restore :meth:`state_dict` (None, e.g. from a run with the uniform sampler: keep the current state)."""
        if state is None:
            return
        self._history = state["history"].numpy().astype(np.float64)
        self._counts = state["counts"].numpy().astype(np.int64)

    def update_with_all_losses(self, ts: Sequence[int], losses: Sequence[float]) -> None:
        for t, loss in zip(ts, losses):
            t = int(t)
            if not 0 <= t < self.num_timesteps:
                raise ValueError(f"timestep {t} outside [0, {self.num_timesteps})")
            if self._counts[t] == self.history_per_term:
                self._history[t, :-1] = self._history[t, 1:]
                self._history[t, -1] = loss
            else:
                self._history[t, self._counts[t]] = loss
                self._counts[t] += 1


def _all_gather_pairs(ts: torch.Tensor, losses: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Gather variable-length ``[n_rank]`` vectors from every rank (padded to the largest)."""
    import torch.distributed as dist

    world = dist.get_world_size()
    n = torch.tensor([ts.numel()], device=ts.device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    max_n = int(max(int(s) for s in sizes))
    pad_t = torch.zeros(max_n, dtype=ts.dtype, device=ts.device)
    pad_l = torch.zeros(max_n, dtype=losses.dtype, device=losses.device)
    pad_t[: ts.numel()] = ts
    pad_l[: losses.numel()] = losses
    all_t: List[torch.Tensor] = [torch.zeros_like(pad_t) for _ in range(world)]
    all_l: List[torch.Tensor] = [torch.zeros_like(pad_l) for _ in range(world)]
    dist.all_gather(all_t, pad_t)
    dist.all_gather(all_l, pad_l)
    keep_t = torch.cat([a[: int(s)] for a, s in zip(all_t, sizes)])
    keep_l = torch.cat([a[: int(s)] for a, s in zip(all_l, sizes)])
    return keep_t, keep_l


def create_named_schedule_sampler(name: str, diffusion) -> ScheduleSampler:
    """``"uniform"`` or ``"loss-second-moment"`` (the original ``--schedule_sampler`` values)."""
    if name == "uniform":
        return UniformSampler(diffusion)
    if name == "loss-second-moment":
        return LossSecondMomentResampler(diffusion)
    raise ValueError(f"unknown schedule sampler {name!r}; valid: 'uniform', 'loss-second-moment'")
