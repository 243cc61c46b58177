"""mm_diffusion.runs.dist: single-process identities, and 2 gloo ranks under torchrun and mpiexec."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from mm_diffusion.runs import dist

REPO = Path(__file__).resolve().parents[2]

LAUNCH_VARS = (
    "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT",
    "PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK",
    "MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_RANK",
)

WORKER = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from mm_diffusion.runs import dist

    info = dist.setup_dist()
    r, w = info.rank, info.world_size
    # rank r contributes r+1 rows of value r: unequal first dimensions on purpose
    t = torch.full((r + 1, 2), float(r))
    gathered = dist.all_gather_tensor(t)
    objs = dist.all_gather_object({"rank": r})
    payload = dist.broadcast_object({"secret": 1234} if r == 0 else None, src=0)
    last = dist.broadcast_object(f"from{r}", src=w - 1)
    dist.barrier()
    out = {
        "rank": r, "world": w, "local": info.local_rank, "main": info.is_main,
        "launcher": info.launcher, "backend": info.backend, "device": str(info.device),
        "get_rank": dist.get_rank(), "get_world": dist.get_world_size(),
        "gathered": gathered.tolist(), "objs": objs, "payload": payload, "last": last,
        "shard": list(dist.shard_range(7)),
    }
    with open(os.path.join(sys.argv[1], f"rank{r}.json"), "w") as f:
        json.dump(out, f)
    dist.cleanup()
    """
)


def _clean_env():
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def _run(cmd, tmp_path, timeout=60):
    proc = subprocess.run(cmd, cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed:\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]


def _check_two_ranks(results, launcher):
    expected_gather = [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]
    for r, res in enumerate(results):
        assert res["rank"] == r and res["get_rank"] == r
        assert res["world"] == 2 and res["get_world"] == 2
        assert res["local"] == r
        assert res["main"] is (r == 0)
        assert res["launcher"] == launcher
        assert res["backend"] == "gloo"
        assert res["device"] == "cpu"
        assert res["gathered"] == expected_gather
        assert res["objs"] == [{"rank": 0}, {"rank": 1}]
        assert res["payload"] == {"secret": 1234}
        assert res["last"] == "from1"
    assert results[0]["shard"] + results[1]["shard"] == list(range(7))
    assert results[0]["shard"] == [0, 1, 2]


def test_torchrun_two_ranks(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    torchrun = shutil.which("torchrun")
    launcher = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
    # --standalone: a local rendezvous on a free port, so parallel test runs do not collide
    cmd = launcher + ["--standalone", "--nproc_per_node", "2", str(script), str(tmp_path)]
    _check_two_ranks(_run(cmd, tmp_path), "torchrun")


@pytest.mark.mpi
def test_mpiexec_two_ranks(tmp_path):
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec is not on PATH")
    pytest.importorskip("mpi4py")
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    cmd = [mpiexec, "-n", "2", sys.executable, str(script), str(tmp_path)]
    _check_two_ranks(_run(cmd, tmp_path), "mpi")


def test_single_process_identities(monkeypatch):
    for var in LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    dist.cleanup()
    try:
        info = dist.setup_dist()
        assert (info.rank, info.world_size, info.local_rank, info.is_main) == (0, 1, 0, True)
        assert info.launcher == "single" and info.backend is None
        assert dist.get_rank() == 0 and dist.get_world_size() == 1 and dist.is_main_process()
        assert dist.setup_dist() is info  # idempotent
        t = torch.arange(6.0).reshape(3, 2)
        assert dist.all_gather_tensor(t) is t
        assert dist.all_gather_object("x") == ["x"]
        assert dist.broadcast_object({"a": 1}) == {"a": 1}
        dist.barrier()
        assert list(dist.shard_range(5)) == [0, 1, 2, 3, 4]
        assert dist.dev() == info.device
        assert not torch.distributed.is_initialized()
    finally:
        dist.cleanup()


def test_single_process_under_mpiexec_of_one(monkeypatch):
    # mpiexec -n 1 sets PMI_SIZE=1: nothing to initialise, mpi4py not needed
    for var in LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PMI_RANK", "0")
    monkeypatch.setenv("PMI_SIZE", "1")
    dist.cleanup()
    try:
        info = dist.setup_dist()
        assert info.world_size == 1 and info.launcher == "mpi"
        assert not torch.distributed.is_initialized()
    finally:
        dist.cleanup()


def test_launcher_detection(monkeypatch):
    for var in LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    assert dist.detect_launcher() == "single"
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "0")
    assert dist.detect_launcher() == "mpi"
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert dist.detect_launcher() == "torchrun"


def test_parse_devices_and_errors():
    assert dist.parse_devices(None) is None
    assert dist.parse_devices("") is None
    assert dist.parse_devices("0,1, 3") == [0, 1, 3]
    assert dist.parse_devices([2]) == [2]
    assert dist.parse_devices(4) == [4]
    with pytest.raises(ValueError, match="'a'"):
        dist.parse_devices("0,a")
    with pytest.raises(ValueError, match="negative"):
        dist.parse_devices("-1")
    with pytest.raises(ValueError, match="backend"):
        dist.cleanup()
        dist.setup_dist(backend="tcp")
    with pytest.raises(ValueError, match="outside"):
        dist.shard_range(4, rank=2, world_size=2)
    with pytest.raises(ValueError, match="Tensor"):
        dist.all_gather_tensor([1, 2])
