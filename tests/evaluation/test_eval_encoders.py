"""Encoder registry: missing files, folder paths, options, settings (cache keys), helper files."""
import json

import pytest
import torch

from mm_diffusion.evaluation import encoders as enc
from mm_diffusion.testing import encoders as fakes


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("enc")
    return {
        "i3d": fakes.make_random_i3d_file(root / "i3d" / "i3d_pretrained_400.pt", seed=0),
        "i3d_other": fakes.make_random_i3d_file(root / "other" / "i3d_pretrained_400.pt", seed=1),
        "audioclip": fakes.make_random_audioclip_file(root / "ac" / "AudioCLIP-Full-Training.pt", seed=0),
    }


@pytest.mark.parametrize("kind,call,flag,name,url_part", [
    ("i3d", lambda p: enc.load_video_encoder(p), "--i3d_path", "i3d_pretrained_400.pt",
     "1mQK8KD8G6UWRa5t87SRMm5PVXtlpneJT"),
    ("audioclip", lambda p: enc.load_audio_encoder("audioclip", p), "--audio_encoder_path",
     "AudioCLIP-Full-Training.pt", "github.com/AndreyGuzhov/AudioCLIP/releases/download/v0.1/AudioCLIP-Full-Training.pt"),
    ("vggish", lambda p: enc.load_audio_encoder("vggish", p), "--audio_encoder_path", "vggish-10086976.pth",
     "github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth"),
])
def test_missing_file_names_flag_file_and_source(tmp_path, kind, call, flag, name, url_part):
    for path in (tmp_path / "nope.pt", tmp_path, None):  # absent file, folder without it, no path at all
        with pytest.raises(FileNotFoundError) as err:
            call(path)
        msg = str(err.value)
        assert flag in msg and name in msg and url_part in msg and "downloaded" in msg
    assert list(tmp_path.iterdir()) == []  # nothing was fetched or written


def test_folder_path_finds_the_published_name(files):
    by_folder = enc.load_video_encoder(files["i3d"].parent, resize_to=32)
    by_file = enc.load_video_encoder(files["i3d"], resize_to=32)
    assert by_folder.settings == by_file.settings
    ac = enc.load_audio_encoder("audioclip", files["audioclip"].parent)
    assert ac.name == "audioclip"


def test_unknown_names_and_options(files):
    with pytest.raises(ValueError, match="audioclip, vggish"):
        enc.load_audio_encoder("clap", files["audioclip"])
    with pytest.raises(ValueError, match="invalid option"):
        enc.load_audio_encoder("audioclip", files["audioclip"], pca=True)
    with pytest.raises(ValueError, match="resize_to"):
        enc.load_video_encoder(files["i3d"], resize_to=0)
    ac = enc.load_audio_encoder("audioclip", files["audioclip"])
    for bad in (None, -16000, 16000.5, "16000"):
        with pytest.raises(ValueError, match="sample_rate"):
            ac(torch.zeros(1, 1, 100), bad)
    import numpy as np

    assert ac.preprocess(torch.zeros(1, 1, 100), np.int64(16000)).shape == (1, 70560)


def test_settings_are_json_and_identify_the_weights(files):
    a = enc.load_video_encoder(files["i3d"], resize_to=32)
    b = enc.load_video_encoder(files["i3d_other"], resize_to=32)
    c = enc.load_video_encoder(files["i3d"], resize_to=64, features="pool")
    for s in (a.settings, b.settings, c.settings):
        assert json.loads(json.dumps(s)) == s
    assert a.settings["weights"]["bytes"] == b.settings["weights"]["bytes"]
    assert a.settings["weights"]["sha256"] != b.settings["weights"]["sha256"]  # same size, other content
    assert a.settings != c.settings and c.settings["resize_to"] == 64 and c.settings["features"] == "pool"
    ac = enc.load_audio_encoder("audioclip", files["audioclip"]).settings
    assert json.loads(json.dumps(ac)) == ac
    assert ac["sample_rate"] == 44100 and ac["clip_samples"] == 70560 and ac["fad_scale"] == 1e4
    assert ac["batchnorm"] == "eval"


def test_encoders_are_frozen_eval_modules(files):
    video = enc.load_video_encoder(files["i3d"], resize_to=32)
    audio = enc.load_audio_encoder("audioclip", files["audioclip"])
    for e in (video, audio):
        assert isinstance(e, torch.nn.Module)
        assert not any(p.requires_grad for p in e.parameters())
        e.train()
        assert not any(m.training for m in e.modules())
    out = video(torch.rand(1, 16, 3, 32, 32, requires_grad=True) * 2 - 1)
    assert not out.requires_grad


def test_helper_files_use_published_layouts(files, tmp_path):
    i3d = torch.load(files["i3d"], weights_only=True)
    assert len(i3d) == 344 and "logits.conv3d.weight" in i3d
    ac = torch.load(files["audioclip"], weights_only=True)
    assert sum(k.startswith("audio.") for k in ac) == 370
    assert {"logit_scale", "logit_scale_ai", "logit_scale_at"} <= set(ac)
    ts = fakes.make_torchscript_i3d_file(tmp_path / "i3d_torchscript.pt")
    assert enc._is_torchscript(ts)
    # writes are atomic: no temporary files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["i3d_torchscript.pt"]


def test_weight_files_table_is_complete():
    for kind in ("i3d", "audioclip", "vggish", "vggish_pca"):
        info = enc.WEIGHT_FILES[kind]
        assert info["flag"].startswith("--") and info["file"] and "http" in info["source"]
    assert enc.AUDIO_ENCODERS == ("audioclip", "vggish")
    assert enc.VIDEO_FEATURES == ("logits", "pool")
