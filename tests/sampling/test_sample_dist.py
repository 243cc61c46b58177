"""Two ranks (torchrun and mpiexec, gloo on CPU) share the samples: exactly --all_save_num distinct ones, resumable."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mm_diffusion.sampling.layout import OutputLayout, unconditional_products
from mm_diffusion.testing.checkpoints import write_random_checkpoint

REPO = Path(__file__).resolve().parents[2]
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "PMI_RANK", "PMI_SIZE",
               "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALRANKID",
               "OMPI_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_RANK")


def _env():
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", MM_DIST_TIMEOUT_MIN="5")
    return env


def _run(launcher, ckpt, out, total):
    job = ["-m", "mm_diffusion.sample", "--multimodal_model_path", ckpt, "--output_dir", str(out),
           "--all_save_num", str(total), "--batch_size", "2", "--steps", "1", "--progress", "False"]
    proc = subprocess.run(launcher + job, cwd=out.parent, env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, f"{launcher} failed:\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-4000:]}"
    return proc.stdout


def _check(out, total):
    layout = OutputLayout(out / "model000001.pt", "dpm_solver", unconditional_products(4, "mp4"))
    assert layout.complete(total + 5) == list(range(total))
    names = sorted(n for n in os.listdir(out / "model000001.pt" / "original") if not n.startswith("."))
    assert names == [f"dpm_solver_sample_{k:06d}.mp4" for k in range(total)]
    wavs = [sf.read(layout.paths(k)["audio"][0], dtype="float32")[0] for k in range(total)]
    for i in range(total):
        for j in range(i):
            assert not np.allclose(wavs[i], wavs[j]), (i, j)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return write_random_checkpoint(str(tmp_path_factory.mktemp("run") / "model000001.pt"), "tiny")


def test_two_ranks_torchrun_exact_count_and_resume(tmp_path, ckpt):
    torchrun = shutil.which("torchrun")
    launcher = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
    launcher += ["--standalone", "--nproc_per_node", "2"]  # local rendezvous on a free port
    out = tmp_path / "out"
    log = _run(launcher, ckpt, out, 3)          # 3 samples over 2 ranks: unequal shares
    assert "making 3" in log
    _check(out, 3)
    log = _run(launcher, ckpt, out, 3)          # same arguments again: nothing new
    assert "3 of 3 samples already" in log and "making 0" in log
    _check(out, 3)


@pytest.mark.mpi
def test_two_ranks_mpiexec(tmp_path, ckpt):
    mpiexec = shutil.which("mpiexec")
    if mpiexec is None:
        pytest.skip("mpiexec not installed")
    pytest.importorskip("mpi4py")
    out = tmp_path / "out"
    log = _run([mpiexec, "-n", "2", sys.executable], ckpt, out, 3)
    assert "making 3" in log and log.count("sampling complete") == 1
    _check(out, 3)
