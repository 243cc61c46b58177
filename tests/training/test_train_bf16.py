"""Training with ``--precision bf16`` (a bf16 compute copy, fp32 master weights): exact resume, fp32
published-layout checkpoints, and a loss that follows the fp32 run from the same seed."""
import csv

import torch

from mm_diffusion import train
from mm_diffusion.models.configs import create_model
from mm_diffusion.runs.checkpoint import load_checkpoint_file, load_state_dict_file

FAST = ["--config", "tiny", "--synthetic_num", "8", "--batch_size", "2", "--progress", "False", "--log_interval", "1",
        "--save_interval", "2", "--ema_rate", "0.9", "--dropout", "0.1"]


def _losses(folder):
    return [float(r["loss"]) for r in csv.DictReader(open(folder / "progress.csv"))]


def test_bf16_run_resumes_exactly_and_writes_fp32_checkpoints(tmp_path):
    a, b, ref = tmp_path / "a", tmp_path / "b", tmp_path / "fp32"
    bf16 = FAST + ["--precision", "bf16"]
    assert train.main(bf16 + ["--output_dir", str(a), "--max_steps", "4"]) == 4
    assert train.main(bf16 + ["--output_dir", str(b), "--max_steps", "2"]) == 2
    assert train.main(bf16 + ["--output_dir", str(b), "--max_steps", "4",
                              "--resume_checkpoint", str(b / "model000002.pt")]) == 4
    keys = create_model("tiny").state_dict().keys()
    for name in ("model000004.pt", "ema_0.9_000004.pt"):
        sa, sb = load_state_dict_file(str(a / name)), load_state_dict_file(str(b / name))
        assert sa.keys() == keys                                   # the published layout, nothing added
        assert all(v.dtype == torch.float32 for v in sa.values())  # master weights, not the bf16 copy
        assert all(torch.equal(sa[k], sb[k]) for k in sa), name    # resume is exact
    assert load_checkpoint_file(str(a / "opt000004.pt"))["step"] == 4
    assert _losses(a) == _losses(b)

    assert train.main(FAST + ["--precision", "fp32", "--output_dir", str(ref), "--max_steps", "4"]) == 4
    for x, y in zip(_losses(a), _losses(ref)):               # same data, t and noise: bf16 rounding only
        assert abs(x - y) <= 0.03 * y, (_losses(a), _losses(ref))
    weights_fp32 = load_state_dict_file(str(ref / "model000004.pt"))
    weights_bf16 = load_state_dict_file(str(a / "model000004.pt"))
    assert any(not torch.equal(weights_fp32[k], weights_bf16[k]) for k in keys)   # really a different path
