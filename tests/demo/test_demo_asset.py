"""The shipped demo model (mm_diffusion/assets): present, within the size limit, the hash its model card records,
a strict load into the card's config, and weights that are actually trained (they denoise held-out clips)."""
import csv
import hashlib
import json
import os
import re

import torch

from mm_diffusion.diffusion.data_scale import scale_data, unscale_data
from mm_diffusion.models.configs import MODEL_CONFIGS, create_model
from mm_diffusion.demo import run as demo_run
from mm_diffusion.runs.locate import ASSETS_DIR, demo_checkpoint

WEIGHTS = os.path.join(ASSETS_DIR, "demo.pt")
FLAGS = os.path.join(ASSETS_DIR, "demo.json")
CARD = os.path.join(ASSETS_DIR, "MODEL_CARD.md")
PROGRESS = os.path.join(ASSETS_DIR, "demo_progress.csv")


def _sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _card():
    with open(CARD, encoding="utf-8") as handle:
        return handle.read()


def test_assets_exist_and_are_small():
    for path in (WEIGHTS, FLAGS, CARD, PROGRESS):
        assert os.path.isfile(path), f"missing shipped file {path}"
    assert os.path.getsize(WEIGHTS) <= 25 * 2 ** 20
    assert demo_checkpoint() == WEIGHTS
    assert demo_run.resolve_checkpoint("") == WEIGHTS


def test_hash_matches_model_card_and_flags():
    digest = _sha256(WEIGHTS)
    recorded = re.findall(r"SHA-256[^0-9a-f]*([0-9a-f]{64})", _card())
    assert recorded, "the model card must record the SHA-256 of demo.pt"
    assert set(recorded) == {digest}
    with open(FLAGS, encoding="utf-8") as handle:
        assert json.load(handle)["sha256"] == digest


def test_weights_are_a_plain_state_dict_loaded_without_code():
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    assert isinstance(state, dict) and state
    assert all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_loads_strictly_into_the_config_of_its_model_card():
    card = _card()
    assert "`--config demo`" in card
    model, diffusion, info = demo_run.load_demo_model(WEIGHTS)
    reference = create_model("demo").state_dict()
    shipped = model.state_dict()
    assert list(shipped) == list(reference)
    assert all(shipped[k].shape == reference[k].shape for k in reference)
    cfg = MODEL_CONFIGS["demo"]
    assert info["video_size"] == tuple(cfg["video_size"]) and info["audio_size"] == tuple(cfg["audio_size"])
    with open(FLAGS, encoding="utf-8") as handle:
        flags = json.load(handle)["args"]
    # the rates, seed and data settings the card states are the ones the demo uses
    assert info["fps"] == flags["video_fps"] and info["audio_rate"] == flags["audio_fps"]
    assert info["hum_level"] == flags["hum_level"] and info["train_seed"] == flags["seed"]
    assert f"{info['audio_rate']} Hz" in card and f"hum_level {info['hum_level']:g}" in card
    assert int(info["train_seed"]) < demo_run.HELD_OUT_MIN_SEED
    params = sum(p.numel() for p in model.parameters())
    assert f"{params:,}" in card


def test_card_progress_matches_the_shipped_progress_csv():
    with open(PROGRESS, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and {"step", "loss", "video_mse", "audio_mse"} <= set(rows[0])
    last = rows[-1]
    with open(FLAGS, encoding="utf-8") as handle:
        doc = json.load(handle)
    assert int(last["step"]) == doc["source"]["step"] <= doc["args"]["max_steps"]
    assert f"{int(last['step']):,} steps" in _card()
    # the loss went down over the final stage, and over the first x0-prediction stage trained from epsilon weights
    first = sum(float(r["loss"]) for r in rows[:3]) / 3
    final = sum(float(r["loss"]) for r in rows[-10:]) / 10
    assert final < first
    with open(os.path.join(ASSETS_DIR, "demo_progress_stage2.csv"), newline="", encoding="utf-8") as handle:
        stage2 = list(csv.DictReader(handle))
    assert sum(float(r["loss"]) for r in stage2[-10:]) / 10 < 0.25 * sum(float(r["loss"]) for r in stage2[:3]) / 3
    for stage in range(1, 6):  # every earlier stage of the lineage ships its curve, and the card names it
        name = f"demo_progress_stage{stage}.csv"
        assert os.path.isfile(os.path.join(ASSETS_DIR, name)) and name in _card()


def test_shipped_weights_denoise_held_out_clips():
    """Noise held-out clips to t = 50 and let the model estimate the clean clip (it predicts x0, as demo.json
    says): trained weights recover most of it; a random network does not."""
    with open(FLAGS, encoding="utf-8") as handle:
        assert json.load(handle)["args"]["predict_xstart"] is True
    model, diffusion, info = demo_run.load_demo_model(WEIGHTS)
    clips = demo_run.held_out_clips(4, info, demo_run.HELD_OUT_MIN_SEED + 7)
    gen = torch.Generator().manual_seed(0)
    t = torch.full((4,), 50, dtype=torch.long)
    scale = getattr(diffusion, "data_scale", None)  # a run's --data_scale: the network sees scaled clips
    scaled = scale_data(clips, scale)
    noisy = diffusion.q_sample(scaled, t, noise={k: torch.randn(v.shape, generator=gen) for k, v in scaled.items()})
    random_model = create_model("demo").eval()
    errors = {}
    for name, net in (("shipped", model), ("random", random_model)):
        with torch.no_grad():
            video_x0, audio_x0 = net(noisy["video"], noisy["audio"], t)
        x0 = unscale_data({"video": video_x0, "audio": audio_x0}, scale)
        errors[name] = {k: (x0[k] - clips[k]).pow(2).mean().item() for k in ("video", "audio")}
    # relative to the clean signal's power (video about 0.65, audio about 0.01 per element)
    power = {k: v.pow(2).mean().item() for k, v in clips.items()}
    for key in ("video", "audio"):
        assert errors["shipped"][key] < 0.1 * power[key], (key, errors, power)
        assert errors["random"][key] > 0.5 * power[key], (key, errors, power)


def test_demo_runs_on_the_shipped_checkpoint(tmp_path):
    """The README's main command on the shipped weights, with few samples and steps (its quality is the model
    card's table, measured with the defaults)."""
    out = tmp_path / "demo"
    lines = []
    doc = demo_run.run_demo(demo_run.create_parser().parse_args([
        "--out", str(out), "--num_samples", "2", "--num_conditional", "2", "--num_real", "8", "--steps", "4",
        "--no_progress"]), log=lines.append)
    assert doc["checkpoint"] == os.path.abspath(WEIGHTS) and doc["checkpoint_sha256"] == _sha256(WEIGHTS)
    assert doc["video_size"] == [8, 3, 32, 32] and doc["audio_size"] == [1, 3200] and doc["audio_fps"] == 4000
    assert doc["counts"]["unconditional"] == 2 and doc["rows"]["real"]["av_sync_f1"] == 1.0
    assert any(line.startswith("unconditional") for line in "\n".join(lines).splitlines())
    for task in ("unconditional", "audio2video", "video2audio", "real"):
        assert (out / f"contact_{task}.png").is_file()
        assert (out / task / f"{task}_001.mp4").is_file()
