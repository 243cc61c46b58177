"""Conditioning settings left open by the flags: --condition_mode auto, an unset --guidance_scale and --steps,
and the checkpoint JSON's recommended_sampling entry that fills them in (demo and conditional jobs)."""
import argparse
import json
import os

import pytest

from mm_diffusion import audio2video
from mm_diffusion.demo import run as demo_run
from mm_diffusion.runs.files import write_json
from mm_diffusion.runs.locate import ASSETS_DIR, RECOMMENDED_SAMPLING_KEY, find_recommended_sampling
from mm_diffusion.sampling.args import parse_sample_args
from mm_diffusion.sampling.condition_settings import (resolve_condition_mode, resolve_guidance_scale,
                                                     resolve_joint_guidance_scale)
from mm_diffusion.testing.checkpoints import write_random_checkpoint


def _checkpoint(tmp_path, name="run", recommended=None, independent_t_prob=None):
    flags = {} if independent_t_prob is None else {"independent_t_prob": independent_t_prob}
    ckpt = write_random_checkpoint(str(tmp_path / name / "model000002.pt"), "tiny", flags=flags)
    if recommended is not None:
        path = tmp_path / name / "config.json"
        doc = json.loads(path.read_text())
        doc[RECOMMENDED_SAMPLING_KEY] = recommended
        write_json(str(path), doc, indent=1)
    return ckpt


def test_auto_condition_mode_follows_the_run_flags():
    assert resolve_condition_mode("auto", 0.5) == "clean"
    assert resolve_condition_mode("auto", 0.0) == "replacement"
    assert resolve_condition_mode("auto", None) == "replacement"  # a published checkpoint: no run flags
    assert resolve_condition_mode("clean", 0.0) == "clean"  # an explicit choice is kept
    assert resolve_condition_mode("replacement", 1.0) == "replacement"
    assert resolve_condition_mode("auto", 0.5, classifier_scale=3.0) == "replacement"  # gradient guidance asked for
    assert resolve_condition_mode("clean", 0.5, classifier_scale=3.0) == "clean"  # explicit: the sampler refuses it
    with pytest.raises(ValueError, match="condition_mode"):
        resolve_condition_mode("soft", 0.5)


def test_unset_guidance_takes_the_recommendation_only_under_clean():
    rec = {"guidance_scale": 2.0}
    assert resolve_guidance_scale(None, "clean", rec) == (2.0, "checkpoint")
    assert resolve_guidance_scale(None, "clean", {}) == (1.0, "default")
    assert resolve_guidance_scale(None, "replacement", rec) == (1.0, "default")  # published method: never guided
    assert resolve_guidance_scale(3.0, "clean", rec) == (3.0, "flag")  # a flag wins
    assert resolve_guidance_scale(1.0, "replacement", rec) == (1.0, "flag")
    with pytest.raises(ValueError, match="condition_mode clean"):
        resolve_guidance_scale(2.0, "replacement", rec)
    with pytest.raises(ValueError, match=">= 0"):
        resolve_guidance_scale(-1.0, "clean", rec)


def test_recommended_sampling_is_read_and_checked(tmp_path):
    assert find_recommended_sampling(_checkpoint(tmp_path, "none")) == {}  # a run's own config.json
    assert find_recommended_sampling(str(tmp_path / "nowhere" / "x.pt")) == {}
    ok = _checkpoint(tmp_path, "ok", {"steps": 7, "guidance_scale": 1.5})
    got = find_recommended_sampling(ok)
    assert got == {"steps": 7, "guidance_scale": 1.5} and isinstance(got["steps"], int)
    for name, bad, match in (("k", {"stepz": 3}, "unknown keys"), ("s", {"steps": 0}, "steps"),
                             ("f", {"steps": 2.5}, "integer"), ("g", {"guidance_scale": "2"}, "guidance_scale"),
                             ("b", {"steps": True}, "steps"), ("o", [1, 2], "object"),
                             ("j", {"joint_guidance_scale": -1}, "joint_guidance_scale")):
        with pytest.raises(ValueError, match=match):
            find_recommended_sampling(_checkpoint(tmp_path, name, bad))


def test_shipped_demo_model_recommends_cross_modal_guidance():
    # guidance 2: what its audio-to-video sync bar needs; joint guidance 2: its unconditional colour-pitch bar
    # (model card); the step count stays the default 20
    assert find_recommended_sampling(os.path.join(ASSETS_DIR, "demo.pt")) == {"guidance_scale": 2.0,
                                                                             "joint_guidance_scale": 2.0}
    args = demo_run.create_parser().parse_args([])
    ckpt = demo_run.resolve_checkpoint("")
    info = demo_run.load_demo_model(ckpt)[2]
    assert demo_run.resolve_sampling(args, ckpt, info) == {"steps": "default", "guidance_scale": "checkpoint",
                                                           "joint_guidance_scale": "checkpoint"}
    assert (args.steps, args.guidance_scale, args.condition_mode) == (demo_run.DEFAULT_STEPS, 2.0, "clean")
    assert args.joint_guidance_scale == 2.0


def _demo_args(ckpt, *extra):
    return demo_run.create_parser().parse_args(["--checkpoint", ckpt, *extra])


def test_demo_fills_unset_steps_and_guidance_from_the_checkpoint(tmp_path):
    ckpt = _checkpoint(tmp_path, "clean", {"steps": 7, "guidance_scale": 1.5, "joint_guidance_scale": 2.5},
                       independent_t_prob=0.5)
    info = {"independent_t_prob": 0.5}
    args = _demo_args(ckpt)
    assert args.steps is None and args.guidance_scale is None and args.joint_guidance_scale is None
    assert demo_run.resolve_sampling(args, ckpt, info) == {"steps": "checkpoint", "guidance_scale": "checkpoint",
                                                           "joint_guidance_scale": "checkpoint"}
    assert (args.steps, args.guidance_scale, args.condition_mode, args.joint_guidance_scale) == (7, 1.5, "clean", 2.5)

    args = _demo_args(ckpt, "--steps", "3", "--guidance_scale", "1", "--joint_guidance_scale", "1")
    assert demo_run.resolve_sampling(args, ckpt, info) == {"steps": "flag", "guidance_scale": "flag",
                                                           "joint_guidance_scale": "flag"}
    assert (args.steps, args.guidance_scale, args.joint_guidance_scale) == (3, 1.0, 1.0)

    # replacement (asked for, or auto on a model without per-modality timesteps): steps still recommended,
    # guidance never
    args = _demo_args(ckpt, "--condition_mode", "replacement")
    assert demo_run.resolve_sampling(args, ckpt, info) == {"steps": "checkpoint", "guidance_scale": "default",
                                                           "joint_guidance_scale": "checkpoint"}
    assert (args.steps, args.guidance_scale) == (7, 1.0)
    plain = _checkpoint(tmp_path, "plain")
    args = _demo_args(plain)
    assert demo_run.resolve_sampling(args, plain, {}) == {"steps": "default", "guidance_scale": "default",
                                                          "joint_guidance_scale": "default"}
    assert (args.steps, args.guidance_scale, args.condition_mode) == (demo_run.DEFAULT_STEPS, 1.0, "replacement")
    assert args.joint_guidance_scale == 1.0
    # a model without per-modality timesteps: a recommendation is ignored, a flag is refused
    rec_plain = _checkpoint(tmp_path, "rec_plain", {"joint_guidance_scale": 2.0})
    args = _demo_args(rec_plain)
    demo_run.resolve_sampling(args, rec_plain, {})
    assert args.joint_guidance_scale == 1.0
    with pytest.raises(ValueError, match="independent_t_prob"):
        demo_run.resolve_sampling(_demo_args(plain, "--joint_guidance_scale", "2"), plain, {})


def test_demo_refuses_bad_counts_but_accepts_unset_steps():
    args = argparse.Namespace(**{**demo_run.demo_defaults(), "steps": None})
    assert demo_run.check_args(args) is args
    with pytest.raises(ValueError, match="--steps"):
        demo_run.check_args(argparse.Namespace(**{**demo_run.demo_defaults(), "steps": 0}))


def test_conditional_job_defaults_are_auto_and_unset():
    args = parse_sample_args("audio2video", [])
    assert args.condition_mode == "auto" and args.guidance_scale is None
    with pytest.raises(SystemExit):
        parse_sample_args("video2audio", ["--condition_mode", "soft"])


def test_audio_to_video_job_conditions_clean_with_the_recommended_guidance(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path, "rec", {"guidance_scale": 2.0}, independent_t_prob=0.5)
    out = tmp_path / "a2v"
    audio2video.main(["--multimodal_model_path", ckpt, "--ref_path", "synthetic:2", "--output_dir", str(out),
                      "--all_save_num", "2", "--batch_size", "2", "--steps", "1", "--progress", "False"])
    log = capsys.readouterr()
    text = log.out + log.err
    assert "conditioning clean (--condition_mode auto), guidance scale 2 (checkpoint)" in text
    assert len(list(out.rglob("*.mp4"))) >= 2
    with pytest.raises(ValueError, match="condition_mode clean"):  # guidance needs clean conditioning
        audio2video.main(["--multimodal_model_path", ckpt, "--ref_path", "synthetic:2", "--output_dir",
                          str(tmp_path / "bad"), "--all_save_num", "1", "--batch_size", "1", "--steps", "1",
                          "--progress", "False", "--condition_mode", "replacement", "--guidance_scale", "2"])


def test_joint_guidance_resolution():
    rec = {"joint_guidance_scale": 2.0}
    assert resolve_joint_guidance_scale(None, 0.5, rec) == (2.0, "checkpoint")
    assert resolve_joint_guidance_scale(None, 0.5, {}) == (1.0, "default")
    assert resolve_joint_guidance_scale(None, 0.0, rec) == (1.0, "default")  # published-style: never guided
    assert resolve_joint_guidance_scale(3.0, 0.5, rec) == (3.0, "flag")
    assert resolve_joint_guidance_scale(1.0, None, rec) == (1.0, "flag")
    with pytest.raises(ValueError, match="independent_t_prob"):
        resolve_joint_guidance_scale(2.0, 0.0)
    with pytest.raises(ValueError, match=">= 0"):
        resolve_joint_guidance_scale(-1.0, 0.5)


def test_sample_job_applies_the_recommended_joint_guidance(tmp_path, capsys):
    from mm_diffusion import sample as sample_job

    ckpt = _checkpoint(tmp_path, "jg", {"joint_guidance_scale": 2.0}, independent_t_prob=0.5)
    argv = ["--multimodal_model_path", ckpt, "--all_save_num", "1", "--batch_size", "1", "--steps", "1",
            "--progress", "False"]
    sample_job.main(argv + ["--output_dir", str(tmp_path / "a")])
    text = "".join(capsys.readouterr())
    assert "joint guidance (audio by video) 2 (checkpoint)" in text
    assert list((tmp_path / "a").rglob("*.mp4"))
    plain = _checkpoint(tmp_path, "plain_jg")
    with pytest.raises(ValueError, match="independent_t_prob"):
        sample_job.main(["--multimodal_model_path", plain, "--all_save_num", "1", "--batch_size", "1", "--steps", "1",
                         "--progress", "False", "--joint_guidance_scale", "2", "--output_dir", str(tmp_path / "b")])


def test_conditional_job_over_two_checkpoints_keeps_its_reference_clips(tmp_path):
    # regression: the per-checkpoint guidance resolution must not clobber the job's reference-clip source
    first = _checkpoint(tmp_path, "one", {"guidance_scale": 2.0}, independent_t_prob=0.5)
    second = write_random_checkpoint(str(tmp_path / "one" / "model000004.pt"), "tiny", seed=1,
                                     flags={"independent_t_prob": 0.5}, write_config=False)
    out = tmp_path / "a2v2"
    audio2video.main(["--multimodal_model_path", f"{first},{second}", "--ref_path", "synthetic:2", "--output_dir",
                      str(out), "--all_save_num", "1", "--batch_size", "1", "--steps", "1", "--progress", "False"])
    assert {p.name for p in out.iterdir()} >= {"model000002.pt", "model000004.pt"}
    for name in ("model000002.pt", "model000004.pt"):
        assert list((out / name).rglob("*.mp4")), name
