"""--own_step_inputs: parsing, the drawn timesteps, the rebuilt noise, and a training step with the option."""
import json

import pytest
import torch

from mm_diffusion import train
from mm_diffusion.diffusion.factory import create_gaussian_diffusion
from mm_diffusion.diffusion.own_step_inputs import OwnStepSpec, draw_own_steps, own_step_noise, parse_own_step_inputs
from mm_diffusion.runs.checkpoint import load_state_dict_file


def test_parse():
    assert parse_own_step_inputs("", 1000) is None
    assert parse_own_step_inputs(" audio:0.5:250 ", 1000) == OwnStepSpec("audio", 0.5, 250)
    assert parse_own_step_inputs("video:1:999", 1000) == OwnStepSpec("video", 1.0, 999)


@pytest.mark.parametrize("spec, message", [
    ("sound:0.5:10", "not one of video, audio"),
    ("audio:0:10", r"PROB must lie in \(0, 1\]"),
    ("audio:1.5:10", r"PROB must lie in \(0, 1\]"),
    ("audio:0.5:0", r"MAXJUMP must lie in \[1, 1000\)"),
    ("audio:0.5:1000", r"MAXJUMP must lie in \[1, 1000\)"),
    ("audio:0.5", "KEY:PROB:MAXJUMP"),
    ("audio:half:10", "PROB must be a number"),
    ("audio:0.5:2.5", "MAXJUMP an integer"),
])
def test_parse_refuses_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_own_step_inputs(spec, 1000)


def test_draw_own_steps():
    assert draw_own_steps(None, torch.zeros(4, dtype=torch.long), 1000) is None
    torch.manual_seed(0)
    t = {"video": torch.full((4000,), 5), "audio": torch.cat([torch.full((2000,), 100), torch.full((2000,), 990)])}
    t_hi = draw_own_steps(OwnStepSpec("audio", 0.25, 50), t, 1000)
    low, high = t_hi[:2000] - 100, t_hi[2000:]
    assert low.min() == 0 and low.max() == 50  # jumps in {1..50} on the chosen rows, 0 elsewhere
    assert abs(float((low > 0).float().mean()) - 0.25) < 0.04
    assert high.max() == 999 and high.min() == 990  # clamped to T - 1
    torch.manual_seed(0)
    again = draw_own_steps(OwnStepSpec("audio", 0.25, 50), t, 1000)
    assert torch.equal(t_hi, again)  # global generator: a resumed run draws the same


def _pair(n=3):
    gen = torch.Generator().manual_seed(1)
    x0 = {"video": torch.rand(n, 2, 3, 4, 4, generator=gen) * 2 - 1, "audio": torch.rand(n, 1, 16, generator=gen) - 0.5}
    noise = {k: torch.randn(v.shape, generator=gen) for k, v in x0.items()}
    return x0, noise


@pytest.mark.parametrize("predict_xstart", [True, False])
def test_an_exact_model_leaves_the_noise_unchanged(predict_xstart):
    diffusion = create_gaussian_diffusion(steps=100, predict_xstart=predict_xstart)
    x0, noise = _pair()
    t = torch.tensor([10, 40, 80])
    t_hi = torch.tensor([30, 40, 99])

    def oracle(x_t, t_model):  # the true x0 (or the true eps) of the pair: a perfect denoiser
        return x0 if predict_xstart else diffusion.predict_eps_from_xstart(x_t, t_model, x0)

    out = own_step_noise(diffusion, oracle, x0, t, noise, "audio", t_hi)
    assert torch.allclose(out["audio"], noise["audio"], atol=1e-4)
    assert out["video"] is noise["video"]


def test_the_rebuilt_input_is_a_ddim_step_from_the_models_prediction():
    diffusion = create_gaussian_diffusion(steps=100, predict_xstart=True)
    x0, noise = _pair()
    t = {"video": torch.tensor([5, 5, 5]), "audio": torch.tensor([10, 20, 30])}
    t_hi = torch.tensor([50, 20, 90])  # row 1 unchosen
    seen = {}

    def half(x_t, t_model):  # predicts half the true audio; records what it was called with
        seen.update(x_t=x_t, t=t_model)
        return {"video": x_t["video"], "audio": 0.5 * x0["audio"]}

    out = own_step_noise(diffusion, half, x0, t, noise, "audio", t_hi)
    assert torch.equal(seen["t"]["audio"], t_hi) and torch.equal(seen["t"]["video"], t["video"])
    expect_high = diffusion.q_sample(x0, {"video": t["video"], "audio": t_hi}, noise)
    assert torch.allclose(seen["x_t"]["audio"], expect_high["audio"])
    assert torch.equal(out["video"], noise["video"]) and torch.equal(out["audio"][1], noise["audio"][1])
    x_t = diffusion.q_sample(x0, t, out)["audio"]  # what the training step will see
    pred = 0.5 * x0["audio"]
    eps_hat = diffusion.predict_eps_from_xstart({"audio": expect_high["audio"]}, {"audio": t_hi}, {"audio": pred})["audio"]
    ddim = (diffusion.extract("sqrt_alphas_cumprod", t["audio"], pred) * pred
            + diffusion.extract("sqrt_one_minus_alphas_cumprod", t["audio"], pred) * eps_hat)
    assert torch.allclose(x_t[[0, 2]], ddim[[0, 2]], atol=1e-5)
    assert not torch.allclose(out["audio"][0], noise["audio"][0], atol=1e-3)


def test_refuses_a_modality_the_task_does_not_have():
    diffusion = create_gaussian_diffusion(steps=10)
    with pytest.raises(ValueError, match="names 'audio'"):
        own_step_noise(diffusion, lambda x, t: x, torch.zeros(2, 3), torch.zeros(2, dtype=torch.long),
                       torch.zeros(2, 3), "audio", torch.ones(2, dtype=torch.long))


FAST = ["--config", "tiny", "--synthetic_num", "8", "--batch_size", "2", "--progress", "False", "--log_interval", "1",
        "--save_interval", "1", "--ema_rate", "0.9", "--independent_t_prob", "0.5"]


def test_training_with_own_step_inputs_changes_the_step_and_resumes_exactly(tmp_path):
    plain, own, resumed = tmp_path / "plain", tmp_path / "own", tmp_path / "resumed"
    option = ["--own_step_inputs", "audio:1:999"]
    assert train.main(FAST + ["--max_steps", "2", "--output_dir", str(plain)]) == 2
    assert train.main(FAST + option + ["--max_steps", "2", "--output_dir", str(own)]) == 2
    assert train.main(FAST + option + ["--max_steps", "1", "--output_dir", str(resumed)]) == 1
    assert train.main(FAST + option + ["--max_steps", "2", "--output_dir", str(resumed),
                                       "--resume_checkpoint", str(resumed)]) == 2
    w_plain, w_own, w_res = (load_state_dict_file(str(p / "model000002.pt")) for p in (plain, own, resumed))
    assert not all(torch.equal(w_plain[k], w_own[k]) for k in w_plain)
    assert all(torch.equal(w_own[k], w_res[k]) for k in w_own)  # exact resume with the option on
    assert json.load(open(own / "config.json"))["args"]["own_step_inputs"] == "audio:1:999"


def test_training_refuses_a_bad_spec(tmp_path):
    with pytest.raises(ValueError, match="not one of video, audio"):
        train.main(FAST + ["--max_steps", "1", "--output_dir", str(tmp_path / "bad"), "--own_step_inputs", "sound:1:9"])
