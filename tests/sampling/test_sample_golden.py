"""Published-style checkpoints (plain state dicts, fp32 or fp16) through the sampling code path.

Oracle: ``tests/fixtures/golden_tiny.pt``, outputs of the ORIGINAL MultimodalUNet for a fixed state dict and
inputs (``outputs["noshift"]``: RS-MMA without window shift)."""
from pathlib import Path

import pytest
import torch

from mm_diffusion import sample as sample_job
from mm_diffusion.models import MultimodalUNet
from mm_diffusion.sampling.args import checkpoint_args, finalize_args, parse_sample_args
from mm_diffusion.sampling.generate import multimodal_model_fn
from mm_diffusion.sampling.runner import load_multimodal


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def golden():
    return torch.load(FIXTURES / "golden_tiny.pt", weights_only=True)


def _load(path, *extra, log=None):
    args = parse_sample_args("sample", ["--config", "tiny", "--cross_attention_shift", "False",
                                        "--multimodal_model_path", str(path), *extra])
    margs = finalize_args(checkpoint_args(args, str(path)))
    messages = []
    model, diffusion = load_multimodal(margs, str(path), torch.device("cpu"), log or messages.append)
    return model, diffusion, messages


def _call(model, golden):
    fn = multimodal_model_fn(model)
    with torch.no_grad():
        out = fn({"video": golden["video"], "audio": golden["audio"]}, golden["timesteps"])
    return out["video"], out["audio"]


def test_plain_state_dict_loads_strictly_and_reproduces_golden(tmp_path, golden):
    # a published-style file: torch.save(state_dict) of the golden model built from its config
    source = MultimodalUNet(**{**golden["config"], "cross_attention_shift": False})
    source.load_state_dict(golden["state_dict"], strict=True)
    path = tmp_path / "published.pt"
    torch.save(source.state_dict(), path)
    model, diffusion, _ = _load(path)
    assert not model.training and diffusion.num_timesteps == 1000
    video, audio = _call(model, golden)
    want_video, want_audio = golden["outputs"]["noshift"]
    torch.testing.assert_close(video, want_video, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(audio, want_audio, rtol=1e-4, atol=1e-5)


def test_fp16_checkpoint_loads_into_fp32_model(tmp_path, golden):
    path = tmp_path / "published_fp16.pt"
    torch.save({k: v.half() for k, v in golden["state_dict"].items()}, path)
    model, _, _ = _load(path)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    rounded = {k: v.half().float() for k, v in golden["state_dict"].items()}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in rounded.items())
    video, audio = _call(model, golden)
    want_video, want_audio = golden["outputs"]["noshift"]
    scale = want_video.abs().max()
    assert (video - want_video).abs().max() < 0.02 * scale
    assert (audio - want_audio).abs().max() < 0.02 * want_audio.abs().max()


def test_mismatching_checkpoint_lists_keys(tmp_path, golden):
    state = dict(golden["state_dict"])
    missing = "time_embed.0.bias"
    state.pop(missing)
    state["extra.weight"] = torch.zeros(3)
    bad_shape = "time_embed.2.weight"
    state[bad_shape] = torch.zeros(5, 5)
    path = tmp_path / "mismatch.pt"
    torch.save(state, path)
    with pytest.raises(ValueError) as err:
        _load(path)
    text = str(err.value)
    assert missing in text and "extra.weight" in text and bad_shape in text and "(5, 5)" in text
    # --is_strict False: loads what fits and logs every skipped key
    model, _, messages = _load(path, "--is_strict", "False")
    log = "\n".join(messages)
    assert missing in log and "extra.weight" in log and bad_shape in log
    torch.testing.assert_close(model.state_dict()["time_embed.0.weight"], golden["state_dict"]["time_embed.0.weight"])


def test_wrong_architecture_flags_fail_clearly(tmp_path, golden):
    path = tmp_path / "published.pt"
    torch.save(golden["state_dict"], path)
    with pytest.raises(ValueError, match="mis-shaped"):
        sample_job.main(["--config", "tiny", "--num_channels", "64", "--multimodal_model_path", str(path),
                         "--output_dir", str(tmp_path / "out"), "--all_save_num", "1", "--progress", "False"])
