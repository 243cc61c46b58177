"""Training across processes: a kill during a checkpoint write and an exact resume; 2 gloo ranks through
torchrun and mpiexec agree with each other and with one process running the doubled batch."""
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from mm_diffusion.runs.checkpoint import find_latest_checkpoint, load_checkpoint_file, load_state_dict_file

REPO = Path(__file__).resolve().parents[2]
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "PMI_RANK", "PMI_SIZE",
               "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALRANKID",
               "OMPI_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_RANK")
TRAIN = ["--config", "tiny", "--synthetic_num", "8", "--progress", "False", "--log_interval", "1"]

# Records which rank wrote which checkpoint file and keeps each rank's final weights.
WORKER = textwrap.dedent(
    """
    import json, os, sys, torch
    from mm_diffusion.training import loop as train_loop
    out = os.environ["WORKER_OUT"]
    writes = []
    real_save, real_run = train_loop.save_checkpoint, train_loop.TrainLoop.run
    def save(obj, path):
        writes.append(os.path.basename(path))
        return real_save(obj, path)
    def run(self):
        step = real_run(self)
        torch.save(self.model.state_dict(), os.path.join(out, f"weights{self.rank}.pt"))
        with open(os.path.join(out, f"rank{self.rank}.json"), "w") as f:
            json.dump({"step": step, "writes": writes, "world": self.world}, f)
        return step
    train_loop.save_checkpoint, train_loop.TrainLoop.run = save, run
    from mm_diffusion import train
    train.main(sys.argv[1:])
    """
)

# Trains, but dies (exit code 17) in the middle of writing the checkpoint file named by $CRASH_DURING,
# leaving a half-written temporary file beside it as a killed process would.
CRASHER = textwrap.dedent(
    """
    import os, sys
    from mm_diffusion.training import loop as train_loop
    real_save = train_loop.save_checkpoint
    def save(obj, path):
        name = os.path.basename(path)
        if name == os.environ["CRASH_DURING"]:
            with open(os.path.join(os.path.dirname(path), f".{name}.crash.tmp"), "wb") as handle:
                handle.write(b"PK\\x03\\x04 partial")
            os._exit(17)
        return real_save(obj, path)
    train_loop.save_checkpoint = save
    from mm_diffusion import train
    train.main(sys.argv[1:])
    """
)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", MM_DIST_TIMEOUT_MIN="3")
    env.update(extra)
    return env


def _run(cmd, timeout=240, **env):
    proc = subprocess.run(cmd, cwd=REPO, env=_env(**env), capture_output=True, text=True, timeout=timeout)
    return proc


def _train(out, *flags, **env):
    return _run([sys.executable, "-m", "mm_diffusion.train", *TRAIN, "--output_dir", str(out), *flags], **env)


def _same(a, b):
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_kill_during_checkpoint_write_then_exact_resume(tmp_path):
    flags = ["--batch_size", "2", "--save_interval", "2", "--max_steps", "4", "--ema_rate", "0.9,0.99",
             "--dropout", "0.1"]
    ref = tmp_path / "ref"
    done = _train(ref, *flags)
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "run"
    killed = _run([sys.executable, "-c", CRASHER, *TRAIN, "--output_dir", str(run), *flags],
                  CRASH_DURING="opt000004.pt")
    assert killed.returncode == 17, killed.stderr[-3000:]
    # the step-4 checkpoint is torn (model and EMA files written, optimizer file not): step 2 is the latest
    assert (run / "model000004.pt").exists() and not (run / "opt000004.pt").exists()
    assert find_latest_checkpoint(str(run)).step == 2
    resumed = _train(run, *flags, "--resume_checkpoint", str(run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed exactly from" in (run / "log.txt").read_text()
    for name in ("model000004.pt", "ema_0.9_000004.pt", "ema_0.99_000004.pt"):
        assert _same(load_state_dict_file(str(ref / name)), load_state_dict_file(str(run / name))), name
    a, b = load_checkpoint_file(str(ref / "opt000004.pt")), load_checkpoint_file(str(run / "opt000004.pt"))
    assert a["step"] == b["step"] == 4 and a["data"] == b["data"]
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"]) and torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])


def _two_rank_run(cmd, out, single):
    out.mkdir()
    proc = _run(cmd, timeout=300, WORKER_OUT=str(out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    info = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [i["world"] for i in info] == [2, 2] and [i["step"] for i in info] == [3, 3]
    assert info[0]["writes"] == ["ema_0.9999_000003.pt", "model000003.pt", "opt000003.pt"]
    assert info[1]["writes"] == []                                        # only rank 0 writes
    w0, w1 = (torch.load(out / f"weights{r}.pt", weights_only=True) for r in (0, 1))
    assert _same(w0, w1)                                                  # ranks agree exactly
    assert _same(w0, load_state_dict_file(str(out / "run" / "model000003.pt")))
    worst = max((w0[k] - single[k]).abs().max().item() for k in w0)
    close = sum(int(torch.isclose(w0[k], single[k], rtol=0, atol=1e-6).sum()) for k in w0)
    total = sum(v.numel() for v in w0.values())
    # equal to the single-process doubled batch up to float summation order (Adam's normalised step can turn
    # a rounding difference in a near-zero gradient into at most 2 * lr per step)
    assert worst <= 2 * 1e-4 * 3 and close / total > 0.999, (worst, close / total)
    progress = (out / "run" / "progress.csv").read_text().splitlines()
    assert progress[0].startswith("step,samples,loss") and progress[-1].startswith("3,6,")


@pytest.fixture(scope="module")
def single_process_weights(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    proc = _run([sys.executable, "-c", WORKER, *TRAIN, "--batch_size", "2", "--max_steps", "3",
                 "--output_dir", str(out / "run")], WORKER_OUT=str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(out / "weights0.pt", weights_only=True)


def _worker_file(tmp_path):
    path = tmp_path / "worker.py"
    path.write_text(WORKER)
    return str(path)


def test_torchrun_two_ranks_match_doubled_batch(tmp_path, single_process_weights):
    if shutil.which("torchrun") is None:
        pytest.skip("torchrun not on PATH")
    out = tmp_path / "tr"
    cmd = ["torchrun", "--standalone", "--nproc_per_node", "2", _worker_file(tmp_path), *TRAIN,
           "--batch_size", "1", "--max_steps", "3", "--output_dir", str(out / "run")]
    _two_rank_run(cmd, out, single_process_weights)


@pytest.mark.mpi
def test_mpiexec_two_ranks_match_doubled_batch(tmp_path, single_process_weights):
    if shutil.which("mpiexec") is None:
        pytest.skip("mpiexec not on PATH")
    pytest.importorskip("mpi4py")
    out = tmp_path / "mpi"
    cmd = ["mpiexec", "-n", "2", sys.executable, _worker_file(tmp_path), *TRAIN,
           "--batch_size", "1", "--max_steps", "3", "--output_dir", str(out / "run")]
    _two_rank_run(cmd, out, single_process_weights)
