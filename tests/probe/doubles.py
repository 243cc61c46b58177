"""Test doubles for the coupling probe and conditional sampling: hand-built models with known coupling."""
import torch
import torch.nn as nn

from mm_diffusion.models import MultimodalUNet
from mm_diffusion.models.configs import MODEL_CONFIGS
from mm_diffusion.models.attention import CrossModalAttention


def decoupled_unet(seed: int = 0) -> MultimodalUNet:
    """The tiny coupled U-Net with random weights everywhere except the RS-MMA output projections, which are
    zero: the cross-attention adds nothing, so each modality's output provably ignores the other."""
    torch.manual_seed(seed)
    model = MultimodalUNet(**MODEL_CONFIGS["tiny"])
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.05)
        for block in model.modules():
            if isinstance(block, CrossModalAttention):
                for proj in (block.video_proj_out, block.audio_proj_out):
                    for p in proj.parameters():
                        p.zero_()
    return model.eval()


class VideoIntoAudio(nn.Module):
    """Predicts x0: video -> its own input (times 0.5); audio -> each frame's mean video brightness, held over
    that frame's audio segment. Its audio depends only on the video."""

    num_classes = None

    def forward(self, video, audio, timesteps, label=None, generator=None):
        n, f = video.shape[:2]
        per_frame = video.mean(dim=(2, 3, 4))  # [N, F]
        a = per_frame.repeat_interleave(audio.shape[-1] // f, dim=1).unsqueeze(1).expand_as(audio)
        return 0.5 * video, a.contiguous()


def av_fn(model, seed: int = 0):
    """Sampler/probe model function with fixed RS-MMA offsets."""
    def fn(x, t):
        gen = torch.Generator().manual_seed(seed)
        v, a = model(x["video"], x["audio"], t, generator=gen)
        return {"video": v, "audio": a}
    return fn


def tiny_clips(n: int = 4, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    cfg = MODEL_CONFIGS["tiny"]
    return {"video": torch.rand((n, *cfg["video_size"]), generator=gen) * 2 - 1,
            "audio": torch.rand((n, *cfg["audio_size"]), generator=gen) * 0.6 - 0.3}


class ClipMeanIntoAudio(nn.Module):
    """Predicts x0: video -> 0.5 * itself; audio -> the mean brightness of the WHOLE clip, held everywhere. Its
    audio depends on the video's content but not on its timing (invariant to a shift of the frames)."""

    num_classes = None

    def forward(self, video, audio, timesteps, label=None, generator=None):
        level = video.mean(dim=(1, 2, 3, 4))[:, None, None]  # [N, 1, 1]
        return 0.5 * video, level.expand_as(audio).contiguous()
