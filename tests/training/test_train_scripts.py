"""ssh_scripts/multimodal_train.sh and image_sr_train.sh run as-is (settings from the environment)."""
import os
import subprocess
from pathlib import Path

import pytest

from mm_diffusion.runs.checkpoint import find_latest_checkpoint

REPO = Path(__file__).resolve().parents[2]
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "PMI_RANK", "PMI_SIZE",
               "MPI_LOCALRANKID", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")


def _script(name, tmp_path, *extra, **env):
    full = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    full.update(OMP_NUM_THREADS="2", CUDA_VISIBLE_DEVICES="", MAX_STEPS="1", LOG_INTERVAL="1",
                SAVE_INTERVAL="1", SAMPLE_INTERVAL="1", OUTPUT_DIR=str(tmp_path / "out"))
    full.update(env)
    return subprocess.run(["bash", str(REPO / "ssh_scripts" / name), "--progress", "False", *extra],
                          cwd=tmp_path, env=full, capture_output=True, text=True, timeout=300)


def test_multimodal_train_script(tmp_path):
    proc = _script("multimodal_train.sh", tmp_path, "--synthetic_num", "4", "--sample_steps", "2",
                   "--sample_num", "1", CONFIG="tiny", BATCH_SIZE="2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    latest = find_latest_checkpoint(str(tmp_path / "out"))
    assert latest.step == 1 and latest.ema_path("0.9999") is not None
    assert (tmp_path / "out" / "samples" / "step000001_0.mp4").stat().st_size > 0


def test_image_sr_train_script(tmp_path):
    proc = _script("image_sr_train.sh", tmp_path, "--synthetic_num", "2", "--sample_steps", "2", "--sample_num", "1",
                   LARGE_SIZE="16", SMALL_SIZE="4", BATCH_SIZE="1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert find_latest_checkpoint(str(tmp_path / "out")).step == 1
    assert (tmp_path / "out" / "samples" / "step000001.png").exists()


def test_script_rejects_unknown_launcher(tmp_path):
    proc = _script("multimodal_train.sh", tmp_path, LAUNCHER="slurm")
    assert proc.returncode == 2 and "LAUNCHER must be mpiexec or torchrun" in proc.stderr
