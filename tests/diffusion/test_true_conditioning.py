"""True conditional generation (the known modality clean at its own t = 0) and guidance, with every sampler."""
import pytest
import torch

from mm_diffusion.diffusion import create_gaussian_diffusion, sample
from mm_diffusion.diffusion.samplers.denoiser import Denoiser
from mm_diffusion.diffusion.samplers.true_conditioning import CleanConditionDenoiser, JointGuidanceDenoiser


def _shapes(n=2):
    return {"video": (n, 2, 3, 4, 4), "audio": (n, 1, 16)}


def _condition(n=2):
    return {"video": torch.rand(_shapes(n)["video"], generator=torch.Generator().manual_seed(1)) * 2 - 1}


class Recorder:
    """x0-model double: the audio x0 is 0.3 when the video is given clean (t_video = 0), else 0.1."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, t):
        self.calls.append(({k: v.clone() for k, v in x.items()}, t))
        tv = t["video"] if isinstance(t, dict) else t
        a = torch.where((tv == 0)[:, None, None], 0.3, 0.1).expand_as(x["audio"])
        return {"video": x["video"] * 0.5, "audio": a.contiguous()}


@pytest.mark.parametrize("method,steps", [("ddpm", 8), ("ddim", 8), ("dpm_solver", 6), ("dpm_solver++", 6)])
def test_clean_conditioning_keeps_the_known_modality_with_every_sampler(method, steps):
    d = create_gaussian_diffusion(steps=1000, predict_xstart=True)
    rec, cond = Recorder(), _condition()
    out = sample(rec, _shapes(), diffusion=d, method=method, steps=steps, condition=cond, condition_mode="clean",
                 generator=torch.Generator().manual_seed(0), progress=False)
    assert torch.equal(out["video"], cond["video"])
    assert rec.calls and all(torch.equal(x["video"], cond["video"]) for x, _ in rec.calls)
    assert all(isinstance(t, dict) and int(t["video"].max()) == 0 for _, t in rec.calls)
    assert int(rec.calls[0][1]["audio"][0]) > 900  # the generated modality walks down from high noise
    assert torch.isfinite(out["audio"]).all()


@pytest.mark.parametrize("method", ["ddim", "dpm_solver"])
def test_guidance_calls_an_unconditional_branch_with_the_known_modality_at_T(method):
    d = create_gaussian_diffusion(steps=1000, predict_xstart=True)
    rec = Recorder()
    sample(rec, _shapes(), diffusion=d, method=method, steps=4, condition=_condition(), condition_mode="clean",
           guidance_scale=2.0, generator=torch.Generator().manual_seed(0), progress=False)
    known_t = [int(t["video"][0]) for _, t in rec.calls]
    assert known_t[0::2] == [0] * (len(known_t) // 2) and set(known_t[1::2]) == {999}


def test_guidance_combines_the_two_predictions():
    d = create_gaussian_diffusion(steps=1000, predict_xstart=True)
    x = {"video": torch.randn(_shapes()["video"]), "audio": torch.randn(_shapes()["audio"])}
    for scale, expect in ((1.0, 0.3), (2.0, 0.5), (0.0, 0.1)):
        den = CleanConditionDenoiser(Recorder(), d, condition=_condition(), guidance_scale=scale)
        pred = den(x, 400)
        assert torch.allclose(pred.pred_xstart["audio"], torch.full_like(x["audio"], expect), atol=1e-5)
        assert torch.equal(pred.pred_xstart["video"], _condition()["video"])


def test_option_errors():
    d = create_gaussian_diffusion(steps=100, predict_xstart=True)
    with pytest.raises(ValueError, match="guidance_scale applies"):
        sample(Recorder(), _shapes(), diffusion=d, method="ddim", steps=4, condition=_condition(), guidance_scale=2.0,
               progress=False)
    with pytest.raises(ValueError, match="unknown condition_mode"):
        sample(Recorder(), _shapes(), diffusion=d, method="ddim", steps=4, condition=_condition(),
               condition_mode="x", progress=False)
    with pytest.raises(ValueError, match="needs a condition"):
        CleanConditionDenoiser(Recorder(), d, condition=None)


def test_clip_bounds_clamp_each_modality_at_its_own_bound():
    d = create_gaussian_diffusion(steps=100, predict_xstart=True)
    fn = lambda x, t: {"video": torch.full_like(x["video"], 5.0), "audio": torch.full_like(x["audio"], -5.0)}  # noqa: E731
    x = {"video": torch.zeros(_shapes()["video"]), "audio": torch.zeros(_shapes()["audio"])}
    pred = Denoiser(fn, d, clip_bounds={"audio": 2.5})(x, 50)
    assert float(pred.pred_xstart["video"].max()) == 1.0 and float(pred.pred_xstart["audio"].min()) == -2.5


class JointRecorder:
    """x0-model double for joint guidance: the audio x0 is 0.3 while the video is at the sampler's t (the video
    informs it) and 0.1 when the video is at t = T (no information); the video x0 is 0.5 x_video."""

    def __init__(self):
        self.calls = []

    def __call__(self, x, t):
        self.calls.append(({k: v.clone() for k, v in x.items()}, t))
        informed = not isinstance(t, dict) or bool((t["video"] == t["audio"]).all())
        a = torch.full_like(x["audio"], 0.3 if informed else 0.1)
        return {"video": x["video"] * 0.5, "audio": a}


def test_joint_guidance_guides_the_audio_by_the_video_and_leaves_the_video():
    d = create_gaussian_diffusion(steps=1000, predict_xstart=True)
    x = {"video": torch.randn(_shapes()["video"]), "audio": torch.randn(_shapes()["audio"])}
    for scale, expect in ((2.0, 0.5), (3.0, 0.7), (0.0, 0.1)):
        rec = JointRecorder()
        pred = JointGuidanceDenoiser(rec, d, guidance_scale=scale, clip_denoised=False)(x, 400)
        assert torch.allclose(pred.pred_xstart["audio"], torch.full_like(x["audio"], expect), atol=1e-5)
        assert torch.allclose(pred.pred_xstart["video"], 0.5 * x["video"], atol=1e-6)
        (x_joint, t_joint), (x_unc, t_unc) = rec.calls
        assert torch.equal(x_joint["video"], x["video"]) and not torch.equal(x_unc["video"], x["video"])
        assert torch.equal(x_unc["audio"], x["audio"])  # only the other modality is replaced
        assert int(t_unc["video"][0]) == 999 and int(t_unc["audio"][0]) == 400


@pytest.mark.parametrize("method,steps", [("ddpm", 6), ("dpm_solver", 4)])
def test_joint_guidance_in_sample_two_calls_per_step_and_one_is_plain(method, steps):
    d = create_gaussian_diffusion(steps=1000, predict_xstart=True)
    kw = dict(diffusion=d, method=method, steps=steps, progress=False)
    plain = sample(JointRecorder(), _shapes(), generator=torch.Generator().manual_seed(0), **kw)
    same = sample(JointRecorder(), _shapes(), generator=torch.Generator().manual_seed(0), joint_guidance_scale=1.0, **kw)
    assert all(torch.equal(plain[k], same[k]) for k in plain)  # scale 1: exactly today's sampler
    rec = JointRecorder()
    guided = sample(rec, _shapes(), generator=torch.Generator().manual_seed(0), joint_guidance_scale=2.0, **kw)
    assert not torch.allclose(guided["audio"], plain["audio"])
    assert len(rec.calls) % 2 == 0 and all(isinstance(t, dict) for _, t in rec.calls[1::2])
    with pytest.raises(ValueError, match="unconditional"):
        sample(JointRecorder(), _shapes(), condition=_condition(), joint_guidance_scale=2.0, **kw)
