"""The image U-Net used for 64->256 super-resolution of video frames (guided-diffusion layout).

Parameter names and shapes are those of MM-Diffusion's ``ImageSuperResModel`` (identical to
guided-diffusion's ``SuperResModel``), so the published SR checkpoints and guided-diffusion's 64->256
upsampler load with ``strict=True``. Layout: ``x: [N, C, H, W]``.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as torch_checkpoint

from .attention import heads_for
from .nn import ImageGroupNorm32, attention, compute_dtype, merge_heads, reduced_precision, timestep_embedding, zero_module


def default_channel_mult(image_size: int) -> tuple:
    """Channel multipliers guided-diffusion picks for an image size."""
    table = {512: (0.5, 1, 1, 2, 2, 4, 4), 256: (1, 1, 2, 2, 4, 4), 128: (1, 1, 2, 3, 4), 64: (1, 2, 3, 4), 32: (1, 2, 2, 2)}
    if image_size not in table:
        raise ValueError(f"no default channel_mult for image size {image_size}; pass channel_mult explicitly")
    return table[image_size]


class ImageResBlock(nn.Module):
    """Residual block ``x: [N, C, H, W], emb: [N, E] -> [N, C_out, H', W']`` (``resample`` halves or doubles H, W
    between the input activation and the input convolution, as guided-diffusion does)."""

    def __init__(self, channels, emb_channels, dropout, out_channels=None, use_scale_shift_norm=False, resample=None):
        super().__init__()
        out = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.resample = resample
        self.in_layers = nn.Sequential(ImageGroupNorm32(channels), nn.SiLU(), nn.Conv2d(channels, out, 3, padding=1))
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(emb_channels, 2 * out if use_scale_shift_norm else out))
        self.out_layers = nn.Sequential(
            ImageGroupNorm32(out), nn.SiLU(), nn.Dropout(p=dropout), zero_module(nn.Conv2d(out, out, 3, padding=1))
        )
        self.skip_connection = nn.Identity() if out == channels else nn.Conv2d(channels, out, 1)

    def _resample(self, x):
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        return x

    def forward(self, x, emb):
        h = self.in_layers[:-1](x)
        h = self.in_layers[-1](self._resample(h))
        x = self._resample(x)
        emb_out = self.emb_layers(emb).to(h.dtype)[..., None, None]
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            h = self.out_layers[1:](self.out_layers[0](h) * (1 + scale) + shift)
        else:
            h = self.out_layers(h + emb_out)
        return self.skip_connection(x) + h


class ImageAttention(nn.Module):
    """Self-attention over the pixels of ``x: [N, C, H, W]`` (guided-diffusion ``AttentionBlock``).

    ``qkv`` channels are ordered head by head (q, k, v of head 0, then head 1, ...), the "legacy" order of
    guided-diffusion, unless ``new_order`` (q of all heads, then k, then v)."""

    def __init__(self, channels, num_heads=1, num_head_channels=-1, new_order=False):
        super().__init__()
        self.num_heads = heads_for(channels, num_heads, num_head_channels, "SR attention")
        self.new_order = new_order
        self.norm = ImageGroupNorm32(channels)
        self.qkv = nn.Conv1d(channels, channels * 3, 1)
        self.proj_out = zero_module(nn.Conv1d(channels, channels, 1))

    def forward(self, x):
        b, c, *spatial = x.shape
        x = x.reshape(b, c, -1)
        qkv = self.qkv(self.norm(x))
        t, heads = qkv.shape[-1], self.num_heads
        d = c // heads
        if self.new_order:
            q, k, v = qkv.reshape(b, 3, heads, d, t).transpose(-1, -2).unbind(1)
        else:
            q, k, v = qkv.reshape(b, heads, 3, d, t).transpose(-1, -2).unbind(2)
        h = merge_heads(attention(q, k, v))
        return (x + self.proj_out(h)).reshape(b, c, *spatial)


class Downsample(nn.Module):
    """``[N, C, H, W] -> [N, C_out, H/2, W/2]``: stride-2 3x3 conv (``op``) or 2x2 average pooling."""

    def __init__(self, channels, use_conv, out_channels=None):
        super().__init__()
        out = out_channels or channels
        self.op = nn.Conv2d(channels, out, 3, stride=2, padding=1) if use_conv else nn.AvgPool2d(2)

    def forward(self, x):
        return self.op(x)


class Upsample(nn.Module):
    """``[N, C, H, W] -> [N, C_out, 2H, 2W]``: nearest repetition, then a 3x3 conv (``conv``) if ``use_conv``."""

    def __init__(self, channels, use_conv, out_channels=None):
        super().__init__()
        if use_conv:
            self.conv = nn.Conv2d(channels, out_channels or channels, 3, padding=1)
        self.use_conv = use_conv

    def forward(self, x):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv(x) if self.use_conv else x


class ImageBlockSequence(nn.ModuleList):
    """Layers applied in order to ``x: [N, C, H, W]``; residual blocks get the embedding."""

    def forward(self, x, emb, use_checkpoint=False):
        for layer in self:
            args = (x, emb) if isinstance(layer, ImageResBlock) else (x,)
            if use_checkpoint and torch.is_grad_enabled() and isinstance(layer, (ImageResBlock, ImageAttention)):
                x = torch_checkpoint.checkpoint(layer, *args, use_reentrant=False)
            else:
                x = layer(*args)
        return x


class ImageUNet(nn.Module):
    """guided-diffusion's image U-Net with timestep (and optional class) conditioning.

    ``forward(x [N, in_channels, H, W], timesteps [N], y=None) -> [N, out_channels, H, W]``.
    """

    def __init__(
        self,
        image_size,
        in_channels,
        model_channels,
        out_channels,
        num_res_blocks,
        attention_resolutions,
        dropout=0.0,
        channel_mult=(1, 2, 4, 8),
        conv_resample=True,
        dims=2,
        num_classes=None,
        use_checkpoint=False,
        use_fp16=False,
        num_heads=1,
        num_head_channels=-1,
        num_heads_upsample=-1,
        use_scale_shift_norm=False,
        resblock_updown=False,
        use_new_attention_order=False,
    ):
        super().__init__()
        if dims != 2:
            raise ValueError(f"only 2-D images are supported (dims=2), got dims={dims}")
        if num_heads_upsample == -1:
            num_heads_upsample = num_heads
        channel_mult = tuple(channel_mult) if channel_mult else default_channel_mult(image_size)
        attention_resolutions = tuple(int(a) for a in attention_resolutions)
        self.image_size = image_size
        self.in_channels = in_channels
        self.model_channels = model_channels
        self.out_channels = out_channels
        self.num_classes = num_classes
        self.use_checkpoint = use_checkpoint
        self.use_fp16 = use_fp16
        self.channel_mult = channel_mult
        levels = len(channel_mult)
        if image_size % 2 ** (levels - 1):
            raise ValueError(f"image_size {image_size} must be divisible by 2**{levels - 1} for {levels} levels")

        emb_dim = model_channels * 4
        self.time_embed = nn.Sequential(nn.Linear(model_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if num_classes is not None:
            self.label_emb = nn.Embedding(num_classes, emb_dim)

        def res(cin, cout, resample=None):
            return ImageResBlock(cin, emb_dim, dropout, cout, use_scale_shift_norm, resample)

        def attn(c, heads):
            return ImageAttention(c, heads, num_head_channels, use_new_attention_order)

        ch = input_ch = int(channel_mult[0] * model_channels)
        self.input_blocks = nn.ModuleList([ImageBlockSequence([nn.Conv2d(in_channels, ch, 3, padding=1)])])
        skip_channels = [ch]
        ds = 1
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                layers = [res(ch, int(mult * model_channels))]
                ch = int(mult * model_channels)
                if ds in attention_resolutions:
                    layers.append(attn(ch, num_heads))
                self.input_blocks.append(ImageBlockSequence(layers))
                skip_channels.append(ch)
            if level != levels - 1:
                down = res(ch, ch, "down") if resblock_updown else Downsample(ch, conv_resample)
                self.input_blocks.append(ImageBlockSequence([down]))
                skip_channels.append(ch)
                ds *= 2
        self.middle_block = ImageBlockSequence([res(ch, ch), attn(ch, num_heads), res(ch, ch)])
        self.output_blocks = nn.ModuleList([])
        for level, mult in list(enumerate(channel_mult))[::-1]:
            for i in range(num_res_blocks + 1):
                layers = [res(ch + skip_channels.pop(), int(model_channels * mult))]
                ch = int(model_channels * mult)
                if ds in attention_resolutions:
                    layers.append(attn(ch, num_heads_upsample))
                if level and i == num_res_blocks:
                    layers.append(res(ch, ch, "up") if resblock_updown else Upsample(ch, conv_resample))
                    ds //= 2
                self.output_blocks.append(ImageBlockSequence(layers))
        self.out = nn.Sequential(ImageGroupNorm32(ch), nn.SiLU(), zero_module(nn.Conv2d(input_ch, out_channels, 3, padding=1)))

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        if (y is None) != (self.num_classes is None):
            raise ValueError("pass y=[N] class ids if and only if the model was built with num_classes")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected x [N, {self.in_channels}, H, W], got {tuple(x.shape)}")
        div = 2 ** (len(self.channel_mult) - 1)
        if x.shape[-1] % div or x.shape[-2] % div:
            raise ValueError(f"image height and width must be divisible by {div}, got {tuple(x.shape[-2:])}")
        dtype = compute_dtype(self)
        with reduced_precision(self.use_fp16 and dtype == torch.float32, x.device):
            emb = self.time_embed(timestep_embedding(timesteps, self.model_channels).to(dtype))
            if self.num_classes is not None:
                emb = emb + self.label_emb(y)
            h, skips = x.to(dtype), []
            for block in self.input_blocks:
                h = block(h, emb, self.use_checkpoint)
                skips.append(h)
            h = self.middle_block(h, emb, self.use_checkpoint)
            for block in self.output_blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), emb, self.use_checkpoint)
            out = self.out(h)
        return out.to(x.dtype)


class SuperResModel(ImageUNet):
    """Image U-Net conditioned on a low-resolution image: ``low_res [N, C, h, w]`` is upsampled (bilinear) to the
    size of ``x [N, C, H, W]`` and concatenated on channels (``in_channels`` is doubled internally).

    ``forward(x, timesteps, low_res, y=None) -> [N, out_channels, H, W]``.
    """

    def __init__(self, image_size, in_channels, *args, **kwargs):
        super().__init__(image_size, in_channels * 2, *args, **kwargs)

    def forward(self, x, timesteps, low_res=None, y=None, **kwargs):
        if low_res is None:
            raise ValueError("SuperResModel needs low_res=[N, C, h, w], the low-resolution image to upsample")
        if low_res.shape[:2] != x.shape[:2]:
            raise ValueError(f"low_res {tuple(low_res.shape)} must match x {tuple(x.shape)} in batch and channels")
        upsampled = F.interpolate(low_res, x.shape[-2:], mode="bilinear")
        return super().forward(torch.cat([x, upsampled], dim=1), timesteps, y=y)
