"""The coupled audio-video U-Net of MM-Diffusion, checkpoint-compatible with the published models.

Read top to bottom: the residual block, the block container, then the network. Public layouts are the
original's (``video: [N, F, C, H, W]``, ``audio: [N, C, L]``); inside, video is kept as ``[N, C, F, H, W]``
(one permute at entry and one at exit), which removes the per-layer re-layouts of the published code
without changing any parameter name or shape.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.utils.checkpoint as torch_checkpoint

from .attention import CrossModalAttention, SelfAttention, heads_for, spatial_attention, temporal_attention
from .convs import AUDIO_SCALE, VIDEO_SCALE, AudioConv, ResampleAV, VideoConv, resample_av
from .nn import GroupNorm32, check_groupnorm, compute_dtype, reduced_precision, timestep_embedding, zero_module

ShiftSpec = Union[None, int, Sequence[int]]


class ResBlock(nn.Module):
    """Residual block on both modalities, conditioned on the timestep embedding.

    ``video: [N, C, F, H, W]``, ``audio: [N, C, L]``, ``emb: [N, emb_channels]``. The embedding
    projection (``emb_layers``) is shared by the two modalities. ``resample="down"`` halves H, W and
    quarters L after the input convolution; ``"up"`` doubles H, W and multiplies L by 4.
    Optional self-attention after the residual sum: spatial then temporal for video, 1-D for audio.
    """

    def __init__(
        self,
        channels: int,
        emb_channels: int,
        dropout: float,
        out_channels: Optional[int] = None,
        video_type: str = "2d+1d",
        audio_type: str = "1d",
        audio_dilation: int = 1,
        use_scale_shift_norm: bool = False,
        resample: Optional[str] = None,
        video_attention: bool = False,
        audio_attention: bool = False,
        num_heads: int = 1,
    ):
        super().__init__()
        out = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.resample = resample
        self.video_in_layers = nn.Sequential(GroupNorm32(channels), nn.SiLU(), VideoConv(channels, out, 3, video_type))
        self.audio_in_layers = nn.Sequential(
            GroupNorm32(channels), nn.SiLU(), AudioConv(channels, out, 3, dilation=audio_dilation, conv_type=audio_type)
        )
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, 2 * out if use_scale_shift_norm else out))
        self.video_out_layers = nn.Sequential(
            GroupNorm32(out), nn.SiLU(), nn.Dropout(p=dropout), zero_module(VideoConv(out, out, 1, "3d"))
        )
        self.audio_out_layers = nn.Sequential(
            GroupNorm32(out), nn.SiLU(), nn.Dropout(p=dropout), zero_module(AudioConv(out, out, 1))
        )
        if out == channels:
            self.video_skip_connection = nn.Identity()
            self.audio_skip_connection = nn.Identity()
        else:
            self.video_skip_connection = VideoConv(channels, out, 1, "3d")
            self.audio_skip_connection = AudioConv(channels, out, 1)
        self.video_attention = video_attention
        self.audio_attention = audio_attention
        if video_attention:
            self.spatial_attention_block = SelfAttention(out, num_heads)
            self.temporal_attention_block = SelfAttention(out, num_heads)
        if audio_attention:
            self.audio_attention_block = SelfAttention(out, num_heads)

    def _modulate(self, h: torch.Tensor, layers: nn.Sequential, emb_out: torch.Tensor) -> torch.Tensor:
        """Apply the out-layers to ``h: [N, C, *]`` with the timestep embedding ``emb_out: [N, C or 2C]``."""
        emb_out = emb_out.reshape(*emb_out.shape, *([1] * (h.dim() - 2))).to(h.dtype)
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            return layers[1:](layers[0](h) * (1 + scale) + shift)
        return layers(h + emb_out)

    def forward(self, video: torch.Tensor, audio: torch.Tensor, emb):
        """``emb``: ``[N, emb_channels]`` shared by both modalities, or a pair ``(video_emb, audio_emb)``
        (per-modality timesteps): the shared ``emb_layers`` are then applied to each modality's own embedding."""
        vh, ah = resample_av(self.resample, self.video_in_layers(video), self.audio_in_layers(audio))
        video, audio = resample_av(self.resample, video, audio)
        if isinstance(emb, tuple):
            v_emb, a_emb = self.emb_layers(emb[0]), self.emb_layers(emb[1])
        else:
            v_emb = a_emb = self.emb_layers(emb)
        video = self.video_skip_connection(video) + self._modulate(vh, self.video_out_layers, v_emb)
        audio = self.audio_skip_connection(audio) + self._modulate(ah, self.audio_out_layers, a_emb)
        if self.video_attention:
            video = temporal_attention(self.temporal_attention_block, spatial_attention(self.spatial_attention_block, video))
        if self.audio_attention:
            audio = self.audio_attention_block(audio)
        return video, audio


class InitialBlock(nn.Module):
    """Input convolutions: ``video [N, C_in, F, H, W] -> [N, ch, F, H, W]`` (2d+1d, k=3) and
    ``audio [N, C_in, L] -> [N, ch, L]`` (k=3)."""

    def __init__(self, video_in_channels: int, audio_in_channels: int, channels: int):
        super().__init__()
        self.video_conv = VideoConv(video_in_channels, channels, 3, "2d+1d")
        self.audio_conv = AudioConv(audio_in_channels, channels, 3)

    def forward(self, video, audio):
        return self.video_conv(video), self.audio_conv(audio)


class BlockSequence(nn.ModuleList):
    """A U-Net stage: layers applied in order to ``(video, audio)``. Residual blocks get the timestep
    embedding, shifted RS-MMA blocks take the next offset from ``shifts``. With ``use_checkpoint`` every
    residual and cross-attention block recomputes its activations in backward, with the SAME offset."""

    def forward(self, video, audio, emb, shifts: Iterator[int], use_checkpoint: bool = False):
        for layer in self:
            if isinstance(layer, ResBlock):
                args = (video, audio, emb)
            elif isinstance(layer, CrossModalAttention):
                args = (video, audio, next(shifts) if layer.window_shift else 0)
            else:
                args = (video, audio)
            if use_checkpoint and torch.is_grad_enabled() and not isinstance(layer, (InitialBlock, ResampleAV)):
                video, audio = torch_checkpoint.checkpoint(layer, *args, use_reentrant=False)
            else:
                video, audio = layer(*args)
        return video, audio


def _number_list(values, name: str) -> list:
    """A list of numbers from a list/tuple or a comma string ("1,2,3"); whole numbers become ints."""
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of numbers, got {values!r}") from None
    return [int(x) if x.is_integer() else x for x in numbers]


class MultimodalUNet(nn.Module):
    """The coupled U-Net: a video sub-net (2D+1D convolutions, spatial and temporal self-attention) and an
    audio sub-net (dilated 1-D convolutions) joined by RS-MMA blocks.

    The constructor takes the published keyword arguments and builds exactly the published network (same
    ``state_dict`` keys and shapes, same outputs), so its checkpoints load with ``strict=True``.

    Extra options (not in the original):
      - ``middle_cross_attention``: ``None`` (default) adds a full-window, unshifted RS-MMA block to the
        middle stage exactly when ``cross_attention_windows == [1, 4, 8]``, as the original does; ``True`` /
        ``False`` force it on / off.
      - ``max_dilation_exponent`` (10): audio residual block ``i`` uses dilation ``2 ** (i % 10)``, as published.
      - ``resblock_updown=False``: the published code crashes; here the output side upsamples with
        parameter-free nearest-neighbour layers (the input side keeps its residual down-blocks, as published).
      - ``num_classes``: a label embedding (``label_emb``) added to the timestep embedding.
      - ``cross_attention_position``: RS-MMA blocks with learned relative temporal position biases (new
        zero-initialised parameters ``*.v2a_position`` / ``*.a2v_position``; off = the published blocks).
      - per-modality timesteps: ``forward`` accepts ``timesteps={"video": [N], "audio": [N]}``.

    ``forward(video [N, F, C, H, W], audio [N, C, L], timesteps [N], label=None, *, shift=None,
    generator=None) -> (video_out [N, F, C_out, H, W], audio_out [N, C_out, L])``.
    """

    def __init__(
        self,
        video_size,
        audio_size,
        model_channels,
        video_out_channels,
        audio_out_channels,
        num_res_blocks,
        cross_attention_resolutions,
        cross_attention_windows,
        cross_attention_shift,
        video_attention_resolutions,
        audio_attention_resolutions,
        video_type="2d+1d",
        audio_type="1d",
        dropout=0.0,
        channel_mult=(1, 2, 3, 4),
        num_classes=None,
        use_checkpoint=False,
        use_fp16=False,
        num_heads=1,
        num_head_channels=-1,
        num_heads_upsample=-1,
        use_scale_shift_norm=False,
        resblock_updown=True,
        middle_cross_attention: Optional[bool] = None,
        max_dilation_exponent: int = 10,
        cross_attention_position: bool = False,
    ):
        super().__init__()
        self.video_size = _number_list(video_size, "video_size")
        self.audio_size = _number_list(audio_size, "audio_size")
        self.channel_mult = tuple(_number_list(channel_mult, "channel_mult"))
        self.cross_attention_resolutions = _number_list(cross_attention_resolutions, "cross_attention_resolutions")
        self.cross_attention_windows = _number_list(cross_attention_windows, "cross_attention_windows")
        self.video_attention_resolutions = _number_list(video_attention_resolutions, "video_attention_resolutions")
        self.audio_attention_resolutions = _number_list(audio_attention_resolutions, "audio_attention_resolutions")
        self.cross_attention_shift = bool(cross_attention_shift)
        self.cross_attention_position = bool(cross_attention_position)
        self.model_channels = model_channels
        self.num_res_blocks = num_res_blocks
        self.num_classes = num_classes
        self.use_checkpoint = use_checkpoint
        self.use_fp16 = use_fp16
        self.num_heads = num_heads
        self.num_head_channels = num_head_channels
        self.num_heads_upsample = num_heads if num_heads_upsample == -1 else num_heads_upsample
        self.dropout = dropout
        self.resblock_updown = resblock_updown
        if middle_cross_attention is None:
            middle_cross_attention = self.cross_attention_windows == [1, 4, 8]
        self.middle_cross_attention = bool(middle_cross_attention)
        self._validate_config(model_channels, num_res_blocks, video_type, audio_type)

        emb_dim = model_channels  # the published network keeps the embedding at model_channels
        self.time_embed = nn.Sequential(nn.Linear(model_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if num_classes is not None:
            self.label_emb = nn.Embedding(num_classes, emb_dim)

        frames = self.video_size[0]
        windows = dict(zip(self.cross_attention_resolutions, self.cross_attention_windows))
        ch = input_ch = int(self.channel_mult[0] * model_channels)
        dilation = 1

        def res_block(cin, cout, ds, **kw):
            return ResBlock(
                cin, emb_dim, dropout, out_channels=cout, video_type=video_type, audio_type=audio_type,
                audio_dilation=2 ** (dilation % max_dilation_exponent), use_scale_shift_norm=use_scale_shift_norm,
                num_heads=num_heads,
                video_attention=kw.pop("video_attention", ds in self.video_attention_resolutions),
                audio_attention=kw.pop("audio_attention", ds in self.audio_attention_resolutions), **kw,
            )

        def cross_block(c, ds):
            return CrossModalAttention(c, num_heads, num_head_channels, windows[ds], self.cross_attention_shift,
                                       position_frames=frames if self.cross_attention_position else 0)

        self.input_blocks = nn.ModuleList([BlockSequence([InitialBlock(self.video_size[1], self.audio_size[0], ch)])])
        skip_channels = [ch]
        ds = 1
        for level, mult in enumerate(self.channel_mult):
            for _ in range(num_res_blocks):
                layers = [res_block(ch, int(mult * model_channels), ds)]
                dilation += 1
                ch = int(mult * model_channels)
                if ds in windows:
                    layers.append(cross_block(ch, ds))
                self.input_blocks.append(BlockSequence(layers))
                skip_channels.append(ch)
            if level != len(self.channel_mult) - 1:
                # The published network downsamples with a residual block whatever resblock_updown says.
                self.input_blocks.append(BlockSequence([
                    res_block(ch, ch, ds, resample="down", video_attention=False, audio_attention=False)
                ]))
                dilation += 1
                skip_channels.append(ch)
                ds *= 2

        middle = [res_block(ch, ch, ds, video_attention=True, audio_attention=True)]
        if self.middle_cross_attention:
            middle.append(CrossModalAttention(ch, num_heads, num_head_channels, frames, False, full=True))
        middle.append(res_block(ch, ch, ds, video_attention=True, audio_attention=True))
        self.middle_blocks = BlockSequence(middle)

        dilation -= 1
        self.output_blocks = nn.ModuleList([])
        for level, mult in list(enumerate(self.channel_mult))[::-1]:
            for i in range(num_res_blocks + 1):
                out = int(model_channels * mult)
                layers = [res_block(ch + skip_channels.pop(), out, ds)]
                dilation -= 1
                ch = out
                if ds in windows:
                    layers.append(cross_block(ch, ds))
                if level and i == num_res_blocks:
                    if resblock_updown:
                        layers.append(res_block(ch, ch, ds, resample="up", video_attention=False, audio_attention=False))
                    else:
                        layers.append(ResampleAV("up"))
                    ds //= 2
                self.output_blocks.append(BlockSequence(layers))

        self.audio_out = nn.Sequential(GroupNorm32(ch), nn.SiLU(), zero_module(AudioConv(input_ch, audio_out_channels, 3)))
        self.video_out = nn.Sequential(
            GroupNorm32(ch), nn.SiLU(), zero_module(VideoConv(input_ch, video_out_channels, 3, "3d"))
        )
        self.shifted_blocks = [m for m in self.modules() if isinstance(m, CrossModalAttention) and m.window_shift]
        self._forced_shift: ShiftSpec = None
        self.shift_generator: Optional[torch.Generator] = None
        # Video memory layout inside the network: None = channels-last (NDHWC) for float32 on CPU, where
        # oneDNN's convolutions run faster on it (about 8% per fp32 train step), and on CUDA under autocast;
        # channels-first for bf16 weights on CPU; True/False force it. Outputs do not depend on it.
        self.channels_last: Optional[bool] = None

    # ------------------------------------------------------------------ validation
    @property
    def num_levels(self) -> int:
        return len(self.channel_mult)

    def _validate_config(self, model_channels, num_res_blocks, video_type, audio_type):
        if len(self.video_size) != 4:
            raise ValueError(f"video_size must be F,C,H,W (4 numbers), got {self.video_size}")
        if len(self.audio_size) != 2:
            raise ValueError(f"audio_size must be C,L (2 numbers), got {self.audio_size}")
        if len(self.cross_attention_resolutions) != len(self.cross_attention_windows):
            raise ValueError(
                f"cross_attention_windows {self.cross_attention_windows} needs one window per resolution in "
                f"cross_attention_resolutions {self.cross_attention_resolutions}"
            )
        if num_res_blocks < 1:
            raise ValueError(f"num_res_blocks must be >= 1, got {num_res_blocks}")
        if video_type not in ("2d+1d", "3d") or audio_type not in ("1d", "linear"):
            raise ValueError(f"video_type must be '2d+1d' or '3d' and audio_type '1d' or 'linear', "
                             f"got {video_type!r}, {audio_type!r}")
        for mult in self.channel_mult:
            c = int(mult * model_channels)
            check_groupnorm(c)
            heads_for(c, self.num_heads, -1, f"self-attention at {c} channels")
            if self.cross_attention_resolutions:
                heads_for(c, self.num_heads, self.num_head_channels, f"cross-attention at {c} channels")
        frames = self.video_size[0]
        for w in self.cross_attention_windows:
            if not 1 <= w <= frames:
                raise ValueError(
                    f"cross-attention window {w} must be between 1 and the number of frames {frames}; "
                    f"cross_attention_windows={self.cross_attention_windows}"
                )
        self.check_sizes(self.video_size, self.audio_size)

    def check_sizes(self, video_size, audio_size) -> None:
        """Raise ``ValueError`` unless ``video_size (F, C, H, W)`` and ``audio_size (C, L)`` fit the U-Net:
        H and W divisible by ``2**(levels-1)``, and the audio at every level a whole number of samples per
        frame (L divisible by ``F * 4**(levels-1)``)."""
        f, _, h, w = video_size
        length = audio_size[-1]
        down = self.num_levels - 1
        vdiv = VIDEO_SCALE ** down
        if h % vdiv or w % vdiv:
            raise ValueError(
                f"video height and width must be divisible by {vdiv} for {self.num_levels} U-Net levels, got "
                f"{h}x{w}; use e.g. {max(vdiv, h // vdiv * vdiv)}x{max(vdiv, w // vdiv * vdiv)}"
            )
        adiv = f * AUDIO_SCALE ** down
        if length % adiv:
            lo = max(adiv, length // adiv * adiv)
            raise ValueError(
                f"audio length {length} does not divide evenly into {f} frames at every U-Net level "
                f"(audio is downsampled by {AUDIO_SCALE} per level, {self.num_levels} levels): it must be a "
                f"multiple of {f} x {AUDIO_SCALE}^{down} = {adiv}; use {lo} or {lo + adiv}"
            )

    # ------------------------------------------------------------------ window offsets
    @contextlib.contextmanager
    def fixed_shift(self, shift: ShiftSpec):
        """Context manager forcing the RS-MMA offsets of every forward call inside it (same meaning as
        ``forward(shift=...)``); ``shift=None`` restores random draws."""
        saved = self._forced_shift
        self._forced_shift = shift
        try:
            yield self
        finally:
            self._forced_shift = saved

    def draw_shifts(self, frames: int, shift: ShiftSpec = None, generator: Optional[torch.Generator] = None) -> list:
        """One offset R per shifted RS-MMA block, in forward order.

        ``shift=None``: R drawn uniformly from ``[0, F - w]`` for each block (from ``generator``, else
        ``self.shift_generator``, else torch's global CPU generator); an int: that R for every block; a sequence:
        one R per shifted block. Every R must satisfy ``0 <= R <= F - w``.
        """
        blocks = self.shifted_blocks
        if shift is None:
            gen = generator if generator is not None else self.shift_generator
            u = torch.rand(len(blocks), generator=gen).tolist() if blocks else []
            return [int(x * (frames - b.local_window + 1)) for x, b in zip(u, blocks)]
        shifts = [int(shift)] * len(blocks) if isinstance(shift, int) else [int(s) for s in shift]
        if len(shifts) != len(blocks):
            raise ValueError(f"shift needs one offset per shifted cross-attention block ({len(blocks)}), got {len(shifts)}")
        for r, b in zip(shifts, blocks):
            if not 0 <= r <= frames - b.local_window:
                raise ValueError(
                    f"window offset R={r} is out of range for a window of {b.local_window} frames with {frames} "
                    f"frames: 0 <= R <= {frames - b.local_window}"
                )
        return shifts

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        video: torch.Tensor,
        audio: torch.Tensor,
        timesteps: torch.Tensor,
        label: Optional[torch.Tensor] = None,
        *,
        y: Optional[torch.Tensor] = None,
        shift: ShiftSpec = None,
        generator: Optional[torch.Generator] = None,
    ):
        """``video: [N, F, C, H, W]``, ``audio: [N, C, L]``, ``timesteps: [N]`` (int or float), or per-modality
        timesteps ``{"video": [N], "audio": [N]}`` (each sub-net conditioned on its own t; equal values give
        exactly the single-tensor outputs),
        ``label`` (alias ``y``): ``[N]`` int64 when ``num_classes`` is set.
        ``shift``: RS-MMA window offsets (see :meth:`draw_shifts`). Returns ``(video_out [N, F, C_out, H, W],
        audio_out [N, C_out, L])`` in the input dtype. The body runs in the dtype of the weights (a bf16 copy from
        :func:`mm_diffusion.models.precision.compute_copy` runs bf16 end to end, norms' statistics in float32);
        float32 weights with ``use_fp16`` run under autocast (bf16, or fp16 on GPUs without bf16)."""
        label = y if label is None else label
        self._check_inputs(video, audio, timesteps, label)
        if shift is None:
            shift = self._forced_shift
        shifts = self.draw_shifts(video.shape[1], shift, generator)
        dtype = compute_dtype(self)
        with reduced_precision(self.use_fp16 and dtype == torch.float32, video.device):
            v_out, a_out = self._forward(video.to(dtype), audio.to(dtype), timesteps, label, iter(shifts))
        return v_out.to(video.dtype), a_out.to(audio.dtype)

    def _embed(self, timesteps, label):
        """The timestep (+ label) embedding ``[N, emb]``; for dict timesteps ``{"video": [N], "audio": [N]}``
        the pair ``(video_emb, audio_emb)``, the same ``time_embed`` applied to each modality's own t."""
        if isinstance(timesteps, dict):
            return tuple(self._embed(timesteps[k], label) for k in ("video", "audio"))
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels).to(compute_dtype(self)))
        if self.num_classes is not None:
            emb = emb + self.label_emb(label)
        return emb

    def _forward(self, video, audio, timesteps, label, shifts):
        emb = self._embed(timesteps, label)
        v = video.transpose(1, 2)  # [N, C, F, H, W]
        channels_last = self.channels_last
        if channels_last is None:
            # bf16 weights on the CPU: channels-first, where GroupNorm is several times faster and convs as fast
            channels_last = (v.device.type == "cpu" and v.dtype == torch.float32) or torch.is_autocast_enabled(v.device.type)
        if channels_last:
            v = v.contiguous(memory_format=torch.channels_last_3d)
        a = audio
        skips = []
        for block in self.input_blocks:
            v, a = block(v, a, emb, shifts, self.use_checkpoint)
            skips.append((v, a))
        v, a = self.middle_blocks(v, a, emb, shifts, self.use_checkpoint)
        for block in self.output_blocks:
            sv, sa = skips.pop()
            v, a = block(torch.cat([v, sv], dim=1), torch.cat([a, sa], dim=1), emb, shifts, self.use_checkpoint)
        return self.video_out(v).transpose(1, 2), self.audio_out(a)

    def _check_inputs(self, video, audio, timesteps, label):
        if video.dim() != 5 or audio.dim() != 3:
            raise ValueError(
                f"expected video [N, F, C, H, W] and audio [N, C, L], got shapes {tuple(video.shape)} and "
                f"{tuple(audio.shape)}"
            )
        n, f, c, h, w = video.shape
        if isinstance(timesteps, dict):
            if set(timesteps) != {"video", "audio"}:
                raise ValueError(f"per-modality timesteps need the keys 'video' and 'audio', got {sorted(timesteps)}")
            shapes = [tuple(timesteps[k].shape) for k in ("video", "audio")]
        else:
            shapes = [tuple(timesteps.shape)]
        if audio.shape[0] != n or any(s != (n,) for s in shapes):
            raise ValueError(
                f"batch sizes differ: video {n}, audio {audio.shape[0]}, timesteps {shapes} (want [{n}])"
            )
        if c != self.video_size[1] or audio.shape[1] != self.audio_size[0]:
            raise ValueError(
                f"channel counts: model expects video C={self.video_size[1]} and audio C={self.audio_size[0]}, "
                f"got {c} and {audio.shape[1]}"
            )
        if any(wnd > f for wnd in self.cross_attention_windows):
            raise ValueError(f"{f} frames is fewer than a cross-attention window {self.cross_attention_windows}")
        self.check_sizes((f, c, h, w), tuple(audio.shape[1:]))
        if (label is None) != (self.num_classes is None):
            raise ValueError("pass label=[N] class ids if and only if the model was built with num_classes")
