"""mm_diffusion.cli.flags: original flag names, parsing, --config, model/diffusion factories."""
import argparse

import pytest
import torch

from mm_diffusion.models.configs import MODEL_CONFIGS, SR_CONFIGS, create_model, create_sr_model
from mm_diffusion.cli import flags


def _parser(sr=False):
    p = argparse.ArgumentParser()
    flags.add_dict_to_argparser(p, flags.sr_model_and_diffusion_defaults() if sr else flags.model_and_diffusion_defaults())
    return p


def _shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("text,value", [("True", True), ("false", False), ("1", True), ("0", False),
                                        ("yes", True), ("N", False)])
def test_bool_flags(text, value):
    args = _parser().parse_args(["--use_fp16", text])
    assert args.use_fp16 is value


def test_bad_bool_and_list_exit_with_message(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["--learn_sigma", "maybe"])
    assert "boolean" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        _parser().parse_args(["--video_size", "16,3,x,64"])
    assert "'x' is not a number" in capsys.readouterr().err


def test_comma_lists_and_types():
    args = _parser().parse_args(["--video_size", "8,3,32,32", "--audio_size", "1,6400",
                                 "--cross_attention_windows", "1,4", "--channel_mult", "1,2,3",
                                 "--num_channels", "64", "--dropout", "0.25"])
    assert args.video_size == [8, 3, 32, 32] and args.audio_size == [1, 6400]
    assert args.cross_attention_windows == [1, 4] and args.channel_mult == [1, 2, 3]
    assert args.num_channels == 64 and isinstance(args.num_channels, int) and args.dropout == 0.25
    assert flags.number_list("0.9999,0.999") == [0.9999, 0.999]
    assert flags.number_list("") == []


def test_defaults_build_the_published_network():
    model, diffusion = flags.create_model_and_diffusion(_parser().parse_args([]))
    assert _shapes(model) == _shapes(create_model("paper"))
    assert diffusion.num_timesteps == 1000


@pytest.mark.parametrize("name", sorted(MODEL_CONFIGS))
def test_config_flag_matches_registry(name):
    args = flags.parse_args(_parser(), ["--config", name])
    assert flags.model_kwargs_from_args(args) == {**MODEL_CONFIGS[name], "channel_mult": list(MODEL_CONFIGS[name]["channel_mult"])}


def test_config_then_explicit_flags_override_and_parser_is_reusable():
    p = _parser()
    args = flags.parse_args(p, ["--config", "tiny", "--num_channels", "64", "--learn_sigma", "True"])
    kw = flags.model_kwargs_from_args(args)
    assert kw["model_channels"] == 64 and kw["video_size"] == [4, 3, 16, 16]
    assert kw["video_out_channels"] == 6 and kw["audio_out_channels"] == 2   # learn_sigma doubles
    assert flags.parse_args(p, []).num_channels == 128                       # config not sticky


def test_unknown_config_lists_valid_names(capsys):
    with pytest.raises(SystemExit):
        flags.parse_args(_parser(), ["--config", "huge"])
    err = capsys.readouterr().err
    assert "huge" in err and "tiny" in err and "sr_paper" in err


def test_sr_defaults_and_config():
    p = argparse.ArgumentParser()
    flags.add_dict_to_argparser(p, flags.model_and_diffusion_defaults())
    flags.add_dict_to_argparser(p, flags.sr_model_and_diffusion_defaults())   # shared keys skipped
    args = flags.parse_args(p, [])
    assert args.large_size == 256 and args.small_size == 64 and args.sr_learn_sigma is True
    kw = flags.sr_model_kwargs_from_args(args)
    assert kw == {**SR_CONFIGS["sr_paper"], "attention_resolutions": [8, 16, 32],
                  "channel_mult": [1, 1, 2, 2, 4, 4]}
    tiny = flags.parse_args(p, ["--config", "sr_tiny"])
    model, diffusion = flags.create_sr_model_and_diffusion(tiny)
    assert _shapes(model) == _shapes(create_sr_model("sr_tiny"))
    out = model(torch.zeros(1, 3, 64, 64), torch.tensor([3]), low_res=torch.zeros(1, 3, 16, 16))
    assert out.shape == (1, 6, 64, 64)


def test_mapping_args_and_diffusion_kwargs():
    kw = flags.diffusion_kwargs_from_args({"diffusion_steps": 50, "noise_schedule": "cosine", "learn_sigma": "1"})
    assert kw["steps"] == 50 and kw["noise_schedule"] == "cosine" and kw["learn_sigma"] is True
    assert kw["timestep_respacing"] == ""
    sr = flags.diffusion_kwargs_from_args({"sr_diffusion_steps": 20, "sr_timestep_respacing": "ddim5"}, sr=True)
    assert sr["steps"] == 20 and sr["timestep_respacing"] == "ddim5" and sr["learn_sigma"] is True


def test_bad_values_raise_clear_errors():
    with pytest.raises(ValueError, match="video_size needs 4"):
        flags.model_kwargs_from_args({"video_size": [16, 3, 64]})
    with pytest.raises(ValueError, match="class_cond"):
        flags.model_kwargs_from_args({"class_cond": True})
    with pytest.raises(ValueError, match="no default for frames of 48x48"):
        flags.model_kwargs_from_args({"video_size": [4, 3, 48, 48]})
    with pytest.raises(ValueError, match="small_size"):
        flags.sr_model_kwargs_from_args({"small_size": 512})


def test_infer_audio_fps():
    assert flags.infer_audio_fps([16, 3, 64, 64], [1, 25600], 10) == 16000
    assert flags.infer_audio_fps([8, 3, 32, 32], [1, 6400], 10) == 8000
    assert flags.infer_audio_fps([4, 3, 16, 16], [1, 1600], 10) == 4000
    with pytest.raises(ValueError, match="--audio_fps"):
        flags.infer_audio_fps([3, 3, 16, 16], [1, 1000], 10)


def _lists(kwargs):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}


@pytest.mark.parametrize("name", sorted(MODEL_CONFIGS) + sorted(SR_CONFIGS))
def test_every_registry_config_round_trips_through_its_flags(name):
    values = flags.config_to_flags(name)
    if name in MODEL_CONFIGS:
        assert _lists(flags.model_kwargs_from_args(values)) == _lists(MODEL_CONFIGS[name])
    else:
        assert _lists(flags.sr_model_kwargs_from_args(values)) == _lists(SR_CONFIGS[name])


def test_default_flags_are_the_published_configs():
    assert _lists(flags.model_kwargs_from_args(flags.model_defaults())) == _lists(MODEL_CONFIGS["paper"])
    assert _lists(flags.sr_model_kwargs_from_args(flags.sr_model_defaults())) == _lists(SR_CONFIGS["sr_paper"])


def test_flag_builder_job_options_bare_bools_types_choices_helps():
    import argparse

    parser = flags.add_dict_to_argparser(
        argparse.ArgumentParser(), {"no_progress": False, "fad_scale": None, "protocol": "a", "out": "x"},
        helps={"out": "output folder"}, types={"fad_scale": float}, choices={"protocol": ("a", "b")})
    args = parser.parse_args(["--no_progress", "--fad_scale", "2.5"])
    assert args.no_progress is True and args.fad_scale == 2.5 and args.protocol == "a"
    assert parser.parse_args(["--no_progress", "False"]).no_progress is False
    assert parser.parse_args([]).fad_scale is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--protocol", "c"])
    assert "output folder (default: 'x')" in parser.format_help()
