"""mm_diffusion.runs.checkpoint: atomic writes, safe loading, weight loading, latest checkpoint."""
import os
import pickle

import pytest
import torch
import torch.nn as nn

from mm_diffusion.runs import checkpoint as ck


class Small(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.a = nn.Linear(3, width)
        self.b = nn.Linear(width, 2)


def test_save_is_atomic_and_leaves_no_temp(tmp_path):
    path = tmp_path / "model000001.pt"
    ck.save_checkpoint({"w": torch.arange(3)}, str(path))
    assert torch.equal(ck.load_checkpoint_file(str(path))["w"], torch.arange(3))
    assert os.listdir(tmp_path) == ["model000001.pt"]


def test_failed_save_keeps_previous_file(tmp_path):
    path = str(tmp_path / "model000001.pt")
    ck.save_checkpoint({"w": torch.zeros(2)}, path)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        ck.save_checkpoint({"bad": Boom()}, path)
    assert torch.equal(ck.load_checkpoint_file(path)["w"], torch.zeros(2))
    assert os.listdir(tmp_path) == ["model000001.pt"]


def test_save_into_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ck.save_checkpoint({}, str(tmp_path / "nope" / "x.pt"))


def test_loading_never_runs_code(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"x": Evil()}, handle, protocol=2)
    with pytest.raises(ValueError, match="safely"):
        ck.load_state_dict_file(str(path))
    assert not marker.exists()


def test_state_dict_formats(tmp_path):
    from safetensors.torch import save_file

    sd = Small().state_dict()
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "wrapped.pt")
    save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "w.safetensors"))
    for name in ("wrapped.pt", "w.safetensors"):
        got = ck.load_state_dict_file(str(tmp_path / name))
        assert set(got) == set(sd) and all(torch.equal(got[k], sd[k]) for k in sd)
    torch.save({"step": 3, "optimizer": {}}, tmp_path / "opt.pt")
    with pytest.raises(ValueError, match="not a plain state dict"):
        ck.load_state_dict_file(str(tmp_path / "opt.pt"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ck.load_state_dict_file(str(tmp_path / "missing.pt"))


def test_fp16_file_loads_into_fp32_model(tmp_path):
    src = Small()
    torch.save({k: v.half() for k, v in src.state_dict().items()}, tmp_path / "half.pt")
    dst = Small()
    report = ck.load_model_weights(dst, str(tmp_path / "half.pt"))
    assert report.ok and len(report.loaded) == 4
    assert dst.a.weight.dtype == torch.float32
    assert torch.equal(dst.a.weight, src.a.weight.half().float())


def test_strict_mismatch_lists_every_kind_of_key():
    state = Small(width=5).state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["b.bias"]
    with pytest.raises(ValueError) as err:
        ck.load_model_weights(Small(width=4), state)
    text = str(err.value)
    assert "missing keys" in text and "b.bias" in text
    assert "unexpected keys" in text and "extra.weight" in text
    assert "mis-shaped" in text and "a.weight: (5, 3) vs (4, 3)" in text


def test_non_strict_loads_matching_and_logs_skipped():
    src, dst = Small(width=5), Small(width=4)
    state = src.state_dict()
    state["extra"] = torch.ones(2)
    before_b = dst.b.bias.clone()
    messages = []
    report = ck.load_model_weights(dst, state, strict=False, log=messages.append)
    assert report.loaded == ["b.bias"]
    assert torch.equal(dst.b.bias, src.b.bias) and not torch.equal(dst.b.bias, before_b)
    assert len(messages) == 1
    for key in ("a.weight", "a.bias", "b.weight", "extra"):
        assert key in messages[0]


def test_find_latest_checkpoint_skips_incomplete_steps(tmp_path):
    assert ck.find_latest_checkpoint(str(tmp_path)) is None
    for name in ("model000010.pt", "opt000010.pt", "ema_0.9999_000010.pt", "ema_0.99_000010.pt",
                 "model000020.pt", "ema_0.9999_000020.pt",          # interrupted: no opt file
                 ".opt000020.pt.abc.tmp", "model_final.pt"):
        (tmp_path / name).write_bytes(b"x")
    latest = ck.find_latest_checkpoint(str(tmp_path))
    assert latest.step == 10 and latest.model.endswith("model000010.pt") and latest.opt.endswith("opt000010.pt")
    assert latest.ema_path(0.9999).endswith("ema_0.9999_000010.pt")
    assert latest.ema_path("0.99").endswith("ema_0.99_000010.pt") and latest.ema_path(0.5) is None
    assert ck.find_latest_checkpoint(str(tmp_path), complete_only=False).step == 20
    with pytest.raises(FileNotFoundError):
        ck.find_latest_checkpoint(str(tmp_path / "nope"))


def test_checkpoint_names_round_trip(tmp_path):
    paths = ck.checkpoint_paths(str(tmp_path), 1234, ["0.9999"])
    assert os.path.basename(paths.model) == "model001234.pt"
    assert os.path.basename(paths.opt) == "opt001234.pt"
    assert os.path.basename(paths.ema["0.9999"]) == "ema_0.9999_001234.pt"
    assert ck.parse_checkpoint_name(paths.ema["0.9999"]) == ("ema", 1234, "0.9999")
    assert ck.parse_checkpoint_name("AIST++.pt") is None
