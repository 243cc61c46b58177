"""mm_diffusion.training.loop / mm_diffusion.train in-process: learning, non-finite handling,
microbatching, EMA, learning-rate schedule, weights-only fine-tuning, resume from a model file, bad input."""
import csv
import json
import os

import pytest
import torch

from mm_diffusion import train
from mm_diffusion.data import load_data
from mm_diffusion.diffusion import create_gaussian_diffusion
from mm_diffusion.models.configs import create_model
from mm_diffusion.runs.checkpoint import load_checkpoint_file, load_state_dict_file
from mm_diffusion.runs.ema import EMA, parse_ema_rates
from mm_diffusion.training.loop import NonFiniteLossError, TrainConfig, TrainLoop, resolve_resume
from mm_diffusion.training.tasks import AVTask

TINY = dict(video_size=(4, 3, 16, 16), audio_size=(1, 1600))
FAST = ["--config", "tiny", "--synthetic_num", "8", "--batch_size", "2", "--progress", "False", "--log_interval", "1"]


def _loop(tmp_path, model=None, resume=None, **cfg):
    torch.manual_seed(0)
    model = model or create_model("tiny")
    diffusion = create_gaussian_diffusion(steps=1000)
    data = load_data(data_dir="synthetic:8", batch_size=cfg.get("batch_size", 2), video_fps=10, audio_fps=4000,
                     progress=False, **TINY)
    settings = dict(output_dir=str(tmp_path), batch_size=2, log_interval=0, save_interval=0, ema_rates=[],
                    progress=False)
    settings.update(cfg)
    return TrainLoop(model, diffusion, data, AVTask(TINY["video_size"], TINY["audio_size"], 10, 4000),
                     TrainConfig(**settings), resume=resume)


def _fixed_loss(model, diffusion, batch):
    gen = torch.Generator().manual_seed(123)
    n = batch["video"].shape[0]
    t = torch.linspace(50, 950, n).long()
    noise = {k: torch.randn(v.shape, generator=gen) for k, v in batch.items()}
    fn = AVTask.model_fn(model, None, torch.Generator().manual_seed(7))
    with torch.no_grad():
        return diffusion.training_losses(fn, batch, t, noise=noise)["loss"].mean().item()


def test_loss_decreases_on_synthetic_data(tmp_path):
    loop = _loop(tmp_path, lr=3e-3, max_steps=6, batch_size=2)
    eval_batch = next(load_data(data_dir="synthetic:8", batch_size=8, video_fps=10, audio_fps=4000,
                                deterministic=True, progress=False, **TINY))
    before = _fixed_loss(loop.model, loop.diffusion, eval_batch)
    assert loop.run() == 6
    after = _fixed_loss(loop.model, loop.diffusion, eval_batch)
    assert before == pytest.approx(2.0, abs=0.2)          # zero-initialised output: MSE 1 per modality
    assert after < 0.7 * before, (before, after)


def test_injected_nan_is_skipped_then_repeated_nans_stop(tmp_path):
    loop = _loop(tmp_path, ema_rates=["0.9"], max_nonfinite=3)
    real = loop.diffusion.training_losses
    bad_calls = {1}
    calls = {"n": 0}

    def poisoned(*args, **kwargs):
        out = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] in bad_calls or "all" in bad_calls:
            out["loss"] = out["loss"] * float("nan")
        return out

    loop.diffusion.training_losses = poisoned
    before = [p.detach().clone() for p in loop.model.parameters()]
    ema_before = [a.clone() for a in loop.ema.averages["0.9"]]
    loop.run_step(next(loop.data))
    assert loop.step == 1 and loop.nonfinite_total == 1
    assert all(torch.equal(a, p) for a, p in zip(before, loop.model.parameters()))   # no update
    assert all(torch.equal(a, b) for a, b in zip(ema_before, loop.ema.averages["0.9"]))
    loop.run_step(next(loop.data))                                                    # a good step
    assert loop.nonfinite_total == 1
    assert not all(torch.equal(a, p) for a, p in zip(before, loop.model.parameters()))
    bad_calls.add("all")
    with pytest.raises(NonFiniteLossError, match="3 consecutive steps"):
        for _ in range(5):
            loop.run_step(next(loop.data))
    assert loop.nonfinite_total == 4
    assert "non-finite loss" in open(tmp_path / "log.txt").read()


def test_microbatches_accumulate_the_full_batch_gradient(tmp_path):
    grads = []
    for micro in (4, 1):
        torch.manual_seed(1)
        model = create_model("tiny", cross_attention_shift=False)
        loop = _loop(tmp_path, model=model, batch_size=4, microbatch=micro)
        torch.manual_seed(5)
        loop.run_step(next(loop.data))
        grads.append([p.grad.clone() for p in model.parameters()])
    for full, acc in zip(*grads):
        torch.testing.assert_close(acc, full, rtol=1e-4, atol=1e-6)


def test_ema_update_formula_and_layout():
    model = torch.nn.Linear(2, 2)
    ema = EMA(model, parse_ema_rates("0.9,0.5"))
    start = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update()
    torch.testing.assert_close(ema.state_dict("0.9")["weight"], start + 0.1)
    torch.testing.assert_close(ema.state_dict(0.5)["weight"], start + 0.5)
    assert set(ema.state_dict("0.9")) == set(model.state_dict())
    with pytest.raises(ValueError, match="must be in"):
        parse_ema_rates("0.9,1.5")
    with pytest.raises(ValueError, match="not a number"):
        parse_ema_rates("fast")


def test_lr_warmup_and_anneal(tmp_path):
    loop = _loop(tmp_path, lr=1e-3, lr_warmup_steps=4, lr_anneal_steps=10)
    assert [round(loop.lr_at(s), 8) for s in (0, 1, 3, 5)] == [2.5e-4, 4.5e-4, 7e-4, 5e-4]


def test_published_weights_initialise_fine_tuning(tmp_path):
    torch.manual_seed(99)
    published = create_model("tiny").state_dict()
    path = tmp_path / "AIST++.pt"
    torch.save({k: v.half() for k, v in published.items()}, path)   # published files may be fp16
    plan = resolve_resume(str(path))
    assert plan is not None and not plan.exact
    loop = _loop(tmp_path / "run", resume=plan, ema_rates=["0.9999"])
    assert loop.step == 0 and len(loop.opt.state) == 0
    for key, value in loop.model.state_dict().items():
        assert torch.equal(value, published[key].half().float())
    ema = loop.ema.state_dict("0.9999")
    assert all(torch.equal(ema[k], v) for k, v in loop.model.state_dict().items())   # EMA starts at the weights


def test_cli_resume_from_model_file_matches_uninterrupted_run(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    common = FAST + ["--save_interval", "2", "--ema_rate", "0.9", "--dropout", "0.1"]
    assert train.main(common + ["--output_dir", str(a), "--max_steps", "4"]) == 4
    assert train.main(common + ["--output_dir", str(b), "--max_steps", "2"]) == 2
    assert train.main(common + ["--output_dir", str(b), "--max_steps", "4",
                                "--resume_checkpoint", str(b / "model000002.pt")]) == 4
    for name in ("model000004.pt", "ema_0.9_000004.pt"):
        sa, sb = load_state_dict_file(str(a / name)), load_state_dict_file(str(b / name))
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name
    oa, ob = load_checkpoint_file(str(a / "opt000004.pt")), load_checkpoint_file(str(b / "opt000004.pt"))
    assert oa["step"] == ob["step"] == 4 and oa["data"] == ob["data"]
    assert torch.equal(oa["rng"]["torch"], ob["rng"]["torch"])
    rows = list(csv.DictReader(open(b / "progress.csv")))
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]
    assert [r["loss"] for r in rows] == [r["loss"] for r in csv.DictReader(open(a / "progress.csv"))]
    config = json.load(open(b / "config.json"))
    assert config["model"]["video_size"] == [4, 3, 16, 16] and config["audio_fps"] == 4000
    assert config["resume"]["exact"] is True


def test_cli_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        train.main(FAST + ["--data_dir", str(tmp_path / "missing"), "--output_dir", str(tmp_path / "o")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no usable clip"):
        train.main(FAST + ["--data_dir", str(tmp_path / "empty"), "--output_dir", str(tmp_path / "o")])
    (tmp_path / "afile").write_text("x")
    with pytest.raises(PermissionError, match="not writable"):
        train.main(FAST + ["--output_dir", str(tmp_path / "afile" / "run")])
    with pytest.raises(ValueError, match="use 960 or 1024"):
        train.main(FAST + ["--audio_size", "1,1000", "--output_dir", str(tmp_path / "o")])
    with pytest.raises(ValueError, match="microbatch"):
        train.main(FAST + ["--microbatch", "3", "--output_dir", str(tmp_path / "o")])
    with pytest.raises(FileNotFoundError, match="no complete checkpoint"):
        train.main(FAST + ["--resume_checkpoint", str(tmp_path / "empty"), "--output_dir", str(tmp_path / "o")])
    other = tmp_path / "other.pt"
    torch.save(create_model("tiny", model_channels=64).state_dict(), other)
    with pytest.raises(ValueError) as err:
        train.main(FAST + ["--resume_checkpoint", str(other), "--output_dir", str(tmp_path / "o"), "--max_steps", "1"])
    assert "mis-shaped" in str(err.value) and "time_embed.0.weight: (64, 64) vs (32, 32)" in str(err.value)
    assert not os.path.exists(tmp_path / "o" / "model000001.pt")


def test_precision_resolution_and_bf16_step_on_cpu(tmp_path):
    from mm_diffusion.models.precision import resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("auto", False, cpu) == "fp32"
    assert resolve_precision("auto", True, cpu) == "bf16"
    with pytest.raises(ValueError, match="needs a CUDA device"):
        resolve_precision("fp16", False, cpu)
    with pytest.raises(ValueError, match="auto, fp32, bf16, bf16_autocast, fp16"):
        resolve_precision("int8", False, cpu)
    loop = _loop(tmp_path, precision="bf16", grad_clip=0.5)
    before = [p.detach().clone() for p in loop.model.parameters()]
    out = loop.run_step(next(loop.data))
    assert loop.nonfinite_total == 0 and torch.isfinite(out["loss"])
    assert out["_grad_norm"] > 0.5                     # the norm before clipping is reported
    assert next(loop.model.parameters()).dtype == torch.float32      # master weights stay fp32
    assert not all(torch.equal(a, p) for a, p in zip(before, loop.model.parameters()))
