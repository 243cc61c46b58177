"""Attention blocks: single-modality self-attention and random-shift multi-modal attention (RS-MMA).

All attention goes through :func:`mm_diffusion.models.nn.attention` (``scaled_dot_product_attention`` on
4-D ``[batch, heads, tokens, head_dim]`` tensors) on token-major features. RS-MMA handles every frame in
one batched call per direction.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .convs import AudioConv, VideoConv
from .nn import GroupNorm32, attention, group_norm_tokens, pointwise, zero_module


def heads_for(channels: int, num_heads: int, num_head_channels: int, what: str) -> int:
    """Number of heads: ``channels // num_head_channels`` when that is set (not -1), else ``num_heads``.
    Raises ``ValueError`` when the channels do not split evenly."""
    if num_head_channels != -1:
        if num_head_channels <= 0 or channels % num_head_channels:
            raise ValueError(
                f"{what}: {channels} channels are not divisible by num_head_channels={num_head_channels}; "
                f"use a num_head_channels that divides {channels} (e.g. 32 or 64) or -1 to use num_heads"
            )
        return channels // num_head_channels
    if num_heads <= 0 or channels % num_heads:
        raise ValueError(
            f"{what}: {channels} channels are not divisible by num_heads={num_heads}; "
            f"use a num_heads that divides {channels}"
        )
    return num_heads


class SelfAttention(nn.Module):
    """Multi-head self-attention with a residual connection.

    Parameter names follow the published ``SingleModalAtten``: ``norm`` (GroupNorm32), ``qkv``
    (1x1 conv to 3C channels; q, k, v are consecutive channel blocks, heads contiguous inside each),
    ``proj_out`` (zero-initialised 1x1 conv). The work happens on token-major features (``[B, T, C]``),
    where the projections are plain matrix products and the heads come out of the qkv projection as
    views that SDPA's fused kernel accepts.
    """

    def __init__(self, channels: int, num_heads: int = 1):
        super().__init__()
        self.num_heads = heads_for(channels, num_heads, -1, "self-attention")
        self.norm = GroupNorm32(channels)
        self.qkv = nn.Conv1d(channels, channels * 3, 1)
        self.proj_out = zero_module(nn.Conv1d(channels, channels, 1))

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        """The attention branch for token-major ``x: [B, T, C]`` -> ``[B, T, C]`` (without the residual)."""
        b, t, c = x.shape
        qkv = pointwise(group_norm_tokens(x, self.norm), self.qkv).view(b, t, 3, self.num_heads, c // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, T, d]
        return pointwise(attention(q, k, v).transpose(1, 2).reshape(b, t, c), self.proj_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, C, T]`` (attention over T) -> ``[B, C, T]``."""
        return x + self.attend(x.transpose(1, 2)).transpose(1, 2)


def spatial_attention(block: SelfAttention, video: torch.Tensor) -> torch.Tensor:
    """Self-attention among the pixels of every frame of ``video: [N, C, F, H, W]`` (residual included).
    With channels-last video the tokens are a view of it."""
    n, c, f, h, w = video.shape
    tokens = video.permute(0, 2, 3, 4, 1).reshape(n * f, h * w, c)
    return video + block.attend(tokens).reshape(n, f, h, w, c).permute(0, 4, 1, 2, 3)


def temporal_attention(block: SelfAttention, video: torch.Tensor) -> torch.Tensor:
    """Self-attention along the frames of every pixel of ``video: [N, C, F, H, W]`` (residual included)."""
    n, c, f, h, w = video.shape
    tokens = video.permute(0, 3, 4, 2, 1).reshape(n * h * w, f, c)
    return video + block.attend(tokens).reshape(n, h, w, f, c).permute(0, 4, 3, 1, 2)


def window_frames(frames: int, window: int, shift: int, device=None) -> torch.Tensor:
    """Frame (or audio-segment) indices of every sliding window, flattened ``[F * window]``:
    window ``i`` holds ``(i + shift + j) mod F`` for ``j < window``."""
    start = torch.arange(frames, device=device)[:, None] + shift
    return ((start + torch.arange(window, device=device)[None]) % frames).reshape(-1)


def relative_frames(frames: int, window: int, shift: int, device=None) -> torch.Tensor:
    """``[F, window]`` signed frame offsets (key frame - query frame, in ``(-F, F)``) of the RS-MMA window of
    every query frame ``i``: key ``j`` of frame ``i`` is frame ``(i + shift + j) mod F``."""
    keys = window_frames(frames, window, shift, device).view(frames, window)
    return keys - torch.arange(frames, device=device)[:, None]


def position_bias(table: torch.Tensor, offsets: torch.Tensor, per_key: int) -> torch.Tensor:
    """Additive attention bias from a learned table ``[heads, 2F - 1]`` (index ``offset + F - 1``) for the signed
    frame ``offsets: [Q, K]`` of query group and key frame: ``[Q, heads, 1, K * per_key]`` (each key frame
    repeated for its ``per_key`` tokens)."""
    frames = (table.shape[1] + 1) // 2
    bias = table[:, offsets + frames - 1]  # [heads, Q, K]
    return bias.permute(1, 0, 2).repeat_interleave(per_key, dim=2).unsqueeze(2)


def _biased_attention(q, k, v, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """:func:`attention` with an optional additive ``bias`` broadcastable to ``[B, heads, Tq, Tk]``."""
    if bias is None:
        return attention(q, k, v)
    q, k, v = (x if x.stride(-1) == 1 else x.contiguous() for x in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))


def _full_bias(table: Optional[torch.Tensor], frames: int, per_query: int, per_key: int) -> Optional[torch.Tensor]:
    """``[1, heads, F*per_query, F*per_key]`` bias of full cross-attention, or None without a table."""
    if table is None:
        return None
    offsets = torch.arange(frames, device=table.device)[None] - torch.arange(frames, device=table.device)[:, None]
    bias = position_bias(table, offsets, per_key)  # [F, heads, 1, F*per_key]
    return bias.repeat_interleave(per_query, dim=2).permute(1, 0, 2, 3).reshape(1, table.shape[0], -1, frames * per_key)


def rs_mma_tokens(
    video_qkv: torch.Tensor, audio_qkv: torch.Tensor, frames: int, window: int, shift: int,
    position: Optional[Tuple[torch.Tensor, torch.Tensor]] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random-shift multi-modal attention on token-major projections, all frames in one SDPA call per direction.

    ``video_qkv: [N, F*S, 3, heads, d]`` (video tokens frame-major, ``S`` per frame) and
    ``audio_qkv: [N, L, 3, heads, d]`` with ``L = F*P``. Video tokens of frame ``i`` attend to the audio
    segments ``(i+shift+j) mod F``, ``j < window``; audio tokens of segment ``s`` attend to the video frames
    ``(s+shift+j) mod F``. Both directions use ``+shift`` (they are not transposes of each other).
    ``position``: optional learned relative-position tables ``(video->audio, audio->video)``, each
    ``[heads, 2F - 1]``, added to the attention logits by the signed frame offset of key and query
    (see :func:`position_bias`). Returns the attention outputs ``([N, F*S, heads*d], [N, L, heads*d])``.
    """
    n, tv, _, heads, d = video_qkv.shape
    length = audio_qkv.shape[1]
    if tv % frames or length % frames:
        raise ValueError(f"RS-MMA: {tv} video tokens and {length} audio samples must both divide into {frames} frames")
    if window >= frames:  # every window covers every frame: plain full cross-attention
        vq, vk, vv = video_qkv.permute(2, 0, 3, 1, 4).unbind(0)  # [N, heads, T, d]
        aq, ak, av = audio_qkv.permute(2, 0, 3, 1, 4).unbind(0)
        s_, p_ = tv // frames, length // frames
        v2a, a2v = position if position is not None else (None, None)
        vo = _biased_attention(vq, ak, av, _full_bias(v2a, frames, s_, p_))
        ao = _biased_attention(aq, vk, vv, _full_bias(a2v, frames, p_, s_))
        return vo.transpose(1, 2).reshape(n, tv, heads * d), ao.transpose(1, 2).reshape(n, length, heads * d)

    idx = window_frames(frames, window, shift, device=video_qkv.device)

    def split(x: torch.Tensor, per: int):  # [N, F*per, 3, heads, d] -> 3 x [N, F, per, heads, d]
        return x.view(n, frames, per, 3, heads, d).unbind(3)

    def queries(x: torch.Tensor, per: int) -> torch.Tensor:  # -> [N*F, heads, per, d] (a view)
        return x.permute(0, 1, 3, 2, 4).reshape(n * frames, heads, per, d)

    def keys(x: torch.Tensor, per: int) -> torch.Tensor:  # -> [N*F, heads, window*per, d]: each frame's window
        g = x.index_select(1, idx).view(n, frames, window * per, heads, d)
        return g.permute(0, 1, 3, 2, 4).reshape(n * frames, heads, window * per, d)

    def merge(x: torch.Tensor, per: int) -> torch.Tensor:  # [N*F, heads, per, d] -> [N, F*per, heads*d]
        return x.view(n, frames, heads, per, d).permute(0, 1, 3, 2, 4).reshape(n, frames * per, heads * d)

    def bias(table: Optional[torch.Tensor], per: int) -> Optional[torch.Tensor]:  # -> [N*F, heads, 1, window*per]
        if table is None:
            return None
        b = position_bias(table, relative_frames(frames, window, shift, video_qkv.device), per)
        return b.unsqueeze(0).expand(n, *b.shape).reshape(n * frames, *b.shape[1:])

    v2a, a2v = position if position is not None else (None, None)
    s, p = tv // frames, length // frames
    vq, vk, vv = split(video_qkv, s)
    aq, ak, av = split(audio_qkv, p)
    vo = _biased_attention(queries(vq, s), keys(ak, p), keys(av, p), bias(v2a, p))
    ao = _biased_attention(queries(aq, p), keys(vk, s), keys(vv, s), bias(a2v, s))
    return merge(vo, s), merge(ao, p)


def rs_mma(
    video_qkv: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    audio_qkv: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    frames: int,
    heads: int,
    window: int,
    shift: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`rs_mma_tokens` for channel-major inputs: ``video_qkv`` = (q, k, v) each ``[N, C, F*S]``,
    ``audio_qkv`` = (q, k, v) each ``[N, C, L]``, heads as contiguous channel blocks.
    Returns ``([N, C, F*S], [N, C, L])``."""

    def tokens(qkv):  # 3 x [N, C, T] -> [N, T, 3, heads, d]
        x = torch.stack(qkv, dim=1)  # [N, 3, C, T]
        n, _, c, t = x.shape
        return x.view(n, 3, heads, c // heads, t).permute(0, 4, 1, 2, 3)

    vo, ao = rs_mma_tokens(tokens(video_qkv), tokens(audio_qkv), frames, window, shift)
    return vo.transpose(1, 2), ao.transpose(1, 2)


class CrossModalAttention(nn.Module):
    """RS-MMA block (the published ``CrossAttentionBlock``): video and audio attend to each other inside
    sliding windows of ``local_window`` frames whose start is shifted by a random offset ``R`` per call.

    Parameters: ``v_norm``/``a_norm`` (GroupNorm32), ``v_qkv``/``a_qkv`` (1x1 conv to 3C),
    ``video_proj_out`` (zero 1x1x1 Conv3d), ``audio_proj_out`` (zero 1x1 Conv1d); outputs added residually.
    ``full=True`` makes the block attend across all frames whatever the input's frame count (the paper's
    middle block). The offset is chosen by the caller (:class:`MultimodalUNet`) and passed to ``forward``.
    ``position_frames = F > 0`` (an option, not in the original) adds learned relative temporal position biases
    ``v2a_position`` / ``a2v_position`` ``[heads, 2F - 1]`` (zero-initialised: the block starts as the plain one),
    so each query knows how many frames away each key of its window is.
    """

    def __init__(
        self,
        channels: int,
        num_heads: int = 1,
        num_head_channels: int = -1,
        local_window: int = 1,
        window_shift: bool = False,
        full: bool = False,
        position_frames: int = 0,
    ):
        super().__init__()
        self.num_heads = heads_for(channels, num_heads, num_head_channels, "cross-attention")
        self.local_window = local_window
        self.window_shift = window_shift
        self.full = full
        self.v_norm = GroupNorm32(channels)
        self.a_norm = GroupNorm32(channels)
        self.v_qkv = nn.Conv1d(channels, channels * 3, 1)
        self.a_qkv = nn.Conv1d(channels, channels * 3, 1)
        self.video_proj_out = zero_module(VideoConv(channels, channels, 1, conv_type="3d"))
        self.audio_proj_out = zero_module(AudioConv(channels, channels, 1))
        self.position_frames = int(position_frames)
        if self.position_frames > 0:
            self.v2a_position = nn.Parameter(torch.zeros(self.num_heads, 2 * self.position_frames - 1))
            self.a2v_position = nn.Parameter(torch.zeros(self.num_heads, 2 * self.position_frames - 1))

    def forward(self, video: torch.Tensor, audio: torch.Tensor, shift: int = 0):
        """``video: [N, C, F, H, W]``, ``audio: [N, C, L]``, ``shift``: the window offset R (0 <= R <= F - w)."""
        n, c, f, h, w = video.shape
        heads = self.num_heads
        window = f if self.full else self.local_window
        v_tok = video.permute(0, 2, 3, 4, 1).reshape(n, f * h * w, c)  # a view of channels-last video
        a_tok = audio.transpose(1, 2)
        v_qkv = pointwise(group_norm_tokens(v_tok, self.v_norm), self.v_qkv).view(n, f * h * w, 3, heads, c // heads)
        a_qkv = pointwise(group_norm_tokens(a_tok, self.a_norm), self.a_qkv).view(n, -1, 3, heads, c // heads)
        position = None
        if self.position_frames > 0:
            if f != self.position_frames:
                raise ValueError(f"position-aware RS-MMA was built for {self.position_frames} frames, got {f}")
            position = (self.v2a_position, self.a2v_position)
        vh, ah = rs_mma_tokens(v_qkv, a_qkv, f, window, shift, position)
        vh = pointwise(vh, self.video_proj_out.video_conv).reshape(n, f, h, w, c).permute(0, 4, 1, 2, 3)
        ah = pointwise(ah, self.audio_proj_out.audio_conv).transpose(1, 2)
        return video + vh, audio + ah
