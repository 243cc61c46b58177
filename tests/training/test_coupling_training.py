"""Training with the coupling options: --independent_t_prob (step + exact resume), --data_scale, position RS-MMA."""
import json

import torch

from mm_diffusion import train
from mm_diffusion.runs.checkpoint import load_state_dict_file

FAST = ["--config", "tiny", "--synthetic_num", "8", "--batch_size", "2", "--progress", "False", "--log_interval", "1",
        "--save_interval", "2", "--ema_rate", "0.9"]


def test_independent_t_training_resumes_exactly(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    opts = FAST + ["--independent_t_prob", "0.5", "--data_scale", "1,2.5", "--cross_attention_position", "True"]
    assert train.main(opts + ["--output_dir", str(a), "--max_steps", "3"]) == 3
    assert train.main(opts + ["--output_dir", str(b), "--max_steps", "2"]) == 2
    assert train.main(opts + ["--output_dir", str(b), "--max_steps", "3", "--resume_checkpoint", str(b)]) == 3
    sa, sb = load_state_dict_file(str(a / "model000003.pt")), load_state_dict_file(str(b / "model000003.pt"))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert any(k.endswith("v2a_position") for k in sa)
    args = json.load(open(a / "config.json"))["args"]
    assert args["independent_t_prob"] == 0.5 and args["data_scale"] == "1,2.5"


def test_options_change_training(tmp_path):
    plain, indep = tmp_path / "p", tmp_path / "i"
    assert train.main(FAST + ["--output_dir", str(plain), "--max_steps", "1"]) == 1
    assert train.main(FAST + ["--output_dir", str(indep), "--max_steps", "1", "--independent_t_prob", "1"]) == 1
    sp, si = load_state_dict_file(str(plain / "model000001.pt")), load_state_dict_file(str(indep / "model000001.pt"))
    assert not all(torch.equal(sp[k], si[k]) for k in sp)
