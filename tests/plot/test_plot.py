"""mm_diffusion.plot: training curves from progress.csv and the architecture diagram."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from mm_diffusion.models.configs import create_model, model_config
from mm_diffusion.plot import (
    architecture_blocks, architecture_figure_size, architecture_summary, draw_architecture, plot_training_curves,
    read_progress, rs_mma_layers, smooth,
)
from mm_diffusion.plot.__main__ import main

HEADER = "step,samples,loss,audio_mse,mse,video_mse,grad_norm,lr,step_time,samples_per_sec,nonfinite_skips"


def _write_progress(folder, rows=12, header=HEADER):
    lines = [header]
    for i in range(rows):
        step = (i + 1) * 10
        loss = 1.0 / (i + 1)
        lines.append(f"{step},{step * 4},{loss},{loss * 0.3},{loss},{loss * 1.2},{2.0 - i * 0.1},1e-4,0.5,8.0,0")
    path = os.path.join(folder, "progress.csv")
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def test_read_progress_values(tmp_path):
    _write_progress(tmp_path, rows=5)
    data = read_progress(str(tmp_path))
    np.testing.assert_allclose(data["step"], [10, 20, 30, 40, 50])
    np.testing.assert_allclose(data["loss"], [1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
    np.testing.assert_allclose(data["lr"], [1e-4] * 5)


def test_cli_writes_png_of_expected_size(tmp_path):
    _write_progress(tmp_path)
    out = tmp_path / "curves.png"
    assert main([str(tmp_path), "--out", str(out), "--smooth", "3", "--width", "800", "--height", "600"]) == 0
    with Image.open(out) as image:
        assert image.size == (800, 600)
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 5  # something was drawn, not a blank canvas
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp_")]


def test_default_output_path_and_size(tmp_path):
    _write_progress(tmp_path)
    path = plot_training_curves(str(tmp_path))
    assert path == str(tmp_path / "training_curves.png")
    with Image.open(path) as image:
        assert image.size == (1200, 900)


def test_optional_columns_may_be_missing(tmp_path):
    path = tmp_path / "progress.csv"
    path.write_text("step,loss\n1,0.9\n2,0.5\n3,nan\n")
    out = plot_training_curves(str(path), str(tmp_path / "c.png"), size=(400, 300))
    with Image.open(out) as image:
        assert image.size == (400, 300)


def test_smooth_is_trailing_mean():
    np.testing.assert_allclose(smooth(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1, 2, 4, 6])
    np.testing.assert_allclose(smooth(np.array([1.0, np.nan, 5.0]), 2), [1, 1, 5])
    with pytest.raises(ValueError, match="window"):
        smooth(np.ones(3), 0)


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "empty"),
        ("step,loss\n", "no data rows"),
        ("step,mse\n1,0.5\n", "lacks required column"),
        ("step,loss\n1,abc\n", "line 2, column 'loss'"),
        ("step,loss\n1,0.5,7\n", "3 fields, expected 2"),
    ],
)
def test_malformed_csv_errors(tmp_path, content, message):
    (tmp_path / "progress.csv").write_text(content)
    with pytest.raises(ValueError, match=message):
        plot_training_curves(str(tmp_path), str(tmp_path / "x.png"))
    assert not (tmp_path / "x.png").exists()


def test_missing_csv_errors(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="no progress.csv"):
        read_progress(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_progress(str(tmp_path / "nope"))
    assert main([str(tmp_path)]) == 2
    assert "no progress.csv" in capsys.readouterr().err


def test_tiny_architecture_blocks_and_rs_mma_windows():
    cfg = model_config("tiny")
    model = create_model("tiny")
    stages = architecture_blocks(model)
    assert [s.part for s in stages].count("input") == len(model.input_blocks)
    assert [s.part for s in stages].count("output") == len(model.output_blocks)
    windows = dict(zip(cfg["cross_attention_resolutions"], cfg["cross_attention_windows"]))  # {2: 1, 4: 2}
    rs = rs_mma_layers(stages)
    full_h = cfg["video_size"][2]
    # every RS-MMA sits at a downsampling factor listed in the config, with that factor's window, shift on
    assert len(rs) == 6
    for layer in rs:
        assert layer.window == windows[full_h // layer.height]
        assert layer.shift is True and layer.full is False
    assert [layer.window for layer in rs] == [1, 2, 2, 2, 1, 1]
    # input stage i feeds output stage n-1-i
    inputs = [s for s in stages if s.part == "input"]
    assert [s.skip for s in inputs] == list(range(len(inputs) - 1, -1, -1))
    text = architecture_summary(model)
    assert "RS-MMA 64ch | window 2, shift on | video 4x4x4, audio 100" in text
    assert "ResBlock down 32 | video 4x8x8, audio 400" in text


def test_architecture_resolutions_match_a_forward_pass():
    torch.manual_seed(0)
    model = create_model("tiny").eval()
    seen = []

    def hook(_module, _inputs, output):
        video, audio = output
        seen.append((video.shape[1], video.shape[2], video.shape[3], video.shape[4], audio.shape[1], audio.shape[2]))

    handles = [seq.register_forward_hook(hook) for seq in [*model.input_blocks, model.middle_blocks,
                                                             *model.output_blocks]]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 4, 3, 16, 16), torch.zeros(1, 1, 1600), torch.tensor([3]))
    finally:
        for handle in handles:
            handle.remove()
    drawn = [(s.layers[-1].out_channels, s.layers[-1].frames, s.layers[-1].height, s.layers[-1].width,
              s.layers[-1].out_channels, s.layers[-1].audio_length) for s in architecture_blocks(model)]
    assert drawn == seen


def test_paper_config_has_full_clip_middle_attention():
    with torch.device("meta"):
        model = create_model("paper")
    rs = rs_mma_layers(architecture_blocks(model))
    assert sorted({layer.window for layer in rs if not layer.full}) == [1, 4, 8]
    assert [layer.window for layer in rs if layer.full] == [16]


def test_architecture_figure_for_tiny(tmp_path):
    model = create_model("tiny")
    out = tmp_path / "fig" / "arch.png"
    path = draw_architecture(model, str(out), dpi=60)
    expected = architecture_figure_size(architecture_blocks(model), dpi=60)
    with Image.open(path) as image:
        assert image.size == expected
    assert expected[0] == 1020 and expected[1] > 300


def test_architecture_cli(tmp_path, capsys):
    out = tmp_path / "a.png"
    assert main(["architecture", "--config", "tiny", "--out", str(out), "--print", "--dpi", "50"]) == 0
    assert out.is_file()
    printed = capsys.readouterr().out
    assert "window 1, shift on" in printed and "wrote" in printed
    with pytest.raises(SystemExit):
        main(["architecture", "--config", "nonexistent"])


def test_architecture_rejects_other_models():
    with pytest.raises(ValueError, match="MultimodalUNet"):
        architecture_blocks(torch.nn.Linear(2, 2))


def test_committed_architecture_figure_matches_paper_layout():
    path = os.path.join(os.path.dirname(__file__), "..", "..", "fig", "architecture.png")
    with torch.device("meta"):
        model = create_model("paper")
    with Image.open(path) as image:
        assert image.size == architecture_figure_size(architecture_blocks(model), dpi=100)
