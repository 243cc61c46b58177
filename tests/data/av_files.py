"""Test media written with PyAV: every container / codec pair the loader is checked against.

``write_av(path, vcodec, acodec, ...)`` writes frames whose brightness encodes their index (frame ``j``:
level ``8 + 4 * j``) and audio with a single-sample click at the start of every ``click_frames`` frame
(times ``k / fps``). Sizes are tiny (32x24, a second or two) so the tests stay fast.
"""
from __future__ import annotations

import os
from fractions import Fraction
from typing import Optional, Sequence

import av
import numpy as np

# (extension, video codec, audio codec, audio rate) of every kind the tests write
KINDS = {
    "mp4_aac": (".mp4", "libx264", "aac", 16000),
    "avi_mp3": (".avi", "mpeg4", "libmp3lame", 44100),
    "avi_aac": (".avi", "mpeg4", "aac", 16000),
    "avi_pcm": (".avi", "mpeg4", "pcm_s16le", 22050),
    "mov_pcm": (".mov", "libx264", "pcm_s16le", 16000),
    "webm_opus": (".webm", "libvpx-vp9", "libopus", 48000),
    "mkv_vorbis": (".mkv", "libx264", "vorbis", 44100),
}


def click_track(seconds: float, rate: int, fps: float, click_frames: Sequence[int], level: float = 0.9,
                tone: float = 0.0, tone_hz: float = 440.0) -> np.ndarray:
    """Mono float ``[L]``: an optional sine of amplitude ``tone`` plus clicks at ``k / fps``."""
    n = int(round(seconds * rate))
    audio = tone * np.sin(2 * np.pi * tone_hz * np.arange(n) / rate)
    for k in click_frames:
        if round(k * rate / fps) < n:
            audio[int(round(k * rate / fps))] = level
    return audio.astype(np.float32)


def _encode_video(out, vs, n_frames, width, height):
    for j in range(n_frames):
        img = np.full((height, width, 3), min(255, 8 + 4 * j), np.uint8)
        img[: height // 4, : width // 4] = 250  # a bright top-left corner shows the orientation
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        frame.pts = j
        out.mux(vs.encode(frame))
    out.mux(vs.encode(None))


def _encode_audio(out, ast, audio: np.ndarray, rate: int, layout: str):
    """``audio`` float ``[C, L]``; encoded in the codec's frame size (1024 for PCM)."""
    ctx = ast.codec_context
    fmt = ctx.format.name
    size = ctx.frame_size or 1152 if ctx.name == "libmp3lame" else ctx.frame_size or 1024
    channels = audio.shape[0]
    for s in range(0, audio.shape[1], size):
        block = audio[:, s:s + size]
        if fmt.startswith("s16"):
            block = np.round(np.clip(block, -1, 1) * 32767).astype(np.int16)
        elif fmt.startswith("s32"):
            block = np.round(np.clip(block, -1, 1) * 2147483520).astype(np.int32)
        else:
            block = block.astype(np.float32)
        if not ctx.format.is_planar:
            block = np.ascontiguousarray(block.T).reshape(1, -1)
        elif channels == 1:
            block = block.reshape(1, -1)
        aframe = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format=fmt, layout=layout)
        aframe.sample_rate, aframe.pts = rate, s
        out.mux(ast.encode(aframe))
    out.mux(ast.encode(None))


def write_av(path: str, vcodec: str = "libx264", acodec: Optional[str] = "aac", rate: int = 16000,
             fps: float = 10, seconds: float = 2.0, audio: Optional[np.ndarray] = None, layout: str = "mono",
             width: int = 32, height: int = 24, rotation: int = 0, options: Optional[dict] = None,
             audio_seconds: Optional[float] = None) -> str:
    """Write a test file; ``audio`` float ``[C, L]`` or ``[L]`` (default: clicks at frames 3, 8, 13 ...).

    ``rotation``: display-matrix rotation in degrees (counter-clockwise) stored in the container.
    ``options``: muxer options (e.g. ``{"movflags": "faststart"}``). ``audio_seconds`` cuts the track.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    n_frames = int(round(seconds * fps))
    if acodec is not None and audio is None:
        audio = click_track(audio_seconds or seconds, rate, fps, range(3, n_frames, 5))
    if acodec == "vorbis" and layout == "mono":
        layout = "stereo"  # FFmpeg's native Vorbis encoder writes stereo only
    if audio is not None:
        audio = np.atleast_2d(audio)
        channels = av.AudioLayout(layout).nb_channels
        if audio.shape[0] == 1 and channels > 1:
            audio = np.repeat(audio, channels, axis=0)
    with av.open(path, "w", options=options or {}) as out:
        vs = out.add_stream(vcodec, rate=Fraction(fps).limit_denominator(1001))
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        if vcodec == "mpeg4":
            vs.options = {"qscale": "2"}
        if rotation:
            vs.set_display_rotation(rotation)
        ast = None
        if acodec is not None:
            ast = out.add_stream(acodec, rate=rate, options={"strict": "-2"} if acodec == "vorbis" else None)
            ast.layout = layout
            if acodec == "libmp3lame":
                ast.bit_rate = 128_000
        _encode_video(out, vs, n_frames, width, height)
        if ast is not None:
            _encode_audio(out, ast, audio, rate, layout)
    return path


def write_kind(folder: str, kind: str, name: Optional[str] = None, **kwargs) -> str:
    """``write_av`` for one of :data:`KINDS` into ``folder`` (file ``<kind><ext>`` unless ``name``)."""
    ext, vcodec, acodec, rate = KINDS[kind]
    path = os.path.join(folder, (name or kind) + ext)
    kwargs.setdefault("rate", rate)
    return write_av(path, vcodec, acodec, **kwargs)


def click_times(audio: np.ndarray, rate: int, expected: Sequence[float], search: float = 0.03) -> np.ndarray:
    """Time of the largest |sample| within +-``search`` s of each expected time."""
    out = []
    for t in expected:
        lo, hi = max(0, int((t - search) * rate)), int((t + search) * rate)
        out.append((lo + int(np.argmax(np.abs(audio[lo:hi])))) / rate)
    return np.array(out)
