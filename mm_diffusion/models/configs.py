"""Named model configurations shared by tests, benchmarks, scripts and ``--config NAME``.

Each entry holds the published constructor keyword arguments (``MultimodalUNet(**cfg)`` or
``SuperResModel(**cfg)``). ``paper`` is the configuration of the published AIST++ / Landscape checkpoints
(``ssh_scripts/multimodal_train.sh``); ``sr_paper`` the published 64->256 SR model.
"""
from __future__ import annotations

import copy

MODEL_CONFIGS = {
    # The golden-fixture network: 4 frames of 16x16, 0.1 s of audio at 16 kHz. Fast enough for unit tests.
    "tiny": dict(
        video_size=[4, 3, 16, 16], audio_size=[1, 1600], model_channels=32, video_out_channels=3,
        audio_out_channels=1, num_res_blocks=1, cross_attention_resolutions=[2, 4], cross_attention_windows=[1, 2],
        cross_attention_shift=True, video_attention_resolutions=[2, 4], audio_attention_resolutions=[-1],
        video_type="2d+1d", audio_type="1d", dropout=0.0, channel_mult=(1, 2, 2), num_classes=None,
        use_checkpoint=False, use_fp16=False, num_heads=2, num_head_channels=16, num_heads_upsample=-1,
        use_scale_shift_norm=True, resblock_updown=True,
    ),
    # The benchmark's "small" network: 8 frames of 32x32 at 10 fps, 0.8 s of audio at 8 kHz.
    "small": dict(
        video_size=[8, 3, 32, 32], audio_size=[1, 6400], model_channels=64, video_out_channels=3,
        audio_out_channels=1, num_res_blocks=2, cross_attention_resolutions=[2, 4], cross_attention_windows=[1, 4],
        cross_attention_shift=True, video_attention_resolutions=[2, 4], audio_attention_resolutions=[-1],
        video_type="2d+1d", audio_type="1d", dropout=0.1, channel_mult=(1, 2, 3), num_classes=None,
        use_checkpoint=False, use_fp16=False, num_heads=4, num_head_channels=32, num_heads_upsample=-1,
        use_scale_shift_norm=True, resblock_updown=True,
    ),
    # The shipped demo model's network (mm_diffusion/assets/demo.pt; trained with --predict_xstart True, see
    # assets/MODEL_CARD.md): 8 frames of 32x32 at 10 fps, 0.8 s of audio at 4 kHz, 1.57M parameters.
    "demo": dict(
        video_size=[8, 3, 32, 32], audio_size=[1, 3200], model_channels=32, video_out_channels=3,
        audio_out_channels=1, num_res_blocks=1, cross_attention_resolutions=[2, 4], cross_attention_windows=[1, 4],
        cross_attention_shift=True, video_attention_resolutions=[4], audio_attention_resolutions=[-1],
        video_type="2d+1d", audio_type="1d", dropout=0.0, channel_mult=(1, 2, 2), num_classes=None,
        use_checkpoint=False, use_fp16=False, num_heads=2, num_head_channels=32, num_heads_upsample=-1,
        use_scale_shift_norm=True, resblock_updown=True,
    ),
    # The published network (16 frames of 64x64, 1.6 s of 16 kHz audio), 133.7M parameters.
    "paper": dict(
        video_size=[16, 3, 64, 64], audio_size=[1, 25600], model_channels=128, video_out_channels=3,
        audio_out_channels=1, num_res_blocks=2, cross_attention_resolutions=[2, 4, 8],
        cross_attention_windows=[1, 4, 8], cross_attention_shift=True, video_attention_resolutions=[2, 4, 8],
        audio_attention_resolutions=[-1], video_type="2d+1d", audio_type="1d", dropout=0.1,
        channel_mult=(1, 2, 3, 4), num_classes=None, use_checkpoint=False, use_fp16=False, num_heads=4,
        num_head_channels=64, num_heads_upsample=-1, use_scale_shift_norm=True, resblock_updown=True,
    ),
}

SR_CONFIGS = {
    # A small SR network for tests: 32x32 -> 64x64 ... any size divisible by 8.
    "sr_tiny": dict(
        image_size=64, in_channels=3, model_channels=32, out_channels=6, num_res_blocks=1,
        attention_resolutions=(8,), dropout=0.0, channel_mult=(1, 2, 2, 2), num_classes=None, use_checkpoint=False,
        num_heads=2, num_head_channels=-1, num_heads_upsample=-1, use_scale_shift_norm=True, resblock_updown=True,
        use_fp16=False,
    ),
    # The published 64->256 SR model (learn_sigma, so 6 output channels), 311M parameters.
    "sr_paper": dict(
        image_size=256, in_channels=3, model_channels=192, out_channels=6, num_res_blocks=2,
        attention_resolutions=(8, 16, 32), dropout=0.0, channel_mult=(1, 1, 2, 2, 4, 4), num_classes=None,
        use_checkpoint=False, num_heads=4, num_head_channels=-1, num_heads_upsample=-1, use_scale_shift_norm=True,
        resblock_updown=True, use_fp16=False,
    ),
}


def model_config(name: str, **overrides) -> dict:
    """A copy of the named coupled U-Net configuration with ``overrides`` applied."""
    if name not in MODEL_CONFIGS:
        raise ValueError(f"unknown model config {name!r}; choose one of {sorted(MODEL_CONFIGS)}")
    cfg = copy.deepcopy(MODEL_CONFIGS[name])
    unknown = set(overrides) - set(cfg) - {"middle_cross_attention", "max_dilation_exponent"}
    if unknown:
        raise ValueError(f"unknown MultimodalUNet arguments {sorted(unknown)}")
    cfg.update(overrides)
    return cfg


def sr_config(name: str, **overrides) -> dict:
    """A copy of the named super-resolution configuration with ``overrides`` applied."""
    if name not in SR_CONFIGS:
        raise ValueError(f"unknown SR config {name!r}; choose one of {sorted(SR_CONFIGS)}")
    cfg = copy.deepcopy(SR_CONFIGS[name])
    cfg.update(overrides)
    return cfg


def create_model(name: str, **overrides):
    """``MultimodalUNet`` built from a named configuration."""
    from .multimodal_unet import MultimodalUNet

    return MultimodalUNet(**model_config(name, **overrides))


def create_sr_model(name: str, **overrides):
    """``SuperResModel`` built from a named configuration."""
    from .sr_unet import SuperResModel

    return SuperResModel(**sr_config(name, **overrides))
