"""Class folders -> labels, end to end: ``train --class_cond True`` on a folder of tiny files written here,
then sampling the trained run with ``--class_id`` and with uniform labels (through a class-conditional SR
stage too)."""
import json

import pytest
import torch

from mm_diffusion import sample as sample_job
from mm_diffusion import train
from mm_diffusion.data import load_data
from mm_diffusion.cli import flags
from mm_diffusion.runs.checkpoint import load_state_dict_file
from mm_diffusion.sampling.generate import sample_labels
from mm_diffusion.sampling.sr_stage import SRStage
from mm_diffusion.training.tasks import AVTask

from .av_files import write_av

CLASSES = ["drums", "piano", "violin"]
TINY = ["--config", "tiny", "--video_fps", "10", "--audio_fps", "4000", "--batch_size", "2", "--progress", "False",
        "--log_interval", "1", "--save_interval", "2", "--sample_interval", "0"]


@pytest.fixture(scope="module")
def class_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("classes")
    for i, name in enumerate(CLASSES):
        write_av(str(root / name / f"clip{i}.mp4"), seconds=0.8, rate=8000, width=16, height=16)
    return root


@pytest.fixture(scope="module")
def trained(class_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert train.main(TINY + ["--data_dir", str(class_dir), "--class_cond", "True", "--output_dir", str(out),
                              "--max_steps", "2"]) == 2
    return out


def test_batches_carry_labels_of_the_sorted_folders(class_dir):
    stream = load_data(data_dir=str(class_dir), batch_size=4, video_size=(4, 3, 16, 16), audio_size=(1, 1600),
                       video_fps=10, audio_fps=4000, class_cond=True, progress=False, random_flip=False)
    assert stream.dataset.classes == CLASSES
    batch = next(stream)
    assert batch["label"].dtype == torch.long and batch["label"].shape == (4,)
    assert set(batch["label"].tolist()) <= {0, 1, 2}
    _, cond = AVTask((4, 3, 16, 16), (1, 1600), 10, 4000).prepare(batch, torch.device("cpu"))
    assert torch.equal(cond, batch["label"]) and torch.equal(AVTask.take(cond, slice(1, 3)), batch["label"][1:3])
    with pytest.raises(ValueError, match="synthetic"):
        load_data(data_dir="synthetic:4", batch_size=2, video_size=(4, 3, 16, 16), audio_size=(1, 1600),
                  class_cond=True)


def test_class_cond_training_stores_classes_and_label_embedding(trained):
    config = json.load(open(trained / "config.json"))
    assert config["classes"] == CLASSES
    assert config["model"]["num_classes"] == 3 and config["args"]["num_classes"] == 3
    state = load_state_dict_file(str(trained / "model000002.pt"))
    assert tuple(state["label_emb.weight"].shape) == (3, 32)
    rows = open(trained / "progress.csv").read().strip().splitlines()
    assert len(rows) == 3  # header + 2 steps


def test_class_cond_flag_errors(class_dir, tmp_path):
    with pytest.raises(ValueError, match="num_classes 5 but .* has 3 class folders"):
        train.main(TINY + ["--data_dir", str(class_dir), "--class_cond", "True", "--num_classes", "5",
                           "--output_dir", str(tmp_path / "o"), "--max_steps", "1"])
    with pytest.raises(ValueError, match="one sub-folder per class"):
        train.main(TINY + ["--class_cond", "True", "--output_dir", str(tmp_path / "o"), "--max_steps", "1"])
    with pytest.raises(ValueError, match="needs --num_classes"):
        flags.model_kwargs_from_args({"class_cond": True})
    assert flags.model_kwargs_from_args({"class_cond": True, "num_classes": 4})["num_classes"] == 4
    assert flags.model_kwargs_from_args({})["num_classes"] is None  # published default: unconditional


def test_class_id_needs_a_class_conditional_model():
    from mm_diffusion.diffusion import create_gaussian_diffusion
    from mm_diffusion.models.configs import create_model
    from mm_diffusion.sampling.generate import generate_av

    with pytest.raises(ValueError, match="not class-conditional"):
        generate_av(create_model("tiny"), create_gaussian_diffusion(steps=10), [0], video_size=(4, 3, 16, 16),
                    audio_size=(1, 1600), steps=1, class_id=0)


def test_sample_labels_class_id_and_uniform():
    assert sample_labels([0, 1, 2], 7, 3, class_id=2).tolist() == [2, 2, 2]
    uniform = sample_labels(list(range(300)), 7, 3)
    assert set(uniform.tolist()) == {0, 1, 2} and torch.equal(uniform, sample_labels(list(range(300)), 7, 3))
    with pytest.raises(ValueError, match="class_id 3 is not a class"):
        sample_labels([0], 7, 3, class_id=3)


def test_sampling_a_class_cond_run_with_class_id_and_sr(trained, tmp_path):
    from mm_diffusion.testing.checkpoints import write_random_sr_checkpoint

    sr = write_random_sr_checkpoint(str(tmp_path / "sr" / "sr_model.pt"))
    args = ["--multimodal_model_path", str(trained / "model000002.pt"), "--all_save_num", "2", "--batch_size", "2",
            "--steps", "1", "--progress", "False", "--audio_fps", "4000"]
    for extra in (["--class_id", "1", "--sr_model_path", sr, "--sr_steps", "1"], []):
        out = tmp_path / ("cls" if extra else "uniform")
        summary = sample_job.main(args + ["--output_dir", str(out)] + extra)
        assert summary["models"][next(iter(summary["models"]))]["made"] == 2
    with pytest.raises(ValueError, match="class_id 7 is not a class"):
        sample_job.main(args + ["--output_dir", str(tmp_path / "bad"), "--class_id", "7"])


def test_sr_stage_gets_the_coupled_models_labels():
    seen = {}

    class ClassSR(torch.nn.Module):
        num_classes, image_size = 3, 8

        def forward(self, x, t, low_res=None, y=None):
            seen.setdefault("y", y)
            return torch.zeros_like(x)

    from mm_diffusion.diffusion import create_gaussian_diffusion

    stage = SRStage(ClassSR(), create_gaussian_diffusion(steps=10), large_size=8, method="ddim", steps=1, seed=5,
                    class_id=2)
    stage(torch.zeros(2, 1, 3, 4, 4), [0, 1])
    assert seen["y"].tolist() == [2, 2]
    seen.clear()
    SRStage(ClassSR(), create_gaussian_diffusion(steps=10), large_size=8, method="ddim", steps=1, seed=5)(
        torch.zeros(2, 1, 3, 4, 4), [3, 4])
    assert torch.equal(seen["y"], sample_labels([3, 4], 5, 3))  # the draw generate_av makes for clips 3 and 4


def test_class_cond_sr_training_from_class_folders(class_dir, tmp_path):
    from mm_diffusion import image_sr_train

    out = tmp_path / "sr_run"
    argv = ["--config", "sr_tiny", "--large_size", "16", "--small_size", "4", "--batch_size", "2", "--progress",
            "False", "--log_interval", "1", "--data_dir", str(class_dir), "--sr_class_cond", "True",
            "--output_dir", str(out), "--max_steps", "1", "--sample_interval", "1", "--sample_num", "1",
            "--sample_steps", "1"]
    assert image_sr_train.main(argv) == 1
    config = json.load(open(out / "config.json"))
    assert config["classes"] == CLASSES and config["model"]["num_classes"] == 3
    assert tuple(load_state_dict_file(str(out / "model000001.pt"))["label_emb.weight"].shape)[0] == 3
    assert (out / "samples" / "step000001.png").exists()  # progress samples pass the labels too
