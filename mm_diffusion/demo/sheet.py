"""Contact sheets: one PNG per demo task, each clip as its frames in a row with its waveform below.

Per clip (one band of the sheet): a title line, the ``F`` frames side by side (each scaled up by an integer
factor, nearest neighbour, so pixels stay visible), and below them the waveform drawn over the same time axis
(frame ``k`` starts at ``x = k * cell``, the clip lasts ``F / fps`` seconds). Markers: a red tick above the
waveform's centre line at every bounce frame the analyser found in the video, a blue tick below it at every
tone onset it found in the audio. In a synchronised clip the ticks line up.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..data.media import atomic_path, audio_to_float, video_to_uint8

__all__ = ["clip_band", "contact_sheet", "write_contact_sheet"]

BOUNCE_COLOUR = (220, 40, 40)
ONSET_COLOUR = (40, 90, 230)
WAVE_COLOUR = (30, 30, 30)
BACKGROUND = (255, 255, 255)
TITLE_HEIGHT = 14


def _scale_for(height: int, target: int = 64) -> int:
    return max(1, int(round(target / max(1, height))))


def clip_band(video, audio, fps: float, audio_rate: int, bounce_frames: Sequence[int] = (),
              onset_times: Sequence[float] = (), title: str = "", wave_height: int = 48,
              scale: Optional[int] = None) -> Image.Image:
    """One clip as an RGB image: title, frames in a row, waveform with bounce (red) and onset (blue) ticks.

    video: ``[F, C, H, W]`` in [-1, 1] (or uint8 ``[F, H, W, 3]``); audio: ``[C, L]`` or ``[L]`` in [-1, 1] at
    ``audio_rate`` Hz; ``bounce_frames``: frame indices; ``onset_times``: seconds.
    """
    if fps <= 0 or int(audio_rate) <= 0:
        raise ValueError(f"fps and audio_rate must be > 0, got fps={fps}, audio_rate={audio_rate}")
    frames = video_to_uint8(video)                      # [F, H, W, 3]
    num, height, width = frames.shape[0], frames.shape[1], frames.shape[2]
    scale = scale or _scale_for(height)
    cell_w, cell_h = width * scale, height * scale
    total_w = num * cell_w
    band = Image.new("RGB", (total_w, TITLE_HEIGHT + cell_h + wave_height), BACKGROUND)
    draw = ImageDraw.Draw(band)
    if title:
        draw.text((2, 1), title, fill=(0, 0, 0))
    for k in range(num):
        tile = Image.fromarray(frames[k]).resize((cell_w, cell_h), Image.NEAREST)
        band.paste(tile, (k * cell_w, TITLE_HEIGHT))

    top = TITLE_HEIGHT + cell_h
    mid = top + wave_height // 2
    half = wave_height // 2 - 2
    duration = num / float(fps)
    mono = audio_to_float(audio).mean(axis=0)            # [L]
    shown = mono[: int(round(duration * int(audio_rate)))]
    draw.line([(0, mid), (total_w - 1, mid)], fill=(200, 200, 200))
    if shown.size:
        # min / max of the samples that fall in each pixel column
        edges = np.linspace(0, duration * int(audio_rate), total_w + 1).astype(int)
        for x in range(total_w):
            seg = shown[edges[x]:max(edges[x + 1], edges[x] + 1)]
            if seg.size == 0:
                continue
            lo, hi = float(seg.min()), float(seg.max())
            draw.line([(x, mid - hi * half), (x, mid - lo * half)], fill=WAVE_COLOUR)
    for k in bounce_frames:
        x = int(round(k * cell_w))
        if 0 <= x < total_w:
            draw.line([(x, top), (x, mid - 1)], fill=BOUNCE_COLOUR, width=2)
    for t in onset_times:
        x = int(round(float(t) / duration * total_w))
        if 0 <= x < total_w:
            draw.line([(x, mid + 1), (x, top + wave_height - 1)], fill=ONSET_COLOUR, width=2)
    return band


def contact_sheet(bands: Sequence[Image.Image], title: str = "", gap: int = 4) -> Image.Image:
    """Stack clip bands vertically under a title line (a legend for the markers is added)."""
    if not bands:
        raise ValueError("a contact sheet needs at least one clip")
    width = max(b.width for b in bands)
    header = 2 * TITLE_HEIGHT
    height = header + sum(b.height for b in bands) + gap * (len(bands) - 1)
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((2, 1), title, fill=(0, 0, 0))
    draw.text((2, TITLE_HEIGHT), "red: video bounce", fill=BOUNCE_COLOUR)
    draw.text((120, TITLE_HEIGHT), "blue: audio onset", fill=ONSET_COLOUR)
    y = header
    for band in bands:
        sheet.paste(band, (0, y))
        y += band.height + gap
    return sheet


def write_contact_sheet(path: str, bands: Sequence[Image.Image], title: str = "") -> str:
    """Write :func:`contact_sheet` of ``bands`` to ``path`` (PNG, atomically). Returns ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    image = contact_sheet(bands, title)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path
