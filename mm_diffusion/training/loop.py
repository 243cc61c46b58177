"""The training loop: AdamW, EMA, autocast, microbatching, gradient clipping, non-finite handling,
atomic checkpoints and exact resume, on one process or many (DistributedDataParallel).

``TrainLoop(model, diffusion, data, task, config).run()`` where

* ``model``: the raw network (``MultimodalUNet`` or ``SuperResModel``) on the process's device;
* ``diffusion``: from ``create_gaussian_diffusion``; ``data``: an endless batch stream with
  ``state_dict()`` / ``load_state_dict()`` (``mm_diffusion.data.load_data``), already sharded by rank;
* ``task``: :class:`~mm_diffusion.training.tasks.AVTask` or ``SRTask``;
* ``config``: :class:`TrainConfig`.

Randomness and exactness. Every rank seeds torch / numpy / random identically and draws the timesteps
and the noise of the GLOBAL batch (``world_size * batch_size`` samples, on the compute device), keeping
the rows ``rank::world_size``; those are exactly the rows the data sampler gives that rank, so a run on
W ranks with batch B sees the same (data, t, noise) triples as one process with batch W*B (the RS-MMA
window offsets, also drawn from torch's global generator, agree too). Data loading runs under
``torch.random.fork_rng`` and progress sampling uses its own generator, so neither disturbs the training
stream. A checkpoint stores the optimizer, grad scaler, step, generator states, the data position and
the timestep sampler's history; resuming from it replays the remaining steps bit for bit on the CPU
(dropout masks included). On CUDA, kernels may be non-deterministic (atomics in some backward passes),
so resumed GPU runs agree to float tolerance rather than bitwise.
"""
from __future__ import annotations

import contextlib
import copy
import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch
import torch.distributed as tdist
import torch.nn as nn

from ..diffusion import create_named_schedule_sampler
from ..diffusion.data_scale import scale_data
from ..diffusion.loss_bands import apply_loss_bands, parse_loss_bands
from ..diffusion.own_step_inputs import draw_own_steps, own_step_noise, parse_own_step_inputs
from ..diffusion.modality_timesteps import draw_modality_timesteps, shared_timesteps
from ..diffusion.tree import tree_map
from ..runs import dist
from ..runs.checkpoint import (CheckpointSet, checkpoint_paths, find_latest_checkpoint, list_checkpoint_steps,
                               load_checkpoint_file, load_model_weights, load_state_dict_file, parse_checkpoint_name,
                               save_checkpoint)
from ..runs.ema import EMA
from ..runs.rng import rng_state, set_rng_state
from ..runs.log import RunLog
from ..models.precision import PRECISIONS, MasterWeights


def fine_tuning_state_dict(model: nn.Module, state: Dict[str, torch.Tensor], source: str,
                           log=None) -> Dict[str, torch.Tensor]:
    """The weights to fine-tune ``model`` from: ``state`` itself, except that a class embedding
    (``label_emb.weight``) is dropped when ``model`` is unconditional. That is the one difference between
    guided-diffusion's class-conditional 64->256 upsampler and the unconditional frame SR model trained from
    it; every other key must still match exactly (the strict load that follows checks it)."""
    if "label_emb.weight" in state and "label_emb.weight" not in model.state_dict():
        state = {k: v for k, v in state.items() if k != "label_emb.weight"}
        if log is not None:
            log(f"fine-tuning from {source!r}: dropped its class embedding label_emb.weight (this model is "
                f"unconditional); every other tensor is loaded")
    own = model.state_dict()
    added = [k for k in own if k.endswith(("v2a_position", "a2v_position")) and k not in state]
    if added:  # position-aware RS-MMA on weights trained without it: its zero-initialised tables start as is
        state = dict(state, **{k: own[k] for k in added})
        if log is not None:
            log(f"fine-tuning from {source!r}: {len(added)} RS-MMA position tables are new (zero-initialised)")
    return state

__all__ = ["TrainConfig", "TrainLoop", "NonFiniteLossError", "resolve_resume", "ResumePlan"]

class NonFiniteLossError(RuntimeError):
    """Raised after ``max_nonfinite`` consecutive steps with a non-finite loss or gradient."""


@dataclass
class TrainConfig:
    """Settings of :class:`TrainLoop` (flag names in brackets).

    batch_size: samples per rank per step [--batch_size]; microbatch: samples per forward pass
    (-1 or 0: the whole batch) [--microbatch]; lr, weight_decay, lr_warmup_steps (linear warm-up),
    lr_anneal_steps (linear decay to 0 at that step, 0 = off); grad_clip: max global grad norm (0 = off);
    ema_rates: e.g. ["0.9999"]; max_steps: stop after this step (0 = never); log/save/sample_interval
    (0 = never; a final checkpoint is always written when max_steps is reached); sample_num /
    sample_steps / sample_method: progress samples; precision: "fp32" | "bf16" | "bf16_autocast" | "fp16"
    (resolved, see :func:`mm_diffusion.models.precision.resolve_precision`); max_nonfinite: consecutive bad
    steps before :class:`NonFiniteLossError`.
    """

    output_dir: str
    batch_size: int = 1
    microbatch: int = -1
    lr: float = 1e-4
    weight_decay: float = 0.0
    lr_warmup_steps: int = 0
    lr_anneal_steps: int = 0
    grad_clip: float = 0.0
    ema_rates: List[str] = field(default_factory=lambda: ["0.9999"])
    max_steps: int = 0
    log_interval: int = 100
    save_interval: int = 10000
    sample_interval: int = 0
    sample_num: int = 2
    sample_steps: int = 10
    sample_method: str = "dpm_solver"
    schedule_sampler: str = "uniform"
    precision: str = "fp32"
    compile: bool = False
    seed: int = 42
    max_nonfinite: int = 5
    progress: bool = True
    independent_t_prob: float = 0.0
    loss_band_weights: str = ""
    own_step_inputs: str = ""

    def __post_init__(self):
        if int(self.batch_size) < 1:
            raise ValueError(f"--batch_size must be >= 1, got {self.batch_size}")
        if self.microbatch is None or int(self.microbatch) <= 0:
            self.microbatch = int(self.batch_size)
        if int(self.microbatch) > int(self.batch_size):
            raise ValueError(f"--microbatch {self.microbatch} exceeds --batch_size {self.batch_size}")
        for name in ("log_interval", "save_interval", "sample_interval", "max_steps", "lr_warmup_steps",
                     "lr_anneal_steps"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"--{name} must be >= 0, got {getattr(self, name)}")
        if float(self.lr) <= 0:
            raise ValueError(f"--lr must be > 0, got {self.lr}")
        if float(self.grad_clip) < 0:
            raise ValueError(f"--grad_clip must be >= 0 (0 disables clipping), got {self.grad_clip}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if int(self.max_nonfinite) < 1:
            raise ValueError(f"--max_nonfinite must be >= 1, got {self.max_nonfinite}")


# ----------------------------------------------------------------------------------------------
# resume
# ----------------------------------------------------------------------------------------------
@dataclass
class ResumePlan:
    """What ``--resume_checkpoint`` means: ``exact`` (a complete run checkpoint) or weights only."""

    exact: bool
    model_path: str
    checkpoint: Optional[CheckpointSet] = None


def resolve_resume(path: str) -> Optional[ResumePlan]:
    """Interpret ``--resume_checkpoint``:

    * ``""``: no resume (``None``);
    * a folder: its latest complete checkpoint (exact resume); ``FileNotFoundError`` if it has none;
    * ``.../model######.pt`` with its ``opt######.pt`` beside it: exact resume from that step;
    * any other weights file (a published ``AIST++.pt``, guided-diffusion's upsampler, a ``model*.pt``
      without optimizer file): weights only, step 0, fresh optimizer and EMA.
    """
    if not path:
        return None
    path = os.path.expanduser(os.fspath(path))
    if os.path.isdir(path):
        latest = find_latest_checkpoint(path)
        if latest is None:
            raise FileNotFoundError(f"--resume_checkpoint {path!r}: the folder has no complete checkpoint "
                                    f"(model######.pt with its opt######.pt)")
        return ResumePlan(True, latest.model, latest)
    if not os.path.exists(path):
        raise FileNotFoundError(f"--resume_checkpoint {path!r} does not exist (pass a run folder, a model######.pt "
                                f"of a run, or a weights file to fine-tune from)")
    parsed = parse_checkpoint_name(path)
    if parsed is not None and parsed[0] == "model":
        step = parsed[1]
        folder = os.path.dirname(os.path.abspath(path))
        for cand in list_checkpoint_steps(folder):
            if cand.step == step:
                return ResumePlan(True, path, cand)
    return ResumePlan(False, path, None)


# ----------------------------------------------------------------------------------------------
# the loop
# ----------------------------------------------------------------------------------------------
class TrainLoop:
    """See the module docstring. ``run()`` returns the final step."""

    def __init__(self, model: nn.Module, diffusion, data, task, config: TrainConfig,
                 resume: Optional[ResumePlan] = None, log: Optional[RunLog] = None):
        self.cfg = config
        self.model = model
        self.diffusion = diffusion
        self.data = data
        self.task = task
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.is_main = self.rank == 0
        self.device = next(model.parameters()).device
        self.schedule = create_named_schedule_sampler(config.schedule_sampler, diffusion)
        self.loss_bands = parse_loss_bands(config.loss_band_weights, diffusion.num_timesteps)
        self.own_step = parse_own_step_inputs(config.own_step_inputs, diffusion.num_timesteps)
        self.step = 0
        self.nonfinite_total = 0
        self.overflow_total = 0
        self._consecutive_bad = 0

        params = [p for p in model.parameters() if p.requires_grad]
        self.params = params
        fused_ok = self.device.type == "cuda"
        self.opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay,
                                     **(dict(fused=True) if fused_ok else dict(foreach=True)))
        self.amp_dtype = {"bf16_autocast": torch.bfloat16, "fp16": torch.float16}.get(config.precision)
        self.scaler = torch.amp.GradScaler("cuda") if config.precision == "fp16" else None
        self.ema = EMA(model, config.ema_rates)

        if resume is not None:
            self._load(resume)
        # --precision bf16: forward and backward run on a bf16 copy of the (float32, master) model
        self.master = MasterWeights(model, torch.bfloat16) if config.precision == "bf16" else None
        compute = self.master.compute if self.master is not None else model

        if dist.is_distributed():
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DDP(compute, device_ids=ids, output_device=ids[0] if ids else None, broadcast_buffers=False)
        else:
            self.net = compute
        self._ddp = self.net if dist.is_distributed() else None
        if config.compile:
            self.net = torch.compile(self.net)
        self.log = log or RunLog(config.output_dir, self.is_main, self.step, config.max_steps, config.progress,
                                 keep_until=self.step if resume is not None and resume.exact else None)
        self._sample_model: Optional[nn.Module] = None

    # ------------------------------------------------------------------ checkpoints
    def _load(self, plan: ResumePlan) -> None:
        if not plan.exact:
            state = fine_tuning_state_dict(self.model, load_state_dict_file(plan.model_path), plan.model_path,
                                           log=print if self.is_main else None)
            load_model_weights(self.model, state, strict=True)
            self.ema = EMA(self.model, self.cfg.ema_rates)
            return
        load_model_weights(self.model, plan.model_path, strict=True)
        ckpt = plan.checkpoint
        for rate in self.cfg.ema_rates:
            ema_path = ckpt.ema_path(rate)
            if ema_path is None:
                self.ema.load_state_dict(rate, self.model.state_dict())
                if self.is_main:
                    print(f"warning: no EMA file for rate {rate} at step {ckpt.step}; starting it from the model weights")
            else:
                self.ema.load_state_dict(rate, load_state_dict_file(ema_path, map_location=self.device))
        state = load_checkpoint_file(ckpt.opt, map_location="cpu")
        if int(state.get("world_size", self.world)) != self.world or \
                int(state.get("batch_size", self.cfg.batch_size)) != self.cfg.batch_size:
            raise ValueError(f"checkpoint {ckpt.opt!r} was written by {state.get('world_size')} rank(s) with "
                             f"--batch_size {state.get('batch_size')}; exact resume needs the same, this run has "
                             f"{self.world} rank(s) and --batch_size {self.cfg.batch_size} (to change them, pass "
                             f"{ckpt.model!r} after renaming it, which restarts the optimizer)")
        self.opt.load_state_dict(state["optimizer"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.nonfinite_total = int(state.get("nonfinite_skips", 0))
        self.overflow_total = int(state.get("overflow_skips", 0))
        if state.get("data") is not None and hasattr(self.data, "load_state_dict"):
            data_state = dict(state["data"])
            data_state["rank"] = self.rank
            self.data.load_state_dict(data_state)
        self.schedule.load_state_dict(state.get("schedule_sampler"))
        self._resume_rng = state["rng"]

    def save(self) -> Optional[CheckpointSet]:
        """Write the checkpoint of the current step (rank 0; every rank waits). EMA files, then the model,
        then the optimizer file, each atomically: a step is complete once its opt file exists."""
        paths = checkpoint_paths(self.cfg.output_dir, self.step, self.cfg.ema_rates)
        if self.is_main:
            for rate in self.cfg.ema_rates:
                save_checkpoint(self.ema.state_dict(rate), paths.ema[rate])
            save_checkpoint(self.model.state_dict(), paths.model)
            save_checkpoint({
                "step": self.step,
                "optimizer": self.opt.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "rng": rng_state(),
                "data": self.data.state_dict() if hasattr(self.data, "state_dict") else None,
                "schedule_sampler": self.schedule.state_dict(),
                "world_size": self.world,
                "batch_size": self.cfg.batch_size,
                "ema_rates": list(self.cfg.ema_rates),
                "nonfinite_skips": self.nonfinite_total,
                "overflow_skips": self.overflow_total,
            }, paths.opt)
            self.log.log(f"saved checkpoint step {self.step} -> {paths.model}")
        dist.barrier()
        return paths

    # ------------------------------------------------------------------ one step
    def lr_at(self, step: int) -> float:
        """Learning rate of the update made at ``step`` (0-based): warm-up, then constant or linear anneal."""
        lr = float(self.cfg.lr)
        if self.cfg.lr_warmup_steps > 0:
            lr *= min(1.0, (step + 1) / self.cfg.lr_warmup_steps)
        if self.cfg.lr_anneal_steps > 0:
            lr *= max(0.0, 1.0 - step / self.cfg.lr_anneal_steps)
        return lr

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _draw(self, x_start) -> tuple:
        """Timesteps, weights and noise for this rank's rows of the global batch (see the module doc)."""
        n = next(iter(x_start.values())).shape[0] if isinstance(x_start, dict) else x_start.shape[0]
        total = n * self.world
        t, w = self.schedule.sample(total, self.device)
        noise = tree_map(lambda v: torch.randn((total,) + tuple(v.shape[1:]), device=v.device, dtype=v.dtype), x_start)
        t = draw_modality_timesteps(self.schedule, t, self.cfg.independent_t_prob, self.device)
        t_hi = draw_own_steps(self.own_step, t, self.diffusion.num_timesteps)
        rows = slice(self.rank, total, self.world)
        return (tree_map(lambda v: v[rows], t), w[rows], tree_map(lambda v: v[rows], noise),
                None if t_hi is None else t_hi[rows])

    def run_step(self, batch) -> Dict[str, float]:
        """One optimizer step on ``batch`` (this rank's share). Returns the weighted loss terms (local sums)
        and counters; increments ``self.step`` whether or not the update was applied."""
        x_start, cond = self.task.prepare(batch, self.device)
        x_start = scale_data(x_start, getattr(self.diffusion, "data_scale", None))
        t, weights, noise, t_hi = self._draw(x_start)
        loss_total, sums = self._forward_backward(x_start, cond, t, weights, noise, t_hi)
        grad_norm, loss_ok, grad_ok = self._check_gradients(loss_total)
        lr = self.lr_at(self.step)
        for group in self.opt.param_groups:
            group["lr"] = lr
        if self._update(loss_ok, grad_ok):
            self.ema.update()
            if self.master is not None:
                self.master.sync()
        self.step += 1
        out = dict(sums)
        out["_count"] = torch.tensor(float(shared_timesteps(t).shape[0]), device=self.device)
        out["_grad_norm"] = grad_norm.detach().float()
        out["_lr"] = lr
        return out

    def _forward_backward(self, x_start, cond, t, weights, noise, t_hi=None
                          ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """Losses and gradients over the microbatches (DDP all-reduces once, after the last one); feeds the
        timestep sampler. ``t_hi``: the own-step inputs' higher timesteps (``--own_step_inputs``), or None.
        Returns ``(weighted mean loss, {term: weighted local sum})``."""
        n, mb = shared_timesteps(t).shape[0], int(self.cfg.microbatch)
        sums: Dict[str, torch.Tensor] = {}
        self.opt.zero_grad(set_to_none=True)
        loss_total = torch.zeros((), device=self.device)
        starts = list(range(0, n, mb))
        for i, start in enumerate(starts):
            rows = slice(start, min(start + mb, n))
            sync = i == len(starts) - 1 or self._ddp is None
            with contextlib.nullcontext() if sync else self._ddp.no_sync():
                with self._autocast():
                    model_fn = self.task.model_fn(self.net, self.task.take(cond, rows))
                    x_rows, t_rows = tree_map(lambda v: v[rows], x_start), tree_map(lambda v: v[rows], t)
                    noise_rows = tree_map(lambda v: v[rows], noise)
                    if t_hi is not None:
                        noise_rows = own_step_noise(self.diffusion, model_fn, x_rows, t_rows, noise_rows,
                                                    self.own_step.key, t_hi[rows])
                    losses = self.diffusion.training_losses(model_fn, x_rows, t_rows, noise=noise_rows)
                per_row = apply_loss_bands(losses, t_rows, self.loss_bands)
                loss = (per_row.float() * weights[rows]).mean() * ((rows.stop - rows.start) / n)
                (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
            loss_total = loss_total + loss.detach()
            logged = dict(losses, band_loss=per_row) if self.loss_bands else losses  # band_loss: what is optimised
            for key, value in logged.items():
                term = (value.detach().float() * weights[rows]).sum()
                sums[key] = sums[key] + term if key in sums else term
            self.schedule.update_with_local_losses(shared_timesteps(t)[rows], losses["loss"].detach())
        if self.master is not None:  # the bf16 copy's gradients, in float32, onto the master weights
            self.master.pull_grads()
        return loss_total, sums

    def _check_gradients(self, loss_total: torch.Tensor) -> Tuple[torch.Tensor, bool, bool]:
        """Unscale, clip (``--grad_clip``) and measure the gradients; ``(grad_norm, loss_ok, grad_ok)`` agreed by
        every rank (one MIN all-reduce), so all ranks skip or apply the same updates."""
        if self.scaler is not None:
            self.scaler.unscale_(self.opt)
        grads = [p.grad for p in self.params if p.grad is not None]
        if self.cfg.grad_clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip, foreach=True)
        else:
            grad_norm = torch.nn.utils.get_total_norm(grads, foreach=True) if grads else torch.zeros((), device=self.device)
        flags = torch.stack([torch.isfinite(loss_total).float(), torch.isfinite(grad_norm).float()])
        if dist.is_distributed():
            flags = flags.to(self._comm_device())
            tdist.all_reduce(flags, op=tdist.ReduceOp.MIN)
        loss_ok, grad_ok = (bool(v) for v in flags.tolist())
        return grad_norm, loss_ok, grad_ok

    def _update(self, loss_ok: bool, grad_ok: bool) -> bool:
        """Apply the optimizer step, or skip it for a non-finite loss / gradient (``NonFiniteLossError`` after
        ``max_nonfinite`` in a row). With fp16 the grad scaler skips overflowing steps itself. True if applied."""
        if not loss_ok or (not grad_ok and self.scaler is None):
            self.opt.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.update()
            self.nonfinite_total += 1
            self._consecutive_bad += 1
            self.log.log(f"step {self.step}: non-finite {'loss' if not loss_ok else 'gradient'}; update skipped "
                         f"({self._consecutive_bad} in a row, {self.nonfinite_total} in total)")
            if self._consecutive_bad >= self.cfg.max_nonfinite:
                raise NonFiniteLossError(
                    f"{self._consecutive_bad} consecutive steps had a non-finite loss or gradient (last at step "
                    f"{self.step}); stopping. Lower --lr, set --grad_clip (e.g. 1.0), use --use_fp16 False, or check "
                    f"the data for NaN/Inf; the last good checkpoint is in {self.cfg.output_dir!r}")
            return False
        self._consecutive_bad = 0
        if self.scaler is None:
            self.opt.step()
            return True
        scale_before = self.scaler.get_scale()
        self.scaler.step(self.opt)
        self.scaler.update()
        applied = self.scaler.get_scale() >= scale_before
        if not applied:
            self.overflow_total += 1
        return applied

    def _comm_device(self) -> torch.device:
        return self.device if tdist.get_backend() == "nccl" else torch.device("cpu")

    # ------------------------------------------------------------------ logging / samples
    def _reduce_terms(self, sums: Dict[str, torch.Tensor]) -> Dict[str, float]:
        keys = sorted(sums)
        vec = torch.stack([sums[k].float().reshape(()) for k in keys])
        if dist.is_distributed():
            vec = vec.to(self._comm_device())
            tdist.all_reduce(vec)
        vals = dict(zip(keys, vec.tolist()))
        count = max(vals.pop("_count"), 1.0)
        return {k: v / count for k, v in vals.items()}

    def _log_row(self, acc: Dict[str, torch.Tensor], norms: List[torch.Tensor], lr: float, elapsed: float,
                 steps: int, samples: int) -> None:
        """One ``progress.csv`` row and log line for the steps since the last one (loss terms averaged over ranks)."""
        terms = self._reduce_terms(acc)
        row = {"step": self.step, "samples": self.step * self.cfg.batch_size * self.world,
               "loss": terms.pop("loss", float("nan"))}
        row.update(terms)
        row.update(grad_norm=float(torch.stack(norms).float().mean()), lr=lr, step_time=elapsed / max(steps, 1),
                   samples_per_sec=samples / max(elapsed, 1e-9), nonfinite_skips=self.nonfinite_total)
        self.log.row(row)
        self.log.log(" ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))

    def write_samples(self, batch=None) -> List[str]:
        """Rank 0: progress samples from the first EMA (or the model without EMA) into ``output_dir/samples``."""
        paths: List[str] = []
        if self.is_main and self.cfg.sample_num > 0:
            if self._sample_model is None:
                self._sample_model = copy.deepcopy(self.model)
            m = self._sample_model
            state = self.ema.state_dict(self.cfg.ema_rates[0]) if self.cfg.ema_rates else self.model.state_dict()
            m.load_state_dict(state)
            m.eval()
            devices = [self.device] if self.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices), torch.no_grad(), self._autocast():
                paths = self.task.write_samples(m, self.diffusion, os.path.join(self.cfg.output_dir, "samples"),
                                                self.step, self.cfg.sample_num, self.cfg.sample_method,
                                                self.cfg.sample_steps, self.cfg.seed, self.device, batch=batch)
            self.log.log(f"step {self.step}: wrote {len(paths)} sample(s) to {os.path.join(self.cfg.output_dir, 'samples')}")
        dist.barrier()
        return paths

    # ------------------------------------------------------------------ main loop
    def _next_batch(self):
        with torch.random.fork_rng(devices=[]):  # data loading must not move the training generators
            return next(self.data)

    def run(self) -> int:
        """Train until ``max_steps`` (forever when 0). Returns the last step."""
        cfg = self.cfg
        if getattr(self, "_resume_rng", None) is not None:
            set_rng_state(self._resume_rng)
            self._resume_rng = None
        self.model.train()
        acc: Dict[str, torch.Tensor] = {}
        norms: List[torch.Tensor] = []
        t_last, steps_since, samples_since = time.perf_counter(), 0, 0
        per_step_global = cfg.batch_size * self.world
        self.log.log(f"training from step {self.step} ({self.world} rank(s), {per_step_global} samples/step, "
                     f"precision {cfg.precision})")
        last_saved = None
        batch = None
        first_step = self.step
        try:
            while cfg.max_steps == 0 or self.step < cfg.max_steps:
                if cfg.lr_anneal_steps and self.step >= cfg.lr_anneal_steps:
                    break
                batch = self._next_batch()
                out = self.run_step(batch)
                norms.append(out.pop("_grad_norm"))
                lr = out.pop("_lr")
                for k, v in out.items():
                    acc[k] = acc[k] + v if k in acc else v
                steps_since += 1
                samples_since += per_step_global
                self.log.advance(1)
                if cfg.log_interval and self.step % cfg.log_interval == 0:
                    self._log_row(acc, norms, lr, time.perf_counter() - t_last, steps_since, samples_since)
                    acc, norms = {}, []
                    t_last, steps_since, samples_since = time.perf_counter(), 0, 0
                if cfg.save_interval and self.step % cfg.save_interval == 0:
                    self.save()
                    last_saved = self.step
                if cfg.sample_interval and self.step % cfg.sample_interval == 0:
                    self.write_samples(batch)
            if last_saved != self.step and self.step > first_step:
                self.save()
        finally:
            self.log.close()
        return self.step
