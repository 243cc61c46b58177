"""--loss_band_weights: parsing, the weights, and what they do to the loss and to a training step."""
import json

import pytest
import torch

from mm_diffusion import train
from mm_diffusion.diffusion.loss_bands import LossBand, apply_loss_bands, band_weights, parse_loss_bands
from mm_diffusion.runs.checkpoint import load_state_dict_file


def test_parse_bands():
    assert parse_loss_bands("", 1000) == []
    assert parse_loss_bands("audio:550-800:3, video:0-99:0.5", 1000) == [LossBand("audio", 550, 800, 3.0),
                                                                        LossBand("video", 0, 99, 0.5)]
    assert parse_loss_bands("audio:0-99:2,audio:100-999:0", 1000)[1] == LossBand("audio", 100, 999, 0.0)


@pytest.mark.parametrize("spec, message", [
    ("sound:0-10:2", "not one of video, audio"),
    ("audio:0-1000:2", "HIGH < 1000"),
    ("audio:20-10:2", "LOW <= HIGH"),
    ("audio:0-10:-1", "WEIGHT must be"),
    ("audio:0-10:inf", "WEIGHT must be"),
    ("audio:0-10", "KEY:LOW-HIGH:WEIGHT"),
    ("audio:5:2", "KEY:LOW-HIGH:WEIGHT"),
    ("audio:a-10:2", "must be integers"),
    ("audio:0-10:2,audio:10-20:1", "overlaps audio:0-10"),
])
def test_parse_refuses_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_loss_bands(spec, 1000)


def test_band_weights_values():
    bands = parse_loss_bands("audio:550-800:3,video:0-9:0.5", 1000)
    t = torch.tensor([0, 549, 550, 700, 800, 801, 999])
    assert band_weights(bands, "audio", t).tolist() == [1, 1, 3, 3, 3, 1, 1]
    assert band_weights(bands, "video", t).tolist() == [0.5, 1, 1, 1, 1, 1, 1]


def test_apply_weights_only_the_named_modality_at_its_own_timesteps():
    losses = {"video_mse": torch.tensor([1.0, 2.0, 3.0]), "audio_mse": torch.tensor([10.0, 20.0, 30.0])}
    losses["loss"] = losses["video_mse"] + losses["audio_mse"]
    t = {"video": torch.tensor([600, 600, 600]), "audio": torch.tensor([100, 600, 900])}
    bands = parse_loss_bands("audio:550-800:3", 1000)
    assert apply_loss_bands(losses, t, bands).tolist() == [11.0, 2.0 + 60.0, 33.0]
    assert apply_loss_bands(losses, torch.tensor([600, 600, 100]), bands).tolist() == [31.0, 62.0, 33.0]
    assert apply_loss_bands(losses, t, []) is losses["loss"]


def test_apply_refuses_a_modality_the_task_does_not_have():
    losses = {"loss": torch.ones(2), "mse": torch.ones(2)}
    with pytest.raises(ValueError, match="no audio_mse"):
        apply_loss_bands(losses, torch.zeros(2, dtype=torch.long), parse_loss_bands("audio:0-9:2", 1000))


FAST = ["--config", "tiny", "--synthetic_num", "8", "--batch_size", "2", "--progress", "False", "--log_interval", "1",
        "--save_interval", "1", "--ema_rate", "0.9", "--max_steps", "1", "--independent_t_prob", "0.5"]


def test_training_with_bands(tmp_path):
    runs = {name: tmp_path / name for name in ("plain", "one", "zero")}
    assert train.main(FAST + ["--output_dir", str(runs["plain"])]) == 1
    assert train.main(FAST + ["--output_dir", str(runs["one"]), "--loss_band_weights", "audio:0-999:1"]) == 1
    assert train.main(FAST + ["--output_dir", str(runs["zero"]), "--loss_band_weights", "audio:0-999:0"]) == 1
    weights = {name: load_state_dict_file(str(path / "model000001.pt")) for name, path in runs.items()}
    plain = weights["plain"]
    assert all(torch.equal(plain[k], weights["one"][k]) for k in plain)  # weight 1 everywhere: the same step
    assert not all(torch.equal(plain[k], weights["zero"][k]) for k in plain)
    assert "band_loss=" in (runs["zero"] / "log.txt").read_text() and "band_loss" not in (runs["plain"] / "log.txt").read_text()
    args = json.load(open(runs["zero"] / "config.json"))["args"]
    assert args["loss_band_weights"] == "audio:0-999:0"


def test_training_refuses_a_bad_spec(tmp_path):
    with pytest.raises(ValueError, match="not one of video, audio"):
        train.main(FAST + ["--output_dir", str(tmp_path / "bad"), "--loss_band_weights", "sound:0-9:2"])
