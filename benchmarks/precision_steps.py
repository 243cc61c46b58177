"""One train step and one forward of the coupled U-Net at any precision, shared by the benchmark scripts.

``precision``: ``fp32``; ``bf16`` (a bf16 compute copy with float32 master weights,
:class:`mm_diffusion.models.precision.MasterWeights`); ``bf16_autocast``; ``fp16`` (autocast with a grad scaler).
"""
from __future__ import annotations

import torch

from mm_diffusion.models.precision import MasterWeights


def precision_steps(model, precision: str, video, audio, t, *, compile_backend: str = "", channels_last=None):
    """``(train_step, forward)`` closures for ``model`` (float32, on the inputs' device) at ``precision``.
    ``video: [N, F, C, H, W]``, ``audio: [N, C, L]``, ``t: [N]``; ``channels_last`` sets the network's video layout
    (None: its default); ``compile_backend`` wraps the network in ``torch.compile(backend=...)``."""
    device = video.device
    master = MasterWeights(model) if precision == "bf16" else None
    compute = master.compute if master is not None else model
    compute.channels_last = channels_last
    net = torch.compile(compute, backend=compile_backend) if compile_backend else compute
    amp = {"bf16_autocast": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, **({"fused": True} if device.type == "cuda" else {"foreach": True}))

    def autocast():
        return torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None)

    def train_step():
        compute.train()
        with autocast():
            v, a = net(video, audio, t)
            loss = (v.float() - video).square().mean() + (a.float() - audio).square().mean()
        opt.zero_grad(set_to_none=True)
        (scaler.scale(loss) if scaler is not None else loss).backward()
        if master is not None:
            master.pull_grads()
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        if master is not None:
            master.sync()
        return loss

    def forward():
        compute.eval()
        with torch.no_grad(), autocast():
            return net(video, audio, t)

    return train_step, forward
