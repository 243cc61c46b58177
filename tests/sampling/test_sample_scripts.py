"""ssh_scripts/{multimodal_sample_sr,audio2video_sample_sr,video2audio_sample}.sh as a user runs them: no paths given,
the newest runs under outputs/ are found (coupled model and SR model), CPU, DPM-Solver."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from mm_diffusion.runs.locate import demo_checkpoint
from mm_diffusion.sampling.layout import OutputLayout, conditional_products, unconditional_products
from mm_diffusion.testing.checkpoints import write_random_checkpoint, write_random_sr_checkpoint

REPO = Path(__file__).resolve().parents[2]
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "PMI_RANK", "PMI_SIZE",
               "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALRANKID")
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _script(name, cwd, **env):
    full = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    full.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", ALL_SAVE_NUM="2", BATCH_SIZE="2", STEPS="1",
                SR_STEPS="1", **env)
    return subprocess.run(["bash", str(REPO / "ssh_scripts" / name), "--progress", "False"], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("user")
    write_random_checkpoint(str(cwd / "outputs" / "multimodal_train" / "ema_0.9999_000004.pt"), "tiny")
    write_random_sr_checkpoint(str(cwd / "outputs" / "image_sr_train" / "model000002.pt"))
    return cwd


def test_multimodal_sample_sr_script(workdir):
    proc = _script("multimodal_sample_sr.sh", workdir, LAUNCHER="torchrun")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "multimodal_train/ema_0.9999_000004.pt" in proc.stdout
    layout = OutputLayout(workdir / "samples" / "multimodal_sample_sr" / "ema_0.9999_000004.pt", "dpm_solver",
                          unconditional_products(4, "mp4", with_sr=True))
    assert layout.complete(5) == [0, 1]


def test_conditional_scripts(workdir):
    proc = _script("audio2video_sample_sr.sh", workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    layout = OutputLayout(workdir / "samples" / "audio2video_sample_sr" / "ema_0.9999_000004.pt", "dpm_solver",
                          conditional_products(4, "mp4", with_sr=True))
    assert layout.complete(5) == [0, 1]
    proc = _script("video2audio_sample.sh", workdir, CLASSIFIER_SCALE="1.0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    layout = OutputLayout(workdir / "samples" / "video2audio_sample" / "ema_0.9999_000004.pt", "dpm_solver",
                          conditional_products(4, "mp4"))
    assert layout.complete(5) == [0, 1]
    assert not (layout.root and os.path.exists(os.path.join(layout.root, "sr")))


def test_no_trained_run_samples_from_the_shipped_demo_checkpoint(tmp_path):
    """A fresh clone with nothing under outputs/: the sample script falls back to mm_diffusion/assets/demo.pt
    (its flags from demo.json) and, with no SR run and no shipped SR model, skips super-resolution.
    (The train-first error when there is no checkpoint at all: test_sample_layout.)"""
    shipped = demo_checkpoint()
    assert shipped is not None and os.path.basename(shipped) == "demo.pt"
    proc = _script("multimodal_sample_sr.sh", tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    layout = OutputLayout(tmp_path / "samples" / "multimodal_sample_sr" / "demo.pt", "dpm_solver",
                          unconditional_products(8, "mp4"))
    assert layout.complete(3) == [0, 1]
