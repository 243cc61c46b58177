"""Behaviour the published network gets wrong, plus precision and option checks."""
import pytest
import torch

from mm_diffusion.models import MultimodalUNet
from mm_diffusion.models.configs import create_model, model_config
from mm_diffusion.models.nn import GroupNorm32

from .helpers import ShiftRecorder, load_golden


def randomise(model, seed=0, scale=0.05):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return model


def inputs(model, n=2, frames=None, hw=None, length=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    f, c, h, w = model.video_size
    f, h = frames or f, hw or h
    w = hw or w
    length = length or model.audio_size[1]
    return (torch.randn(n, f, c, h, w, generator=gen), torch.randn(n, 1, length, generator=gen),
            torch.tensor([3, 700][:n]))


def test_checkpointed_backward_uses_the_forward_offsets():
    """use_checkpoint recomputes activations in backward with the SAME window offsets (the published code
    draws new ones there). Gradients equal those of a plain pass with the offsets the forward drew."""
    g = load_golden("golden_tiny_sharp.pt")
    grads = {}
    for ckpt in (True, False):
        model = MultimodalUNet(**{**g["config"], "use_checkpoint": ckpt})
        model.load_state_dict(g["state_dict"])
        model.train()
        shifts = ShiftRecorder(model)
        torch.manual_seed(123)  # the offsets are drawn from the global generator
        shift = None if ckpt else drawn
        video, audio = model(g["video"], g["audio"], g["timesteps"], shift=shift)
        if ckpt:
            drawn = list(shifts.last)
            # offsets that make a difference, so a re-draw in backward would show
            assert len(set(drawn)) > 1 or drawn[0] != 0
        (video.square().mean() + audio.square().mean()).backward()
        grads[ckpt] = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
    assert grads[True].keys() == grads[False].keys()
    for k in grads[True]:
        torch.testing.assert_close(grads[True][k], grads[False][k], atol=1e-5, rtol=1e-4, msg=k)


def test_any_valid_input_size_on_every_call():
    """The published attention index is cached from the first call; ours follows each call's size."""
    model = randomise(create_model("tiny")).eval()
    sizes = [dict(), dict(hw=8, length=768), dict(frames=8, length=3200), dict()]
    for size in sizes:
        video, audio, t = inputs(model, **size)
        cfg = dict(model_config("tiny"))
        cfg["video_size"] = list(video.shape[1:])
        cfg["audio_size"] = list(audio.shape[1:])
        fresh = MultimodalUNet(**cfg)
        fresh.load_state_dict(model.state_dict())
        fresh.eval()
        with torch.no_grad():
            got = model(video, audio, t, shift=1)
            want = fresh(video, audio, t, shift=1)
        assert got[0].shape == video.shape and got[1].shape == audio.shape
        torch.testing.assert_close(got, want, atol=0, rtol=0)


def test_groupnorm_normalises_channels_even_when_frames_equal_channels():
    """The published GroupNorm skips its permute when F == C and normalises the wrong axis."""
    cfg = model_config("tiny", video_size=[32, 3, 16, 16], audio_size=[1, 32 * 16], cross_attention_windows=[1, 2])
    model = create_model("tiny", **{k: cfg[k] for k in ("video_size", "audio_size")}).eval()
    captured = {}
    norm = model.input_blocks[1][0].video_in_layers[0]
    assert isinstance(norm, GroupNorm32) and norm.GroupNorm.num_channels == 32
    norm.register_forward_hook(lambda m, i, o: captured.update(x=i[0], y=o))
    video = torch.randn(1, 32, 3, 16, 16) * torch.linspace(0.5, 3, 32)[None, :, None, None, None]
    with torch.no_grad():
        model(video, torch.randn(1, 1, 512), torch.tensor([5]), shift=0)
    x, y = captured["x"], captured["y"]
    assert x.shape == (1, 32, 32, 16, 16)  # [N, C, F, H, W] inside the network
    per_group = y.reshape(1, 32, -1)  # 32 groups of 1 channel each, stats over (F, H, W)
    torch.testing.assert_close(per_group.mean(-1), torch.zeros(1, 32), atol=1e-4, rtol=0)
    torch.testing.assert_close(per_group.var(-1, unbiased=False), torch.ones(1, 32), atol=1e-3, rtol=0)


def test_resblock_updown_false_works():
    model = randomise(create_model("tiny", resblock_updown=False)).eval()
    names = model.state_dict().keys()
    assert not any(k.startswith("output_blocks.1.2.") for k in names)  # parameter-free upsampling there
    video, audio, t = inputs(model)
    with torch.no_grad():
        v, a = model(video, audio, t, shift=0)
    assert v.shape == video.shape and a.shape == audio.shape and torch.isfinite(v).all()
    assert v.abs().mean() > 0


def test_class_conditioning():
    model = randomise(create_model("tiny", num_classes=3)).eval()
    assert model.label_emb.weight.shape == (3, 32)
    video, audio, t = inputs(model)
    with torch.no_grad():
        v0, a0 = model(video, audio, t, label=torch.tensor([0, 0]), shift=0)
        v1, a1 = model(video, audio, t, y=torch.tensor([2, 2]), shift=0)
    assert (v0 - v1).abs().max() > 1e-4 and (a0 - a1).abs().max() > 1e-5
    with pytest.raises(ValueError, match="num_classes"):
        model(video, audio, t, shift=0)


def test_dilations_follow_the_published_schedule():
    model = create_model("tiny")
    dil = lambda blk: blk.audio_in_layers[2].audio_conv.dilation[0]  # noqa: E731
    assert [dil(b[0]) for b in list(model.input_blocks)[1:]] == [2, 4, 8, 16, 32]
    assert [dil(b) for b in model.middle_blocks] == [64, 64]
    assert [dil(b[0]) for b in model.output_blocks] == [32, 16, 8, 4, 2, 1]
    assert dil(model.output_blocks[1][2]) == 8 and dil(model.output_blocks[3][2]) == 2
    paper = create_model("paper")
    assert max(dil(b[0]) for b in list(paper.input_blocks)[1:]) == 2 ** 9  # exponent wraps at 10
    assert dil(paper.middle_blocks[0]) == 2 ** (12 % 10)


def test_bf16_autocast_on_cpu_close_to_fp32():
    g = load_golden("golden_tiny_sharp.pt")
    model = MultimodalUNet(**g["config"])
    model.load_state_dict(g["state_dict"])
    model.eval()
    with torch.no_grad():
        ref = model(g["video"], g["audio"], g["timesteps"], shift=1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(g["video"], g["audio"], g["timesteps"], shift=1)
        model.use_fp16 = True
        flag = model(g["video"], g["audio"], g["timesteps"], shift=1)
    for got in (low, flag):
        assert got[0].dtype == torch.float32 and got[1].dtype == torch.float32
        assert torch.isfinite(got[0]).all() and torch.isfinite(got[1]).all()
        for x, r in zip(got, ref):
            rel = (x - r).norm() / r.norm()
            assert rel < 0.05, rel
    torch.testing.assert_close(low, flag, atol=0, rtol=0)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay fp32


def test_bf16_autocast_training_step_runs_and_reduces_loss():
    model = randomise(create_model("tiny", use_fp16=True), scale=0.02).train()
    video, audio, t = inputs(model, n=1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(3):
        v, a = model(video, audio, t, shift=0)
        loss = (v - video).square().mean() + (a - audio).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(p.grad.dtype == torch.float32 for p in model.parameters() if p.grad is not None)
    assert losses[-1] < losses[0]


def test_models_cli_prints_summary(capsys):
    from mm_diffusion.models.__main__ import main

    main(["--config", "tiny"])
    out = capsys.readouterr().out
    assert "MultimodalUNet: 1,675,428 parameters" in out
    assert "RS-MMA window 2 random shift, 4 heads" in out
    assert out.count("ResBlock") >= 14
