"""generate_av with the coupling options: --data_scale round trip and clean conditioning with guidance."""
import torch

from mm_diffusion.diffusion import create_gaussian_diffusion
from mm_diffusion.sampling.generate import generate_av

from ..probe.doubles import decoupled_unet, tiny_clips


def _generate(diffusion, **kw):
    ref = tiny_clips(2)
    out = generate_av(decoupled_unet(), diffusion, [0, 1], video_size=(4, 3, 16, 16), audio_size=(1, 1600),
                      method="dpm_solver", steps=3, condition={"video": ref["video"]}, **kw)
    return ref, out


def test_data_scale_scales_the_condition_and_is_divided_out():
    seen = {}
    d = create_gaussian_diffusion(steps=1000, predict_xstart=True)
    d.data_scale = {"video": 2.0, "audio": 3.0}
    model = decoupled_unet()
    forward = model.forward

    def spy(video, audio, t, **kw):
        seen.setdefault("video", video.clone())
        return forward(video, audio, t, **kw)

    model.forward = spy
    ref = tiny_clips(2)
    out = generate_av(model, d, [0, 1], video_size=(4, 3, 16, 16), audio_size=(1, 1600), method="dpm_solver",
                      steps=3, condition={"video": ref["video"]}, condition_mode="clean")
    assert torch.allclose(seen["video"], 2.0 * ref["video"])  # clean mode: the model sees the scaled condition
    assert torch.allclose(out["video"], ref["video"], atol=1e-6)
    assert float(out["audio"].abs().max()) <= 1.0 + 1e-6  # clamped at 3 in the scaled space = 1 in data units


def test_clean_conditioning_with_guidance_runs_and_keeps_the_condition():
    d = create_gaussian_diffusion(steps=1000, predict_xstart=True)
    ref, plain = _generate(d, condition_mode="clean")
    _, guided = _generate(d, condition_mode="clean", guidance_scale=3.0)
    assert torch.equal(plain["video"], ref["video"]) and torch.equal(guided["video"], ref["video"])
    assert torch.isfinite(guided["audio"]).all()
