"""Distributed set-up shared by train / sample / evaluate.

One function, :func:`setup_dist`, decides how this process runs:

* **torchrun** (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT`` set):
  ``torch.distributed`` is initialised from those variables (``env://``).
* **mpiexec** (an MPI launcher variable such as ``PMI_RANK`` / ``PMI_SIZE`` (MPICH, Intel MPI),
  ``OMPI_COMM_WORLD_RANK`` (Open MPI), ``PMIX_RANK`` or ``MPI_LOCALRANKID`` is set): ``mpi4py`` is
  imported (only then), rank 0 picks a free TCP port and broadcasts its address and the port over
  MPI, and ``torch.distributed`` is initialised over TCP.
* **neither**, or a world of one process: nothing is initialised; every collective below is the
  identity.

Backend: NCCL when this process uses a CUDA device, gloo otherwise (override with ``backend=``).
Devices: ``devices`` keeps the meaning of the original ``--devices`` flag, a comma list of GPU ids;
the process with local rank ``r`` uses ``devices[r % len(devices)]``. Without CUDA the device is
the CPU and ``devices`` is ignored (a warning says so).

Collectives (:func:`all_gather_tensor`, :func:`all_gather_object`, :func:`broadcast_object`,
:func:`barrier`) work the same whether or not a process group exists, so callers never branch on
the launch mode.
"""
from __future__ import annotations

import datetime
import os
import socket
import warnings
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Union

import torch
import torch.distributed as tdist

__all__ = [
    "DistInfo",
    "setup_dist",
    "get_rank",
    "get_world_size",
    "get_local_rank",
    "is_main_process",
    "is_distributed",
    "barrier",
    "all_gather_tensor",
    "all_gather_object",
    "broadcast_object",
    "cleanup",
    "dev",
    "parse_devices",
    "detect_launcher",
    "shard_range",
]

# Environment variables that MPI launchers set in every process they start.
MPI_RANK_VARS = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK")
MPI_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
MPI_LOCAL_RANK_VARS = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK")
TORCHRUN_VARS = ("RANK", "WORLD_SIZE")

_BACKENDS = ("nccl", "gloo", "mpi")


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands.

    rank / world_size / local_rank: as in ``torch.distributed`` (0 / 1 / 0 single-process).
    device: the ``torch.device`` this process computes on.
    is_main: ``rank == 0``.
    backend: the process-group backend, or ``None`` when nothing was initialised.
    launcher: ``"torchrun"``, ``"mpi"`` or ``"single"``.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    is_main: bool
    backend: Optional[str] = None
    launcher: str = "single"


_INFO: Optional[DistInfo] = None


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def parse_devices(devices: Union[None, str, int, Sequence[int]]) -> Optional[List[int]]:
    """Turn ``--devices`` (``"0,1,2"``, ``3``, ``[0, 1]`` or ``None``/``""``) into a list of GPU ids."""
    if devices is None:
        return None
    if isinstance(devices, int):
        items: List[Any] = [devices]
    elif isinstance(devices, str):
        text = devices.strip()
        if text == "":
            return None
        items = [p.strip() for p in text.split(",") if p.strip() != ""]
    else:
        items = list(devices)
    out = []
    for item in items:
        try:
            value = int(item)
        except (TypeError, ValueError):
            raise ValueError(
                f"--devices: {item!r} in {devices!r} is not a GPU id; use a comma list of "
                f"non-negative integers such as '0,1,2,3'"
            ) from None
        if value < 0:
            raise ValueError(f"--devices: GPU id {value} in {devices!r} is negative; ids start at 0")
        out.append(value)
    if not out:
        return None
    return out


def _first_env(names: Sequence[str]) -> Optional[int]:
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            try:
                return int(value)
            except ValueError:
                continue
    return None


def detect_launcher() -> str:
    """``"torchrun"`` when torchrun's variables are set, ``"mpi"`` under an MPI launcher, else ``"single"``."""
    if all(os.environ.get(v) not in (None, "") for v in TORCHRUN_VARS):
        return "torchrun"
    if any(os.environ.get(v) not in (None, "") for v in MPI_RANK_VARS + MPI_LOCAL_RANK_VARS):
        return "mpi"
    return "single"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _host_address() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def _pick_device(local_rank: int, devices: Optional[List[int]]) -> torch.device:
    if not torch.cuda.is_available():
        if devices:
            warnings.warn(f"--devices {devices} given but CUDA is not available; running on the CPU")
        return torch.device("cpu")
    count = torch.cuda.device_count()
    if devices:
        bad = [d for d in devices if d >= count]
        if bad:
            raise ValueError(
                f"--devices: GPU id(s) {bad} do not exist; this machine has {count} GPU(s) "
                f"(valid ids 0..{count - 1})"
            )
        return torch.device("cuda", devices[local_rank % len(devices)])
    return torch.device("cuda", local_rank % count)


def _timeout() -> datetime.timedelta:
    minutes = float(os.environ.get("MM_DIST_TIMEOUT_MIN", "30"))
    return datetime.timedelta(minutes=minutes)


# ----------------------------------------------------------------------------------------------
# set-up / tear-down
# ----------------------------------------------------------------------------------------------
def setup_dist(
    devices: Union[None, str, int, Sequence[int]] = None, backend: Optional[str] = None
) -> DistInfo:
    """Set up this process (see the module docstring) and return its :class:`DistInfo`.

    devices: GPU ids (``"0,1"`` or a list); local rank r uses ``devices[r % len(devices)]``.
    backend: ``"nccl"``, ``"gloo"`` or ``"mpi"``; default NCCL on CUDA, gloo on CPU.
    Calling it again returns the same information without re-initialising.
    """
    global _INFO
    if _INFO is not None:
        return _INFO
    if backend is not None and backend not in _BACKENDS:
        raise ValueError(f"backend {backend!r} is not supported; use one of {list(_BACKENDS)} or None")
    device_ids = parse_devices(devices)
    launcher = detect_launcher()

    if tdist.is_available() and tdist.is_initialized():
        # Someone else (a test harness, a notebook) already made the group: adopt it.
        rank, world = tdist.get_rank(), tdist.get_world_size()
        local = _first_env(("LOCAL_RANK",) + MPI_LOCAL_RANK_VARS)
        local = rank if local is None else local
        device = _pick_device(local, device_ids)
        _INFO = DistInfo(rank, world, local, device, rank == 0, tdist.get_backend(), launcher)
        return _INFO

    if launcher == "torchrun":
        rank = int(os.environ["RANK"])
        world = int(os.environ["WORLD_SIZE"])
        local = _first_env(("LOCAL_RANK",))
        local = rank if local is None else local
        device = _pick_device(local, device_ids)
        chosen = None
        if world > 1:
            for var in ("MASTER_ADDR", "MASTER_PORT"):
                if os.environ.get(var) in (None, ""):
                    raise ValueError(f"torchrun launch: environment variable {var} is not set")
            chosen = backend or ("nccl" if device.type == "cuda" else "gloo")
            _check_backend(chosen, device)
            if device.type == "cuda":
                torch.cuda.set_device(device)
            tdist.init_process_group(
                chosen, init_method="env://", rank=rank, world_size=world, timeout=_timeout()
            )
        _INFO = DistInfo(rank, world, local, device, rank == 0, chosen, launcher)
        return _INFO

    if launcher == "mpi":
        env_size = _first_env(MPI_SIZE_VARS)
        if env_size == 1:
            device = _pick_device(0, device_ids)
            _INFO = DistInfo(0, 1, 0, device, True, None, launcher)
            return _INFO
        try:
            from mpi4py import MPI  # imported only under an MPI launcher
        except ImportError as exc:
            raise RuntimeError(
                "launched by mpiexec but mpi4py is not installed; `pip install mpi4py mpich` "
                "or launch with torchrun instead"
            ) from exc
        comm = MPI.COMM_WORLD
        rank, world = comm.Get_rank(), comm.Get_size()
        local = _first_env(MPI_LOCAL_RANK_VARS)
        node_comm = comm.Split_type(MPI.COMM_TYPE_SHARED, key=rank)
        try:
            if local is None:
                local = node_comm.Get_rank()
            single_node = node_comm.Get_size() == world
        finally:
            node_comm.Free()
        device = _pick_device(local, device_ids)
        chosen = None
        if world > 1:
            chosen = backend or ("nccl" if device.type == "cuda" else "gloo")
            _check_backend(chosen, device)
            if rank == 0:
                addr = "127.0.0.1" if single_node else _host_address()
                payload = (addr, _free_port())
            else:
                payload = None
            addr, port = comm.bcast(payload, root=0)
            if device.type == "cuda":
                torch.cuda.set_device(device)
            if chosen == "mpi":
                tdist.init_process_group("mpi", timeout=_timeout())
            else:
                tdist.init_process_group(
                    chosen,
                    init_method=f"tcp://{addr}:{port}",
                    rank=rank,
                    world_size=world,
                    timeout=_timeout(),
                )
        _INFO = DistInfo(rank, world, local, device, rank == 0, chosen, launcher)
        return _INFO

    device = _pick_device(0, device_ids)
    _INFO = DistInfo(0, 1, 0, device, True, None, "single")
    return _INFO


def _check_backend(backend: str, device: torch.device) -> None:
    if backend == "nccl" and device.type != "cuda":
        raise ValueError("backend 'nccl' needs CUDA devices; use backend='gloo' on the CPU")


def cleanup() -> None:
    """Destroy the process group (if any) and forget the set-up; safe to call twice."""
    global _INFO
    if tdist.is_available() and tdist.is_initialized():
        tdist.destroy_process_group()
    _INFO = None


# ----------------------------------------------------------------------------------------------
# queries
# ----------------------------------------------------------------------------------------------
def is_distributed() -> bool:
    """True when a process group with more than one rank exists."""
    return tdist.is_available() and tdist.is_initialized() and tdist.get_world_size() > 1


def get_rank() -> int:
    """This process's global rank (0 when single-process)."""
    if tdist.is_available() and tdist.is_initialized():
        return tdist.get_rank()
    return _INFO.rank if _INFO is not None else 0


def get_world_size() -> int:
    """Number of processes (1 when single-process)."""
    if tdist.is_available() and tdist.is_initialized():
        return tdist.get_world_size()
    return _INFO.world_size if _INFO is not None else 1


def get_local_rank() -> int:
    """Rank within this node (0 when single-process)."""
    return _INFO.local_rank if _INFO is not None else 0


def is_main_process() -> bool:
    """True on rank 0."""
    return get_rank() == 0


def dev() -> torch.device:
    """The device this process computes on (set by :func:`setup_dist`; else CUDA if present, else CPU)."""
    if _INFO is not None:
        return _INFO.device
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def shard_range(n: int, rank: Optional[int] = None, world_size: Optional[int] = None) -> range:
    """The contiguous share ``[rank*n//W, (rank+1)*n//W)`` of ``range(n)`` for one rank.

    Shares are disjoint, cover ``range(n)`` exactly, and concatenated in rank order give
    ``range(n)`` back, so an :func:`all_gather_tensor` of per-rank results keeps the order.
    """
    if n < 0:
        raise ValueError(f"shard_range: n must be >= 0, got {n}")
    rank = get_rank() if rank is None else rank
    world_size = get_world_size() if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"shard_range: rank {rank} is outside [0, {world_size})")
    return range(rank * n // world_size, (rank + 1) * n // world_size)


# ----------------------------------------------------------------------------------------------
# collectives
# ----------------------------------------------------------------------------------------------
def _comm_device() -> torch.device:
    if tdist.get_backend() == "nccl":
        return dev()
    return torch.device("cpu")


def barrier() -> None:
    """Wait for every rank (no-op when single-process)."""
    if not is_distributed():
        return
    if tdist.get_backend() == "nccl" and dev().type == "cuda":
        tdist.barrier(device_ids=[dev().index if dev().index is not None else 0])
    else:
        tdist.barrier()


def all_gather_tensor(t: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``t`` along dim 0, in rank order.

    t: ``[n_r, ...]``; the first dimension may differ between ranks, the others must match.
    Returns ``[sum_r n_r, ...]`` on ``t``'s device with ``t``'s dtype; ``t`` itself when single-process.
    """
    if not torch.is_tensor(t):
        raise ValueError(f"all_gather_tensor expects a torch.Tensor, got {type(t).__name__}")
    if not is_distributed():
        return t
    if t.dim() == 0:
        t = t.reshape(1)
    world = tdist.get_world_size()
    cdev = _comm_device()
    local = t.detach().to(cdev).contiguous()
    # Shapes first: the first dimension may differ per rank.
    shapes = all_gather_object(tuple(local.shape))
    tails = {s[1:] for s in shapes}
    if len(tails) != 1:
        raise ValueError(f"all_gather_tensor: trailing shapes differ between ranks: {shapes}")
    longest = max(s[0] for s in shapes)
    if local.shape[0] < longest:
        pad = torch.zeros((longest - local.shape[0],) + tuple(local.shape[1:]), dtype=local.dtype, device=cdev)
        local = torch.cat([local, pad], dim=0)
    buffers = [torch.empty_like(local) for _ in range(world)]
    tdist.all_gather(buffers, local)
    parts = [buf[: s[0]] for buf, s in zip(buffers, shapes)]
    return torch.cat(parts, dim=0).to(t.device)


def all_gather_object(obj: Any) -> List[Any]:
    """Every rank's ``obj`` as a list in rank order (``[obj]`` when single-process).

    Objects travel between the processes of one job only (never through files).
    """
    if not is_distributed():
        return [obj]
    out: List[Any] = [None] * tdist.get_world_size()
    tdist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (``obj`` itself when single-process)."""
    if not is_distributed():
        return obj
    box = [obj if get_rank() == src else None]
    tdist.broadcast_object_list(box, src=src)
    return box[0]
