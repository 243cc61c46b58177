"""I3D: published key layout, SAME padding, eval fast path, preprocessing, both file formats."""
import math

import pytest
import torch
import torch.nn.functional as F

from mm_diffusion.evaluation import encoders as enc
from mm_diffusion.testing import encoders as fakes
from mm_diffusion.evaluation.i3d import InceptionI3d, MaxPool3dSame, Unit3D

SMALL = 32  # I3D input side used by the tests (the published one is 224)


def read_tsv(path):
    rows = []
    for line in open(path, encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        key, shape = line.rstrip("\n").split("\t")
        rows.append((key, () if shape == "scalar" else tuple(int(d) for d in shape.split("x"))))
    return rows


def randomize_bn(module, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
    return module


def reference_mode(module):
    """Unfused path (BatchNorm applied separately) with BatchNorm still in eval mode."""
    module.train()
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()
    return module


@pytest.fixture(scope="module")
def i3d_file(tmp_path_factory):
    return fakes.make_random_i3d_file(tmp_path_factory.mktemp("i3d") / "i3d_pretrained_400.pt", seed=3)


def test_state_dict_matches_published_tsv(fixtures_dir):
    expected = read_tsv(fixtures_dir / "i3d_state_dict.tsv")
    got = [(k, tuple(v.shape)) for k, v in InceptionI3d(400, in_channels=3).state_dict().items()]
    assert got == expected
    assert len(got) == 344
    assert sum(p.numel() for p in InceptionI3d().parameters()) == 12697264


@pytest.mark.parametrize("size,kernel,stride", [(16, 7, 2), (15, 7, 2), (9, 3, 1), (8, 2, 2), (7, 3, 2)])
def test_unit3d_same_padding_matches_explicit_tf_padding(size, kernel, stride):
    unit = Unit3D(4, 5, kernel=(kernel,) * 3, stride=(stride,) * 3, relu=False, batch_norm=False, bias=True)
    x = torch.randn(2, 4, size, size + 1, size)
    expected_pads = []
    for s in x.shape[2:]:
        total = max(kernel - stride, 0) if s % stride == 0 else max(kernel - s % stride, 0)
        expected_pads.append((total // 2, total - total // 2))
    (t0, t1), (h0, h1), (w0, w1) = expected_pads
    ref = F.conv3d(F.pad(x, [w0, w1, h0, h1, t0, t1]), unit.conv3d.weight, unit.conv3d.bias, stride)
    out = unit.eval()(x)
    assert out.shape == ref.shape
    assert out.shape[2] == math.ceil(size / stride)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel,stride,size", [((1, 3, 3), (1, 2, 2), 12), ((3, 3, 3), (1, 1, 1), 5),
                                                ((2, 2, 2), (2, 2, 2), 7), ((3, 3, 3), (2, 2, 2), 8)])
def test_maxpool_same_matches_zero_padded_pool_on_relu_input(kernel, stride, size):
    pool = MaxPool3dSame(kernel, stride)
    x = F.relu(torch.randn(2, 3, size, size, size + 1))
    pads = []
    for s, k, st in zip(x.shape[2:], kernel, stride):
        total = max(k - st, 0) if s % st == 0 else max(k - s % st, 0)
        pads.append((total // 2, total - total // 2))
    (t0, t1), (h0, h1), (w0, w1) = pads
    ref = F.max_pool3d(F.pad(x, [w0, w1, h0, h1, t0, t1]), kernel, stride)
    torch.testing.assert_close(pool(x), ref)


def test_eval_fast_path_equals_unfused_network():
    torch.manual_seed(1)
    net = randomize_bn(fakes.randomize_weights(InceptionI3d(), 1))
    x = torch.rand(2, 3, 16, SMALL, SMALL) * 2 - 1
    with torch.no_grad():
        fast = net.eval()(x)
        ref = reference_mode(net)(x)
        net.eval()
        pooled = net.features(x)
    assert fast.shape == (2, 400)
    assert pooled.shape == (2, 1024)
    torch.testing.assert_close(fast, ref, atol=1e-4, rtol=1e-4)
    assert fast.abs().max() > 1e-2  # not a degenerate all-zero output
    # the logits are the 1x1x1 logits conv applied to the pooled features (time-average of logits)
    torch.testing.assert_close(fast, pooled @ net.logits.conv3d.weight.flatten(1).T + net.logits.conv3d.bias)


def test_fold_cache_follows_weight_changes():
    net = fakes.randomize_weights(InceptionI3d(), 2).eval()
    x = torch.rand(1, 3, 16, SMALL, SMALL) * 2 - 1
    with torch.no_grad():
        before = net(x)
        net.Conv3d_1a_7x7.bn.running_var.mul_(4.0)  # in-place change must invalidate the folded weights
        after = net(x)
        ref = reference_mode(net)(x)
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, ref, atol=1e-4, rtol=1e-4)


def test_published_size_gives_a_7x7_last_map():
    net = InceptionI3d().eval()
    with torch.no_grad():
        fmap = net.feature_map(torch.zeros(1, 3, 16, 224, 224))
    assert fmap.shape == (1, 1024, 2, 7, 7)  # exactly the original AvgPool3d((2, 7, 7)) window


def test_round_trip_and_forward_shapes(i3d_file):
    saved = torch.load(i3d_file, weights_only=True)
    encoder = enc.load_video_encoder(i3d_file, resize_to=SMALL)
    for key, value in encoder.network.state_dict().items():
        assert torch.equal(value, saved[key]), key
    video = torch.rand(3, 16, 3, 40, 48) * 2 - 1
    logits = encoder(video)
    assert logits.shape == (3, 400) and logits.dtype == torch.float32
    assert torch.isfinite(logits).all()
    pooled = enc.load_video_encoder(i3d_file, features="pool", resize_to=SMALL)(video)
    assert pooled.shape == (3, 1024)
    assert encoder.feature_dim == 400 and encoder.name == "i3d"
    assert not encoder.training and not encoder.network.training
    encoder.train()
    assert not encoder.network.training  # BatchNorm stays in eval mode


def test_preprocess_resizes_short_side_and_centre_crops(i3d_file):
    encoder = enc.load_video_encoder(i3d_file, resize_to=16)
    # 8 x 32 frames: left quarter -1, middle half +1, right quarter -1 -> after resize (16 x 64) and centre crop
    # (columns 24..39) only the +1 middle remains.
    video = -torch.ones(1, 20, 3, 8, 32)
    video[..., 8:24] = 1.0
    x = encoder.preprocess(video)
    assert x.shape == (1, 3, 16, 16, 16)
    assert torch.allclose(x, torch.ones_like(x))
    # tall frames: rows are cropped, and values outside [-1, 1] are clamped
    tall = torch.linspace(-2, 2, 48).view(1, 1, 1, 48, 1).expand(1, 16, 3, 48, 12).clone()
    y = encoder.preprocess(tall)
    assert y.shape == (1, 3, 16, 16, 16)
    assert y.min() >= -1 and y.max() <= 1
    assert y[0, 0, 0, 0, 0] < y[0, 0, 0, -1, 0]


def test_only_the_first_16_frames_count(i3d_file):
    encoder = enc.load_video_encoder(i3d_file, resize_to=SMALL)
    video = torch.rand(2, 16, 3, SMALL, SMALL) * 2 - 1
    longer = torch.cat([video, torch.rand(2, 8, 3, SMALL, SMALL)], dim=1)
    torch.testing.assert_close(encoder(video), encoder(longer))


def test_bad_video_input(i3d_file):
    encoder = enc.load_video_encoder(i3d_file, resize_to=SMALL)
    with pytest.raises(ValueError, match="at least 16 frames"):
        encoder(torch.zeros(1, 15, 3, SMALL, SMALL))
    with pytest.raises(ValueError, match="3 colour channels"):
        encoder(torch.zeros(1, 16, 1, SMALL, SMALL))
    with pytest.raises(ValueError, match=r"\[N, F, C, H, W\]"):
        encoder(torch.zeros(16, 3, SMALL, SMALL))
    with pytest.raises(ValueError, match="float"):
        encoder(torch.zeros(1, 16, 3, SMALL, SMALL, dtype=torch.uint8))
    with pytest.raises(ValueError, match="features"):
        enc.load_video_encoder(i3d_file, features="probs")


def test_torchscript_detector_file_loads(tmp_path, i3d_file):
    ts_file = fakes.make_torchscript_i3d_file(tmp_path / "i3d_torchscript.pt", seed=3)
    assert enc._is_torchscript(ts_file) and not enc._is_torchscript(i3d_file)
    scripted = enc.load_video_encoder(ts_file, resize_to=SMALL)
    plain = enc.load_video_encoder(i3d_file, resize_to=SMALL)
    assert scripted.name == "i3d_torchscript" and scripted.feature_dim == 400
    assert scripted._script_kwargs == {"rescale": False, "resize": False, "return_features": True}
    video = torch.rand(2, 16, 3, 24, 24) * 2 - 1
    torch.testing.assert_close(scripted(video), plain(video), atol=1e-4, rtol=1e-4)  # same seed, same weights
    with pytest.raises(ValueError, match="pool"):
        enc.load_video_encoder(ts_file, features="pool")


def test_state_dict_variants_load(tmp_path):
    net = fakes.randomize_weights(InceptionI3d(), 5)
    state = net.state_dict()
    # DataParallel prefix, a {"state_dict": ...} wrapper and missing num_batches_tracked (old torch) all load
    variant = {"state_dict": {"module." + k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}}
    torch.save(variant, tmp_path / "i3d_pretrained_400.pt")
    encoder = enc.load_video_encoder(tmp_path / "i3d_pretrained_400.pt", resize_to=SMALL)
    torch.testing.assert_close(encoder.network.Mixed_5c.b0.conv3d.weight, net.Mixed_5c.b0.conv3d.weight)


def test_mismatched_file_lists_the_keys(tmp_path):
    state = InceptionI3d().state_dict()
    state.pop("Mixed_4b.b0.conv3d.weight")
    state["extra.weight"] = torch.zeros(3)
    state["logits.conv3d.weight"] = torch.zeros(600, 1024, 1, 1, 1)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(ValueError) as err:
        enc.load_video_encoder(tmp_path / "bad.pt")
    msg = str(err.value)
    assert "missing keys (1): Mixed_4b.b0.conv3d.weight" in msg
    assert "unexpected keys (1): extra.weight" in msg
    assert "logits.conv3d.weight: file (600, 1024, 1, 1, 1) vs model (400, 1024, 1, 1, 1)" in msg


def test_file_that_runs_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="safely"):
        enc.load_video_encoder(tmp_path / "evil.pt")


def test_garbage_file_is_a_clear_error(tmp_path):
    (tmp_path / "i3d_pretrained_400.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="i3d_pretrained_400.pt"):
        enc.load_video_encoder(tmp_path)
