"""mm_diffusion.models.precision: the bf16 compute copy (inference) and fp32 master weights (training).

Tolerances: bf16 keeps 8 mantissa bits (relative rounding 2**-9 = 0.2% per value); through a dozen layers
the outputs of the tiny / demo networks move by about 1% (measured 0.9-1.1%), the gradients by 0.5-1.1%.
The bounds below are 3-5x those figures.
"""
import pytest
import torch
import torch.nn.functional as F

from mm_diffusion.models.configs import create_model, create_sr_model
from mm_diffusion.models.convs import downsample_video
from mm_diffusion.models.nn import attention, bf16_cpu_attention
from mm_diffusion.models.precision import (MasterWeights, compute_copy, inference_model, native_bf16_cpu,
                                           resolve_precision)

OUT_TOL = 0.04   # relative L2 error of a bf16 forward against fp32
GRAD_TOL = 0.05  # relative L2 error of bf16 gradients (all parameters together) against fp32


def _randomised(name: str, seed: int = 0):
    """A network with its zero-initialised output layers filled, so every layer shapes the output."""
    torch.manual_seed(seed)
    model = create_model(name)
    with torch.no_grad():
        for p in model.parameters():
            if not p.abs().sum():
                p.normal_(0, 0.02)
    return model


def _inputs(model, n=2, seed=1):
    gen = torch.Generator().manual_seed(seed)
    f, c, h, w = model.video_size
    video = torch.randn(n, f, c, h, w, generator=gen)
    audio = torch.randn(n, *model.audio_size, generator=gen)
    return video, audio, torch.tensor([10, 700][:n])


def _rel(a, b):
    return float((a.float() - b.float()).norm() / b.float().norm())


def test_compute_copy_casts_all_but_the_norms_and_leaves_the_original_alone():
    model = _randomised("tiny")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    copy = compute_copy(model)
    for name, p in copy.named_parameters():
        want = torch.float32 if ".GroupNorm." in name or name.startswith("GroupNorm") else torch.bfloat16
        assert p.dtype == want, name
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert sum(p.dtype == torch.float32 for p in copy.parameters()) == 2 * sum(
        isinstance(m, torch.nn.GroupNorm) for m in copy.modules())


@pytest.mark.parametrize("name", ["tiny", "demo"])
def test_bf16_forward_matches_fp32(name):
    model = _randomised(name).eval()
    video, audio, t = _inputs(model)
    bf16 = compute_copy(model)
    with torch.no_grad(), model.fixed_shift(0), bf16.fixed_shift(0):
        ref = model(video, audio, t)
        out = bf16(video, audio, t)
    for r, o in zip(ref, out):
        assert o.dtype == torch.float32 and o.shape == r.shape   # outputs come back in the input dtype
        err = _rel(o, r)
        assert 1e-4 < err < OUT_TOL, err                          # really bf16, and close to fp32


def test_bf16_sr_forward_matches_fp32():
    torch.manual_seed(0)
    model = create_sr_model("sr_tiny", image_size=32).eval()
    with torch.no_grad():
        for p in model.parameters():
            if not p.abs().sum():
                p.normal_(0, 0.02)
    x, low = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 16, 16)
    t = torch.tensor([3, 400])
    with torch.no_grad():
        err = _rel(compute_copy(model)(x, t, low_res=low), model(x, t, low_res=low))
    assert 1e-4 < err < OUT_TOL, err


def test_master_weights_step_agrees_with_fp32_and_keeps_fp32_grads():
    model = _randomised("tiny").train()
    video, audio, t = _inputs(model)

    def loss_of(net):
        with net.fixed_shift(0):
            v, a = net(video, audio, t)
        return (v - video).square().mean() + (a - audio).square().mean()

    master = MasterWeights(model)
    loss_bf16 = loss_of(master.compute)
    loss_bf16.backward()
    master.pull_grads()
    assert all(p.grad is None for p in master.compute.parameters())          # moved, not copied
    grads_bf16 = [p.grad.clone() for p in model.parameters()]
    assert all(g.dtype == torch.float32 for g in grads_bf16)
    model.zero_grad(set_to_none=True)
    loss_fp32 = loss_of(model)
    loss_fp32.backward()
    grads_fp32 = [p.grad for p in model.parameters()]
    assert loss_bf16.item() == pytest.approx(loss_fp32.item(), rel=0.01)
    num = sum((a - b).square().sum() for a, b in zip(grads_bf16, grads_fp32))
    den = sum(b.square().sum() for b in grads_fp32)
    assert 1e-6 < float((num / den).sqrt()) < GRAD_TOL


def test_pull_grads_accumulates_and_sync_rounds_the_master_into_the_copy():
    model = create_model("tiny")
    master = MasterWeights(model)
    p_master, p_comp = master._pairs[0]
    p_master.grad = torch.ones_like(p_master)
    p_comp.grad = torch.full_like(p_comp, 0.5)
    master.pull_grads()
    assert torch.equal(p_master.grad, torch.full_like(p_master, 1.5))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.123)
    master.sync()
    comp = dict(master.compute.named_parameters())
    for name, p in model.named_parameters():
        assert torch.equal(comp[name], p.to(comp[name].dtype)), name


def test_bf16_cpu_attention_matches_sdpa():
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 2, n, 32, generator=gen) for n in (40, 25, 25))
    ref = F.scaled_dot_product_attention(q, k, v)
    out = bf16_cpu_attention(q.bfloat16(), k.bfloat16(), v.bfloat16())
    assert out.dtype == torch.bfloat16 and out.shape == ref.shape
    assert _rel(out, ref) < 0.02
    assert torch.equal(attention(q, k, v), ref)                 # fp32 still goes through SDPA unchanged


def test_bf16_downsample_equals_frame_pooling():
    x = torch.randn(2, 4, 3, 8, 6)
    ref = F.avg_pool3d(x, (1, 2, 2))
    assert torch.equal(downsample_video(x), ref)
    out = downsample_video(x.bfloat16())
    assert out.shape == ref.shape and _rel(out, ref) < 0.01


def test_resolve_precision_and_inference_model():
    # auto / fp16 / unknown values: tests/training/test_train_loop.py
    assert resolve_precision("bf16_autocast", False, torch.device("cpu")) == "bf16_autocast"
    model = create_model("tiny")
    bf16 = inference_model(model, "bf16")
    assert bf16 is not model and bf16.time_embed[0].weight.dtype == torch.bfloat16 and not bf16.training
    assert inference_model(bf16, "bf16") is bf16
    same = inference_model(model, "bf16_autocast")
    assert same is model and model.use_fp16
    assert inference_model(model, "fp32") is model and not model.use_fp16
    assert isinstance(native_bf16_cpu(), bool)
