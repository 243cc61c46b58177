"""Coupling options of the coupled U-Net: per-modality timesteps, position-aware and aligned RS-MMA."""
import pytest
import torch

from mm_diffusion.models import MultimodalUNet
from mm_diffusion.models.attention import relative_frames, window_frames
from mm_diffusion.models.configs import MODEL_CONFIGS

from ..probe.doubles import decoupled_unet, tiny_clips


def _random_unet(seed=0, **overrides):
    torch.manual_seed(seed)
    model = MultimodalUNet(**dict(MODEL_CONFIGS["tiny"], **overrides))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.05)
    return model.eval()


def _run(model, x, t):
    with torch.no_grad():
        return model(x["video"], x["audio"], t, shift=0)


def test_equal_per_modality_timesteps_reproduce_the_shared_t_exactly():
    model, x = _random_unet(), tiny_clips(3)
    t = torch.tensor([5, 400, 999])
    v0, a0 = _run(model, x, t)
    v1, a1 = _run(model, x, {"video": t.clone(), "audio": t.clone()})
    assert torch.equal(v0, v1) and torch.equal(a0, a1)


def test_each_subnet_gets_its_own_timestep():
    """With the cross-attention silenced, the audio output under {video: t1, audio: t2} is the audio output of a
    shared t2, and the video output that of a shared t1: each sub-net sees only its own t."""
    model, x = decoupled_unet(), tiny_clips(2)
    t1, t2 = torch.tensor([10, 20]), torch.tensor([700, 900])
    v, a = _run(model, x, {"video": t1, "audio": t2})
    v1, _ = _run(model, x, t1)
    _, a2 = _run(model, x, t2)
    assert torch.equal(v, v1) and torch.equal(a, a2)
    assert not torch.allclose(a, _run(model, x, t1)[1])


def test_per_modality_timesteps_are_checked():
    model, x = _random_unet(), tiny_clips(2)
    with pytest.raises(ValueError, match="'video' and 'audio'"):
        _run(model, x, {"video": torch.tensor([1, 2])})
    with pytest.raises(ValueError, match="batch sizes differ"):
        _run(model, x, {"video": torch.tensor([1, 2]), "audio": torch.tensor([1])})


def test_position_option_off_adds_no_parameters_and_on_starts_as_the_plain_block():
    plain = _random_unet()
    assert not any("position" in k for k in plain.state_dict())
    aware = MultimodalUNet(**dict(MODEL_CONFIGS["tiny"], cross_attention_position=True)).eval()
    extra = sorted(set(aware.state_dict()) - set(plain.state_dict()))
    assert extra and all(k.endswith(("v2a_position", "a2v_position")) for k in extra)
    assert all(float(aware.state_dict()[k].abs().sum()) == 0 for k in extra)
    assert all(aware.state_dict()[k].shape[-1] == 2 * 4 - 1 for k in extra)  # [heads, 2F - 1], F = 4
    missing = aware.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert sorted(missing) == extra
    x, t = tiny_clips(2), torch.tensor([100, 600])
    v0, a0 = _run(plain, x, t)
    v1, a1 = _run(aware, x, t)
    assert torch.allclose(v0, v1, atol=1e-6) and torch.allclose(a0, a1, atol=1e-6)
    with torch.no_grad():
        for k in extra:
            aware.get_parameter(k).normal_(0.0, 3.0)
    _, a2 = _run(aware, x, t)
    assert not torch.allclose(a0, a2, atol=1e-4)


def test_position_bias_gets_gradients():
    aware = MultimodalUNet(**dict(MODEL_CONFIGS["tiny"], cross_attention_position=True))
    with torch.no_grad():
        for p in aware.parameters():
            p.normal_(0.0, 0.05)
    x = tiny_clips(2)
    v, a = aware(x["video"], x["audio"], torch.tensor([3, 4]), shift=0)
    (v.square().mean() + a.square().mean()).backward()
    grads = [p.grad for n, p in aware.named_parameters() if n.endswith("_position")]
    assert grads and all(g is not None and float(g.abs().sum()) > 0 for g in grads)


def test_relative_frames_are_key_minus_query():
    rel = relative_frames(4, 2, 1)
    assert rel.tolist() == [[1, 2], [1, 2], [1, -2], [-3, -2]]
    keys = window_frames(4, 2, 1).view(4, 2)
    assert torch.equal(keys - torch.arange(4)[:, None], rel)


def test_shift_off_gives_aligned_windows_and_no_random_offsets():
    model = _random_unet(cross_attention_shift=False)
    assert model.shifted_blocks == []
    assert model.draw_shifts(4) == []  # no offsets to draw: every block uses R = 0
    assert window_frames(4, 2, 0).view(4, 2).tolist() == [[0, 1], [1, 2], [2, 3], [3, 0]]
    assert window_frames(4, 1, 0).tolist() == [0, 1, 2, 3]  # window 1: frame i meets exactly its own segment
