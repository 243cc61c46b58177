"""Command-line flags shared by the train / sample / super-resolution jobs.

Flags come from plain *defaults dicts* whose keys are the original MM-Diffusion flag names, so the
published shell scripts keep working (``--num_channels 128 --cross_attention_windows 1,4,8 ...``).

Public API (stable; the jobs import it):

``model_and_diffusion_defaults() -> dict``
    Coupled U-Net + diffusion flags with their defaults (the published 64x64 network).
``sr_model_and_diffusion_defaults() -> dict``
    Super-resolution U-Net + diffusion flags (``sr_`` prefixed as in the original; defaults are the
    published 64->256 model).
``add_dict_to_argparser(parser, defaults, *, helps=None, types=None, choices=None)``
    One ``--key`` per entry, for every job (train, sample, SR, evaluate, demo). Types follow the default: bool ->
    ``True/False/1/0/yes/no`` (bare ``--flag``: True); int; float;
    str; ``None`` -> str (``"None"`` or ``""`` stay ``None``); list/tuple -> comma list of numbers
    (``"16,3,64,64"`` -> ``[16, 3, 64, 64]``, ``""`` -> ``[]``). A flag the parser already has is
    skipped (the first dict wins), so dicts that share keys (``use_fp16``, ``noise_schedule``) can
    be merged into one parser. A job passes its own help texts, the types of its None-default flags and
    any choices.
``add_config_flag(parser)`` / ``parse_args(parser, argv=None)``
    ``--config NAME`` starts from a registry configuration (``tiny``, ``small``, ``demo``, ``paper``,
    ``sr_tiny``, ``sr_paper``): its values become the defaults, explicit flags still override them.
``create_model_and_diffusion(args) -> (MultimodalUNet, SpacedDiffusion)``
``create_sr_model_and_diffusion(args) -> (SuperResModel, SpacedDiffusion)``
    ``args``: an ``argparse.Namespace`` or a mapping holding (at least) the keys of the matching
    defaults dict; missing keys take their defaults.
``model_kwargs_from_args(args) -> dict`` / ``sr_model_kwargs_from_args(args) -> dict``
    The constructor keyword arguments those factories use (JSON-friendly).
``diffusion_kwargs_from_args(args, sr=False) -> dict``
    Keyword arguments of :func:`mm_diffusion.diffusion.create_gaussian_diffusion`.
``config_to_flags(name) -> dict``
    A registry configuration expressed as flag values.
``str2bool(text)``, ``number_list(text)``, ``infer_audio_fps(video_size, audio_size, video_fps)``
    The parsers and the audio-rate helper (``L * video_fps / F``: the audio as long as the video).

Flag meanings that differ from the keyword names: ``num_channels`` -> ``model_channels``;
``learn_sigma`` doubles the output channels (``video_out_channels=6, audio_out_channels=2``);
``channel_mult=""`` picks guided-diffusion's multipliers for the frame size (64 -> 1,2,3,4, ...);
``sr_attention_resolutions`` are downsampling factors (8,16,32 = attention at 32x32, 16x16, 8x8 of a
256x256 image), as the published SR model uses them.
"""
from __future__ import annotations

import argparse
import copy
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .flag_help import describe

__all__ = [
    "str2bool",
    "number_list",
    "model_defaults",
    "model_and_diffusion_defaults",
    "sr_model_defaults",
    "sr_model_and_diffusion_defaults",
    "add_dict_to_argparser",
    "add_config_flag",
    "parse_args",
    "args_to_dict",
    "config_to_flags",
    "model_kwargs_from_args",
    "sr_model_kwargs_from_args",
    "diffusion_kwargs_from_args",
    "create_model_and_diffusion",
    "create_sr_model_and_diffusion",
    "infer_audio_fps",
    "run_rates",
]

ArgsLike = Union[argparse.Namespace, Mapping[str, Any]]

_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


# ----------------------------------------------------------------------------------------------
# value parsers
# ----------------------------------------------------------------------------------------------
def str2bool(text: Union[str, bool, int]) -> bool:
    """``"True"/"False"/"1"/"0"/"yes"/"no"`` (any case) -> bool; ``ArgumentTypeError`` otherwise."""
    if isinstance(text, bool):
        return text
    if isinstance(text, int) and text in (0, 1):
        return bool(text)
    value = str(text).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (True/False/1/0/yes/no), got {text!r}")


def _number(token: str) -> Union[int, float]:
    try:
        return int(token)
    except ValueError:
        return float(token)


def number_list(text: Union[str, Sequence[Any], int, float, None]) -> List[Union[int, float]]:
    """``"16,3,64,64"`` -> ``[16, 3, 64, 64]``; ``"0.9999,0.999"`` -> floats; ``""``/None -> ``[]``.

    Lists and tuples pass through (numbers kept, numeric strings converted). ``ArgumentTypeError``
    names the bad item.
    """
    if text is None:
        return []
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return [text]
    if isinstance(text, str):
        items = [t.strip() for t in text.replace(" ", ",").split(",") if t.strip() != ""]
    else:
        items = list(text)
    out: List[Union[int, float]] = []
    for item in items:
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            out.append(item)
            continue
        try:
            out.append(_number(str(item).strip()))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated list of numbers such as '16,3,64,64', got {text!r} "
                f"({item!r} is not a number)") from None
    return out


def _optional_str(text: str) -> Optional[str]:
    return None if text in ("", "None", "none") else text


# ----------------------------------------------------------------------------------------------
# defaults dicts (original flag names)
# ----------------------------------------------------------------------------------------------
def _diffusion_defaults() -> Dict[str, Any]:
    return dict(
        learn_sigma=False,
        diffusion_steps=1000,
        noise_schedule="linear",
        timestep_respacing="",
        use_kl=False,
        predict_xstart=False,
        rescale_timesteps=False,
        rescale_learned_sigmas=False,
        sigma_small=False,
    )


# The one rename table: flag name -> constructor keyword (``MultimodalUNet`` / ``SuperResModel``), in --help
# order. The defaults and --config NAME (:func:`config_to_flags`) are read through it from the registry.
MODEL_FLAGS = (
    ("video_size", "video_size"), ("audio_size", "audio_size"), ("num_channels", "model_channels"),
    ("num_res_blocks", "num_res_blocks"), ("num_heads", "num_heads"), ("num_heads_upsample", "num_heads_upsample"),
    ("num_head_channels", "num_head_channels"), ("cross_attention_resolutions", "cross_attention_resolutions"),
    ("cross_attention_windows", "cross_attention_windows"), ("cross_attention_shift", "cross_attention_shift"),
    ("video_attention_resolutions", "video_attention_resolutions"),
    ("audio_attention_resolutions", "audio_attention_resolutions"), ("channel_mult", "channel_mult"),
    ("dropout", "dropout"), ("class_cond", "num_classes"), ("use_checkpoint", "use_checkpoint"),
    ("use_scale_shift_norm", "use_scale_shift_norm"), ("resblock_updown", "resblock_updown"),
    ("use_fp16", "use_fp16"), ("video_type", "video_type"), ("audio_type", "audio_type"),
)
SR_FLAGS = (
    ("large_size", "image_size"), ("sr_num_channels", "model_channels"), ("sr_num_res_blocks", "num_res_blocks"),
    ("sr_num_heads", "num_heads"), ("sr_num_heads_upsample", "num_heads_upsample"),
    ("sr_num_head_channels", "num_head_channels"), ("sr_attention_resolutions", "attention_resolutions"),
    ("sr_channel_mult", "channel_mult"), ("sr_dropout", "dropout"), ("sr_class_cond", "num_classes"),
    ("sr_use_scale_shift_norm", "use_scale_shift_norm"), ("sr_resblock_updown", "resblock_updown"),
    ("use_checkpoint", "use_checkpoint"), ("use_fp16", "use_fp16"),
)


def _flag_value(keyword: str, value: Any) -> Any:
    if keyword == "num_classes":
        return value is not None  # class_cond
    return list(value) if isinstance(value, (list, tuple)) else value


def _config_flags(cfg: Mapping[str, Any], table) -> Dict[str, Any]:
    return {flag: _flag_value(keyword, cfg[keyword]) for flag, keyword in table}


def model_defaults() -> Dict[str, Any]:
    """Coupled U-Net flags; defaults are the published network (the registry's ``paper``), except
    ``channel_mult=[]``: guided-diffusion's multipliers for the frame size (the paper's for 64x64)."""
    from ..models.configs import MODEL_CONFIGS

    flags = _config_flags(MODEL_CONFIGS["paper"], MODEL_FLAGS)
    at = list(flags).index("class_cond") + 1  # --num_classes (0: from the class folders) follows --class_cond
    items = list({**flags, "channel_mult": []}.items())
    items = items[:at] + [("num_classes", 0)] + items[at:]
    # additions (off by default: the published network and data)
    return dict(items + [("cross_attention_position", False), ("data_scale", "")])


def model_and_diffusion_defaults() -> Dict[str, Any]:
    """:func:`model_defaults` plus the diffusion flags (``diffusion_steps``, ``noise_schedule``, ...)."""
    out = model_defaults()
    out.update(_diffusion_defaults())
    return out


def sr_model_defaults() -> Dict[str, Any]:
    """Super-resolution U-Net flags; defaults are the published 64->256 model (the registry's ``sr_paper``),
    except ``sr_channel_mult=[]`` (the multipliers for ``--large_size``, the paper's for 256)."""
    from ..models.configs import SR_CONFIGS

    cfg = SR_CONFIGS["sr_paper"]
    out = _config_flags(cfg, SR_FLAGS)
    out = {"large_size": out.pop("large_size"), "small_size": cfg["image_size"] // 4, **out, "sr_channel_mult": []}
    at = list(out).index("sr_class_cond") + 1  # --sr_num_classes follows --sr_class_cond
    items = list(out.items())
    return dict(items[:at] + [("sr_num_classes", 0)] + items[at:])


def sr_model_and_diffusion_defaults() -> Dict[str, Any]:
    """:func:`sr_model_defaults` plus the SR diffusion flags (``sr_learn_sigma``, ``sr_diffusion_steps``,
    ``sr_timestep_respacing`` and the shared ``noise_schedule``, ``use_kl``, ...)."""
    out = sr_model_defaults()
    diff = _diffusion_defaults()
    out["sr_learn_sigma"] = True
    out["sr_diffusion_steps"] = diff.pop("diffusion_steps")
    out["sr_timestep_respacing"] = diff.pop("timestep_respacing")
    diff.pop("learn_sigma")
    out.update(diff)
    return out


# ----------------------------------------------------------------------------------------------
# argparse
# ----------------------------------------------------------------------------------------------
def _existing_dests(parser: argparse.ArgumentParser) -> set:
    return {a.dest for a in parser._actions}  # noqa: SLF001 (argparse has no public accessor)


def add_dict_to_argparser(parser: argparse.ArgumentParser, defaults: Mapping[str, Any], *,
                          helps: Optional[Mapping[str, str]] = None, types: Optional[Mapping[str, Any]] = None,
                          choices: Optional[Mapping[str, Sequence[Any]]] = None) -> argparse.ArgumentParser:
    """Add ``--key`` for every entry of ``defaults`` (types from the default values, see the module doc); a
    boolean flag given bare (``--no_progress``) means True.

    ``helps``: a job's own explanations (else the shared FLAG_HELP table); ``types``: the type of flags whose
    default is None (else an optional string); ``choices``: allowed values. Keys the parser already has are
    left alone. Returns ``parser``.
    """
    have = _existing_dests(parser)
    helps, types, choices = helps or {}, types or {}, choices or {}
    for key, value in defaults.items():
        if key in have:
            continue
        extra: Dict[str, Any] = {}
        if isinstance(value, bool):
            kind: Any = str2bool
            meta = "BOOL"
            extra = dict(nargs="?", const=True)
        elif isinstance(value, (list, tuple)):
            kind, meta = number_list, "A,B,..."
            value = list(value)
        elif value is None:
            kind = types.get(key, _optional_str)
            meta = {int: "INT", float: "FLOAT"}.get(kind, "STR")
        elif isinstance(value, int):
            kind, meta = int, "INT"
        elif isinstance(value, float):
            kind, meta = float, "FLOAT"
        else:
            kind, meta = str, "STR"
        if key in choices:
            extra["choices"] = tuple(choices[key])
            meta = None
        text = f"{helps[key]} (default: {_show(value)})" if key in helps else describe(key, _show(value))
        parser.add_argument(f"--{key}", default=copy.deepcopy(value), type=kind, metavar=meta, help=text, **extra)
        have.add(key)
    return parser


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) if value else "''"
    return repr(value) if isinstance(value, str) else str(value)


def add_config_flag(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``--config NAME`` (a name from ``MODEL_CONFIGS`` or ``SR_CONFIGS``; ``""`` = flag defaults)."""
    if "config" not in _existing_dests(parser):
        from ..models.configs import MODEL_CONFIGS, SR_CONFIGS

        names = ", ".join(sorted(MODEL_CONFIGS) + sorted(SR_CONFIGS))
        parser.add_argument("--config", default="", metavar="NAME",
                            help=f"start from a named configuration ({names}); explicit flags override it")
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse ``argv`` honouring ``--config NAME``: the configuration's flag values become the defaults
    (only for flags the parser has), then explicit flags override them. Unknown config names exit with
    a message listing the valid ones (``parser.error``)."""
    add_config_flag(parser)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default="")
    known, _ = pre.parse_known_args(argv)
    if not known.config:
        return parser.parse_args(argv)
    try:
        values = config_to_flags(known.config)
    except ValueError as err:
        parser.error(str(err))
    have = _existing_dests(parser)
    values = {k: v for k, v in values.items() if k in have}
    saved = {k: parser.get_default(k) for k in values}
    parser.set_defaults(**values)
    try:
        return parser.parse_args(argv)
    finally:
        parser.set_defaults(**saved)  # the parser can be reused without the configuration


def args_to_dict(args: ArgsLike, keys) -> Dict[str, Any]:
    """``{key: args.key}`` for ``keys`` (works for a Namespace or a mapping)."""
    get = _getter(args)
    return {k: get(k) for k in keys}


# ----------------------------------------------------------------------------------------------
# registry configs <-> flags
# ----------------------------------------------------------------------------------------------
def config_to_flags(name: str) -> Dict[str, Any]:
    """The registry configuration ``name`` as flag values (``model_channels`` -> ``num_channels``, ...).

    Coupled configs also set ``learn_sigma`` (from the output channels) and ``audio_fps`` is left to
    :func:`infer_audio_fps`. SR configs set the ``sr_`` flags, ``large_size`` and ``small_size``
    (a quarter of ``large_size``, as 64 -> 256).
    """
    from ..models.configs import MODEL_CONFIGS, SR_CONFIGS

    if name in MODEL_CONFIGS:
        cfg = MODEL_CONFIGS[name]
        out = _config_flags(cfg, MODEL_FLAGS)
        del out["class_cond"]
        out["learn_sigma"] = cfg["video_out_channels"] == 2 * cfg["video_size"][1]
        return out
    if name in SR_CONFIGS:
        cfg = SR_CONFIGS[name]
        out = _config_flags(cfg, SR_FLAGS)
        del out["sr_class_cond"]
        out.update(small_size=cfg["image_size"] // 4, sr_learn_sigma=cfg["out_channels"] == 2 * cfg["in_channels"])
        return out
    raise ValueError(f"unknown --config {name!r}; choose one of {sorted(MODEL_CONFIGS) + sorted(SR_CONFIGS)}")


# ----------------------------------------------------------------------------------------------
# args -> constructor keyword arguments
# ----------------------------------------------------------------------------------------------
def _getter(args: ArgsLike):
    if isinstance(args, Mapping):
        return lambda k, d=None: args.get(k, d)
    return lambda k, d=None: getattr(args, k, d)


def _with_defaults(args: ArgsLike, defaults: Mapping[str, Any]):
    get = _getter(args)
    return lambda k: copy.deepcopy(defaults[k]) if get(k) is None and defaults.get(k) is not None else get(k)


def _int_list(value: Any, flag: str, length: Optional[int] = None) -> List[int]:
    try:
        items = number_list(value)
    except argparse.ArgumentTypeError as err:
        raise ValueError(f"--{flag}: {err}") from None
    if any(float(v) != int(v) for v in items):
        raise ValueError(f"--{flag} must hold integers, got {value!r}")
    out = [int(v) for v in items]
    if length is not None and len(out) != length:
        raise ValueError(f"--{flag} needs {length} comma-separated integers, got {value!r}")
    return out


def _channel_mult(value: Any, image_size: int, flag: str) -> Tuple[Union[int, float], ...]:
    items = number_list(value) if not isinstance(value, str) or value.strip() else []
    if items:
        return tuple(items)
    from ..models.sr_unet import default_channel_mult

    try:
        return tuple(default_channel_mult(int(image_size)))
    except ValueError:
        raise ValueError(f"--{flag} is empty and there is no default for frames of {image_size}x{image_size} "
                         f"(defaults exist for 32, 64, 128, 256, 512); pass e.g. --{flag} 1,2,2") from None


def _num_classes(get, prefix: str) -> Optional[int]:
    """``--{prefix}num_classes`` when ``--{prefix}class_cond True`` (training fills it in from the class
    folders of ``--data_dir``), else ``None``."""
    if not str2bool(get(prefix + "class_cond")):
        return None
    n = int(get(prefix + "num_classes") or 0)
    if n < 1:
        raise ValueError(f"--{prefix}class_cond True needs --{prefix}num_classes N >= 1 (training sets it from the "
                         f"class folders of --data_dir; sampling reads it from the run's config.json)")
    return n


def _from_table(get, defaults: Mapping[str, Any], table, special: Mapping[str, Any]) -> Dict[str, Any]:
    """Constructor keyword arguments read through a rename table: ``special[keyword]()`` where given, else the
    flag's value converted by the type of its default (bool, int, float, str, list of ints)."""
    out: Dict[str, Any] = {}
    for flag, keyword in table:
        if keyword in special:
            out[keyword] = special[keyword]()
            continue
        value, default = get(flag), defaults[flag]
        if isinstance(default, bool):
            out[keyword] = str2bool(value)
        elif isinstance(default, (list, tuple)):
            out[keyword] = _int_list(value, flag)
        elif isinstance(default, int):
            out[keyword] = int(value)
        elif isinstance(default, float):
            out[keyword] = float(value)
        else:
            out[keyword] = str(value)
    return out


def model_kwargs_from_args(args: ArgsLike) -> Dict[str, Any]:
    """``MultimodalUNet`` keyword arguments from coupled-model flags (see :func:`model_defaults`), read through
    :data:`MODEL_FLAGS`."""
    defaults = model_and_diffusion_defaults()
    get = _with_defaults(args, defaults)
    video_size = _int_list(get("video_size"), "video_size", 4)
    audio_size = _int_list(get("audio_size"), "audio_size", 2)
    kwargs = _from_table(get, defaults, MODEL_FLAGS, {
        "video_size": lambda: video_size, "audio_size": lambda: audio_size,
        "channel_mult": lambda: list(_channel_mult(get("channel_mult"), video_size[-1], "channel_mult")),
        "num_classes": lambda: _num_classes(get, "")})
    doubled = 2 if str2bool(get("learn_sigma")) else 1
    kwargs.update(video_out_channels=doubled * video_size[1], audio_out_channels=doubled * audio_size[0])
    if str2bool(get("cross_attention_position")):  # an addition: absent (the published network) unless on
        kwargs["cross_attention_position"] = True
    return kwargs


def sr_model_kwargs_from_args(args: ArgsLike) -> Dict[str, Any]:
    """``SuperResModel`` keyword arguments from SR flags (see :func:`sr_model_defaults`), read through
    :data:`SR_FLAGS`."""
    defaults = sr_model_and_diffusion_defaults()
    get = _with_defaults(args, defaults)
    large, small = int(get("large_size")), int(get("small_size"))
    if small <= 0 or large <= 0 or small > large:
        raise ValueError(f"need 0 < --small_size <= --large_size, got small_size={small}, large_size={large}")
    kwargs = _from_table(get, defaults, SR_FLAGS, {
        "image_size": lambda: large,
        "channel_mult": lambda: list(_channel_mult(get("sr_channel_mult"), large, "sr_channel_mult")),
        "num_classes": lambda: _num_classes(get, "sr_")})
    kwargs.update(in_channels=3, out_channels=6 if str2bool(get("sr_learn_sigma")) else 3)
    return kwargs


def diffusion_kwargs_from_args(args: ArgsLike, sr: bool = False) -> Dict[str, Any]:
    """``create_gaussian_diffusion`` keyword arguments; ``sr=True`` reads the ``sr_`` diffusion flags."""
    get = _with_defaults(args, sr_model_and_diffusion_defaults() if sr else model_and_diffusion_defaults())
    prefix = "sr_" if sr else ""
    steps = int(get(prefix + "diffusion_steps"))
    if steps < 1:
        raise ValueError(f"--{prefix}diffusion_steps must be >= 1, got {steps}")
    return dict(
        steps=steps,
        learn_sigma=str2bool(get(prefix + "learn_sigma")),
        sigma_small=str2bool(get("sigma_small")),
        noise_schedule=str(get("noise_schedule")),
        use_kl=str2bool(get("use_kl")),
        predict_xstart=str2bool(get("predict_xstart")),
        rescale_timesteps=str2bool(get("rescale_timesteps")),
        rescale_learned_sigmas=str2bool(get("rescale_learned_sigmas")),
        timestep_respacing=str(get(prefix + "timestep_respacing") or ""),
    )


def create_model_and_diffusion(args: ArgsLike):
    """``(MultimodalUNet, SpacedDiffusion)`` from coupled-model flags (Namespace or mapping)."""
    from ..diffusion import create_gaussian_diffusion
    from ..models import MultimodalUNet

    from ..diffusion.data_scale import parse_data_scale

    model = MultimodalUNet(**model_kwargs_from_args(args))
    diffusion = create_gaussian_diffusion(**diffusion_kwargs_from_args(args))
    diffusion.data_scale = parse_data_scale(_with_defaults(args, model_and_diffusion_defaults())("data_scale"))
    return model, diffusion


def create_sr_model_and_diffusion(args: ArgsLike):
    """``(SuperResModel, SpacedDiffusion)`` from SR flags (Namespace or mapping)."""
    from ..diffusion import create_gaussian_diffusion
    from ..models import SuperResModel

    model = SuperResModel(**sr_model_kwargs_from_args(args))
    return model, create_gaussian_diffusion(**diffusion_kwargs_from_args(args, sr=True))


def infer_audio_fps(video_size: Sequence[int], audio_size: Sequence[int], video_fps: float) -> int:
    """The audio rate that makes ``audio_size[-1]`` samples last as long as ``video_size[0]`` frames at
    ``video_fps``: ``L * video_fps / F`` (16 frames, 25600 samples, 10 fps -> 16000 Hz).
    ``ValueError`` if that is not a whole number of Hz."""
    frames, length = int(video_size[0]), int(audio_size[-1])
    if frames <= 0 or length <= 0 or video_fps <= 0:
        raise ValueError(f"need positive frames, audio length and fps, got {video_size}, {audio_size}, {video_fps}")
    rate = length * float(video_fps) / frames
    if abs(rate - round(rate)) > 1e-6:
        raise ValueError(f"audio of {length} samples over {frames} frames at {video_fps:g} fps is {rate:g} Hz, "
                         f"not a whole rate; pass --audio_fps explicitly")
    return int(round(rate))


def run_rates(saved: Mapping[str, Any]) -> Tuple[float, int]:
    """``(video_fps, audio_fps)`` of a run from its saved flags (a run's ``config.json`` ``args``): ``video_fps``
    (10 when absent) and ``audio_fps``, where 0 or absent means :func:`infer_audio_fps` of the clip sizes."""
    fps = float(saved.get("video_fps") or 10.0)
    video_size = number_list(saved.get("video_size"))
    audio_size = number_list(saved.get("audio_size"))
    return fps, int(saved.get("audio_fps") or 0) or infer_audio_fps(video_size, audio_size, fps)
