import json

import pytest
import torch

from mm_diffusion.diffusion import create_gaussian_diffusion
from mm_diffusion.probe import coupling_probe, swap_test
from mm_diffusion.probe.cli import main
from mm_diffusion.probe.coupling import derangement, roll_in_time
from mm_diffusion.probe.report import format_rows

from .doubles import ClipMeanIntoAudio, VideoIntoAudio, av_fn, decoupled_unet, tiny_clips


def _diffusion(predict_xstart=True):
    return create_gaussian_diffusion(steps=1000, predict_xstart=predict_xstart)


def _row(rows, direction, t):
    return next(r for r in rows if r["direction"] == direction and r["t"] == t)


def test_derangement_moves_every_clip():
    perm = derangement(5)
    assert sorted(perm.tolist()) == list(range(5))
    assert all(int(p) != i for i, p in enumerate(perm))
    with pytest.raises(ValueError, match="at least 2"):
        derangement(1)


def test_decoupled_model_reports_zero_dependence_both_ways():
    rows = coupling_probe(av_fn(decoupled_unet()), _diffusion(), tiny_clips(), (100, 500))
    assert len(rows) == 4
    for row in rows:
        assert row["rel_change"] == 0.0
        assert row["x0_mse_true"] == row["x0_mse_swap"] > 0
        assert row["eps_mse_true"] == row["eps_mse_swap"]
        assert row["x0_gain"] == 0.0


def test_random_cross_attention_makes_a_nonzero_dependence():
    model = decoupled_unet()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "proj_out" in name and ("video_proj_out" in name or "audio_proj_out" in name):
                p.normal_(0.0, 0.05)
    rows = coupling_probe(av_fn(model), _diffusion(), tiny_clips(), (100,))
    assert all(r["rel_change"] > 1e-6 for r in rows)  # the decoupled model gives exactly 0


def test_copying_model_reports_large_audio_dependence_and_none_for_video():
    clips = tiny_clips()
    frames = torch.rand(clips["video"].shape[:2], generator=torch.Generator().manual_seed(3)) * 1.6 - 0.8
    clips["video"] = frames[:, :, None, None, None].expand_as(clips["video"]).contiguous()  # a brightness per frame
    clips["audio"] = VideoIntoAudio()(clips["video"], clips["audio"], None)[1]  # audio that the copy predicts
    rows = swap_test(av_fn(VideoIntoAudio()), _diffusion(), clips, 0)
    audio, video = _row(rows, "audio<-video", 0), _row(rows, "video<-audio", 0)
    assert audio["x0_mse_true"] < 1e-6
    assert audio["x0_mse_swap"] > 1e-3 and audio["x0_gain"] > 100
    assert audio["rel_change"] > 0.1
    assert video["rel_change"] == 0.0


def test_other_t_noises_the_swapped_modality_on_its_own():
    seen = []

    def fn(x, t):
        seen.append(t)
        return {"video": x["video"] * 0, "audio": x["audio"] * 0}

    swap_test(fn, _diffusion(), tiny_clips(), 300, other_t=0)
    assert isinstance(seen[0], dict)
    assert int(seen[0]["audio"][0]) == 300 and int(seen[0]["video"][0]) == 0  # scoring audio: the video clean
    assert int(seen[-1]["video"][0]) == 300 and int(seen[-1]["audio"][0]) == 0


def test_data_scale_is_divided_out_of_the_errors():
    clips = tiny_clips()
    plain, scaled = _diffusion(), _diffusion()
    scaled.data_scale = {"video": 1.0, "audio": 2.0}
    ident = lambda x, t: {"video": x["video"] * 0, "audio": x["audio"] * 0}  # noqa: E731 - predicts x0 = 0
    a = _row(swap_test(ident, plain, clips, 100), "audio<-video", 100)
    b = _row(swap_test(ident, scaled, clips, 100), "audio<-video", 100)
    assert a["x0_mse_true"] == pytest.approx(b["x0_mse_true"], rel=1e-12)
    assert a["x0_mse_true"] == pytest.approx(float((clips["audio"].double() ** 2).mean()), rel=1e-9)


def test_bad_timesteps_are_rejected():
    with pytest.raises(ValueError, match="probe timesteps"):
        coupling_probe(av_fn(decoupled_unet()), _diffusion(), tiny_clips(), (1000,))


def test_table_has_a_line_per_row():
    rows = coupling_probe(av_fn(decoupled_unet()), _diffusion(), tiny_clips(), (100,))
    text = format_rows(rows).splitlines()
    assert len(text) == 3 and text[0].split()[:3] == ["direction", "t", "x0_mse_true"]
    assert text[1].split()[0] == "audio<-video"


def test_cli_on_a_run_checkpoint_writes_json(tmp_path, capsys):
    from mm_diffusion.cli import flags

    args = flags.config_to_flags("tiny")
    args.update(predict_xstart=True, diffusion_steps=1000, video_fps=10.0, audio_fps=0, hum_level=0.0)
    model = decoupled_unet()
    torch.save(model.state_dict(), tmp_path / "model000001.pt")
    (tmp_path / "config.json").write_text(json.dumps({"args": args}))
    out = tmp_path / "probe.json"
    assert main(["coupling", "--checkpoint", str(tmp_path / "model000001.pt"), "--num_clips", "2",
                 "--t", "100", "--out", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert [r["direction"] for r in payload["rows"]] == ["audio<-video", "video<-audio"]
    assert all(r["rel_change"] == 0.0 for r in payload["rows"])
    assert "audio<-video" in capsys.readouterr().out


def test_roll_in_time_moves_frames_and_the_same_duration_of_audio():
    video = torch.arange(4.0)[None, :, None, None, None].expand(1, 4, 1, 2, 2)
    audio = torch.arange(8.0)[None, None]
    assert roll_in_time(video, "video", 4, 1)[0, :, 0, 0, 0].tolist() == [3.0, 0.0, 1.0, 2.0]
    assert roll_in_time(audio, "audio", 4, 1)[0, 0].tolist() == [6.0, 7.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    with pytest.raises(ValueError, match="divisible"):
        roll_in_time(torch.zeros(1, 1, 7), "audio", 4, 1)


def _per_frame_clips():
    clips = tiny_clips()
    frames = torch.rand(clips["video"].shape[:2], generator=torch.Generator().manual_seed(3)) * 1.6 - 0.8
    clips["video"] = frames[:, :, None, None, None].expand_as(clips["video"]).contiguous()
    return clips


def test_roll_swap_sees_timing_but_not_content_only_coupling():
    clips = _per_frame_clips()
    clips["audio"] = VideoIntoAudio()(clips["video"], clips["audio"], None)[1]
    timed = _row(swap_test(av_fn(VideoIntoAudio()), _diffusion(), clips, 0, swap="roll"), "audio<-video", 0)
    assert timed["swap"] == "roll" + str(clips["video"].shape[1] // 2)
    assert timed["x0_mse_true"] < 1e-6 and timed["x0_gain"] > 100  # the per-frame copy uses the timing
    clips["audio"] = ClipMeanIntoAudio()(clips["video"], clips["audio"], None)[1]
    untimed = swap_test(av_fn(ClipMeanIntoAudio()), _diffusion(), clips, 0, swap="roll")
    assert _row(untimed, "audio<-video", 0)["rel_change"] < 1e-6  # a clip-level copy ignores a shift...
    by_clip = swap_test(av_fn(ClipMeanIntoAudio()), _diffusion(), clips, 0, swap="clip")
    assert _row(by_clip, "audio<-video", 0)["x0_gain"] > 1  # ...but not another clip


def test_roll_swap_rejects_a_full_cycle_and_unknown_swaps():
    with pytest.raises(ValueError, match="multiple"):
        swap_test(av_fn(VideoIntoAudio()), _diffusion(), tiny_clips(), 0, swap="roll", roll_frames=0)
    with pytest.raises(ValueError, match="swap must be"):
        swap_test(av_fn(VideoIntoAudio()), _diffusion(), tiny_clips(), 0, swap="bogus")
