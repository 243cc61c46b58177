"""Our MultimodalUNet reproduces the original network's outputs (golden fixtures)."""
import pytest
import torch

from mm_diffusion.models import MultimodalUNet

from .helpers import ShiftRecorder, load_golden, shift_for

TOLERANCES = {"golden_tiny.pt": dict(atol=1e-5, rtol=1e-4), "golden_tiny_sharp.pt": dict(atol=2e-4, rtol=1e-4)}


def build(g, shift_flag=True):
    model = MultimodalUNet(**{**g["config"], "cross_attention_shift": shift_flag})
    model.load_state_dict(g["state_dict"], strict=True)
    return model.eval()


@pytest.fixture(scope="module", params=sorted(TOLERANCES))
def golden(request):
    return request.param, load_golden(request.param)


def test_every_stored_output(golden):
    name, g = golden
    assert set(g["outputs"]) == {"noshift", "R=0", "R=1", "R=2", "perblock=3,1,2,0,1,2"}
    for key, (video_ref, audio_ref) in g["outputs"].items():
        model = build(g, shift_flag=key != "noshift")
        with torch.no_grad():
            video, audio = model(g["video"].clone(), g["audio"].clone(), g["timesteps"].clone(), shift=shift_for(key))
        assert video.shape == video_ref.shape == (2, 4, 3, 16, 16)
        assert audio.shape == audio_ref.shape == (2, 1, 1600)
        torch.testing.assert_close(video, video_ref, **TOLERANCES[name], msg=lambda m: f"{name} {key} video: {m}")
        torch.testing.assert_close(audio, audio_ref, **TOLERANCES[name], msg=lambda m: f"{name} {key} audio: {m}")


def test_shift_changes_outputs(golden):
    """The fixture is sensitive to the offset, so the comparison above really checks the shift."""
    name, g = golden
    model = build(g)
    with torch.no_grad():
        v0, _ = model(g["video"], g["audio"], g["timesteps"], shift=0)
        v1, _ = model(g["video"], g["audio"], g["timesteps"], shift=1)
    assert (v0 - v1).abs().max() > 1e-4


def test_fixed_shift_context_manager_and_perblock_order(golden):
    name, g = golden
    model = build(g)
    shifts = ShiftRecorder(model)
    key = "perblock=3,1,2,0,1,2"
    with model.fixed_shift(shift_for(key)), torch.no_grad():
        video, audio = model(g["video"], g["audio"], g["timesteps"])
    assert shifts.last == [3, 1, 2, 0, 1, 2]
    torch.testing.assert_close(video, g["outputs"][key][0], **TOLERANCES[name])
    torch.testing.assert_close(audio, g["outputs"][key][1], **TOLERANCES[name])


def test_random_shift_draws_in_range_and_follow_generator():
    g = load_golden("golden_tiny.pt")
    model = build(g)
    windows = [b.local_window for b in model.shifted_blocks]
    assert windows == [1, 2, 2, 2, 1, 1]
    seen = set()
    for seed in range(40):
        shifts = model.draw_shifts(4, generator=torch.Generator().manual_seed(seed))
        assert all(0 <= r <= 4 - w for r, w in zip(shifts, windows))
        seen.update(zip(windows, shifts))
    assert {(1, r) for r in range(4)} | {(2, r) for r in range(3)} == seen  # every legal offset appears
    a = model.draw_shifts(4, generator=torch.Generator().manual_seed(7))
    b = model.draw_shifts(4, generator=torch.Generator().manual_seed(7))
    assert a == b
    shifts = ShiftRecorder(model)
    with torch.no_grad():
        out1 = model(g["video"], g["audio"], g["timesteps"], generator=torch.Generator().manual_seed(3))
        used = list(shifts.last)
        out2 = model(g["video"], g["audio"], g["timesteps"], shift=used)
    torch.testing.assert_close(out1, out2, atol=0, rtol=0)


def test_bad_forced_shift_is_rejected():
    g = load_golden("golden_tiny.pt")
    model = build(g)
    with pytest.raises(ValueError, match="out of range"):
        model(g["video"], g["audio"], g["timesteps"], shift=3)  # w=2 blocks allow 0..2
    with pytest.raises(ValueError, match="one offset per shifted"):
        model(g["video"], g["audio"], g["timesteps"], shift=[0, 1])
