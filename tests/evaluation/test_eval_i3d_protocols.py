"""I3D preprocessing protocols (mm_diffusion.evaluation.i3d_protocols): resize conventions against
hand-computed weights and independent implementations; the protocol reaches the network's BatchNorm."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mm_diffusion.evaluation import i3d_protocols as P
from mm_diffusion.evaluation.i3d import InceptionI3d


def test_tf1_weights_by_hand():
    up = P.tf1_bilinear_matrix(4, 8, torch.float64).numpy()
    expected = np.array([[1, 0, 0, 0], [.5, .5, 0, 0], [0, 1, 0, 0], [0, .5, .5, 0],
                         [0, 0, 1, 0], [0, 0, .5, .5], [0, 0, 0, 1], [0, 0, 0, 1]])
    np.testing.assert_array_equal(up, expected)
    down = P.tf1_bilinear_matrix(6, 4, torch.float64).numpy()  # sources 0, 1.5, 3, 4.5
    expected = np.zeros((4, 6))
    expected[0, 0] = 1
    expected[1, 1:3] = .5
    expected[2, 3] = 1
    expected[3, 4:6] = .5
    np.testing.assert_array_equal(down, expected)


def _tf1_numpy(img, size):
    """Independent TF1 legacy bilinear (gathers, float64): img [H, W] -> [size, size]."""
    h, w = img.shape
    out = np.empty((size, size))
    for i in range(size):
        y = i * h / size
        y0 = int(np.floor(y))
        y1 = min(y0 + 1, h - 1)
        for j in range(size):
            x = j * w / size
            x0 = int(np.floor(x))
            x1 = min(x0 + 1, w - 1)
            top = img[y0, x0] + (img[y0, x1] - img[y0, x0]) * (x - x0)
            bottom = img[y1, x0] + (img[y1, x1] - img[y1, x0]) * (x - x0)
            out[i, j] = top + (bottom - top) * (y - y0)
    return out


def test_tf1_resize_equals_independent_gathers():
    rng = np.random.default_rng(0)
    img = rng.uniform(-1, 1, size=(12, 20))
    got = P.resize_tf1_bilinear(torch.from_numpy(img)[None, None], 56)[0, 0].numpy()
    np.testing.assert_allclose(got, _tf1_numpy(img, 56), atol=1e-12)
    assert not np.allclose(got, F.interpolate(torch.from_numpy(img)[None, None], size=(56, 56), mode="bilinear",
                                              align_corners=False)[0, 0].numpy(), atol=1e-3)


def test_short_side_resize_and_centre_crop():
    x = torch.rand(2, 3, 48, 80, dtype=torch.float64)
    got = P.resize_short_side_crop(x, 224)
    full = F.interpolate(x, size=(224, 374), mode="bilinear", align_corners=False)  # ceil(80 * 224 / 48) = 374
    torch.testing.assert_close(got, full[:, :, :, 75:299])
    tall = torch.rand(1, 3, 80, 48, dtype=torch.float64)
    torch.testing.assert_close(P.resize_short_side_crop(tall, 224),
                               F.interpolate(tall, size=(374, 224), mode="bilinear", align_corners=False)[:, :, 75:299])
    same = torch.rand(1, 3, 224, 224)
    assert torch.equal(P.resize_short_side_crop(same, 224), same)


def test_prepare_clips_layout_and_frames():
    video = torch.rand(2, 20, 3, 8, 8) * 4 - 2  # out of range values are clamped to [-1, 1]
    for name in P.PROTOCOLS:
        out = P.prepare_clips(video, P.get_protocol(name), size=16)
        assert out.shape == (2, 3, 16, 16, 16)
        assert out.min() >= -1 and out.max() <= 1
    out = P.prepare_clips(video, P.get_protocol("tf"), size=8)  # no resize: frames pass through
    torch.testing.assert_close(out, video[:, :16].clamp(-1, 1).permute(0, 2, 1, 3, 4))
    with pytest.raises(ValueError, match="unknown I3D protocol"):
        P.get_protocol("stylegan")


def test_protocol_sets_the_batchnorm_eps(tmp_path):
    from mm_diffusion.evaluation.encoders import load_video_encoder

    path = tmp_path / "i3d_pretrained_400.pt"
    torch.save(InceptionI3d().state_dict(), path)
    mmd = load_video_encoder(path, resize_to=32)
    tf = load_video_encoder(path, resize_to=32, protocol="tf")
    assert mmd.network.bn_eps == 1e-5 and mmd.network.Mixed_5c.b2b.bn.eps == 1e-5
    assert tf.network.bn_eps == 1e-3 and tf.network.Conv3d_1a_7x7.bn.eps == 1e-3
    assert mmd.settings["protocol"]["name"] == "mmdiffusion" and tf.settings["protocol"]["resize"] == "tf1_stretch"
    assert mmd.settings["weights"]["sha256"] == tf.settings["weights"]["sha256"]
