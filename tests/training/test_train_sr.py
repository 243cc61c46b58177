"""Super-resolution training: frames from clips, low-res inputs, a short run, fine-tuning from an upsampler file."""
import numpy as np
import pytest
import torch

from mm_diffusion import image_sr_train
from mm_diffusion.data import SyntheticAVDataset
from mm_diffusion.data.media import write_video
from mm_diffusion.models.configs import create_sr_model
from mm_diffusion.runs.checkpoint import find_latest_checkpoint, load_state_dict_file
from mm_diffusion.training.sr_data import FramesDataset, sr_frames
from mm_diffusion.training.tasks import SRTask, downsample

SR = ["--config", "sr_tiny", "--large_size", "16", "--small_size", "4", "--synthetic_num", "4",
      "--batch_size", "2", "--progress", "False", "--log_interval", "1"]


def test_frames_dataset_flattens_clips():
    clips = SyntheticAVDataset(2, (4, 3, 32, 32), (1, 3200), fps=10, audio_rate=8000, seed=1)
    frames = FramesDataset(clips, 4)
    assert len(frames) == 8
    item = frames[6]
    assert item["video"].shape == (1, 3, 32, 32)
    assert torch.equal(item["video"][0], clips[1]["video"][2])
    with pytest.raises(IndexError):
        frames[8]


def test_video_folder_frames_every_frame_gap(tmp_path):
    video = np.linspace(-1, 1, 8 * 3 * 32 * 32, dtype=np.float32).reshape(8, 3, 32, 32)
    write_video(str(tmp_path / "clip.mp4"), video, None, fps=10)          # no audio track: still usable
    frames = sr_frames(str(tmp_path), 32, video_fps=10, frame_gap=2, progress=False, random_flip=False)
    assert len(frames) == 4 and frames[0]["video"].shape == (1, 3, 32, 32)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        sr_frames(str(tmp_path / "missing"), 32)


def test_sr_task_low_res_and_size_check():
    task = SRTask(32, 8)
    x = torch.rand(2, 1, 3, 32, 32) * 2 - 1
    x0, low = task.prepare({"video": x, "audio": torch.zeros(2, 1, 1)}, torch.device("cpu"))
    assert x0.shape == (2, 3, 32, 32) and low.shape == (2, 3, 8, 8)
    torch.testing.assert_close(low.mean(dim=(2, 3)), x0.mean(dim=(2, 3)), atol=0.02, rtol=0)
    flat = torch.full((1, 3, 32, 32), 0.5)
    assert torch.allclose(downsample(flat, 8), torch.full((1, 3, 8, 8), 0.5))
    with pytest.raises(ValueError, match="--large_size 32"):
        task.prepare({"video": torch.zeros(1, 1, 3, 16, 16)}, torch.device("cpu"))


def test_sr_training_run_and_upsampler_fine_tuning(tmp_path):
    run = tmp_path / "run"
    assert image_sr_train.main(SR + ["--output_dir", str(run), "--max_steps", "2", "--sample_interval", "2",
                                     "--sample_num", "1", "--sample_steps", "2"]) == 2
    latest = find_latest_checkpoint(str(run))
    assert latest.step == 2 and (run / "samples" / "step000002.png").exists()
    weights = load_state_dict_file(latest.model)
    assert set(weights) == set(create_sr_model("sr_tiny", image_size=16).state_dict())

    # guided-diffusion's upsampler is class-conditional (1000 ImageNet classes): its class embedding is the one
    # tensor the unconditional frame SR model has no place for; everything else loads strictly
    torch.manual_seed(3)
    upsampler = create_sr_model("sr_tiny", image_size=16, num_classes=1000).state_dict()
    assert upsampler["label_emb.weight"].shape[0] == 1000
    torch.save(upsampler, tmp_path / "64_256_upsampler.pt")
    tune = tmp_path / "tune"
    image_sr_train.main(SR + ["--output_dir", str(tune), "--max_steps", "1", "--lr", "1e-9",
                              "--resume_checkpoint", str(tmp_path / "64_256_upsampler.pt")])
    tuned = load_state_dict_file(str(tune / "model000001.pt"))
    # started from the upsampler weights (a 1e-9 step later they are still within 1e-8)
    assert set(tuned) == set(upsampler) - {"label_emb.weight"}
    assert max((tuned[k] - upsampler[k]).abs().max().item() for k in tuned) < 1e-8
    assert "weights only" in (tune / "log.txt").read_text()
    # any other extra or missing tensor is still an error naming the key
    bad = dict(upsampler, **{"extra.weight": torch.zeros(1)})
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="extra.weight"):
        image_sr_train.main(SR + ["--output_dir", str(tmp_path / "bad_run"), "--max_steps", "1",
                                  "--resume_checkpoint", str(tmp_path / "bad.pt")])
