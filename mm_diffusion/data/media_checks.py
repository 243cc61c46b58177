"""Facts about real-world media files that ``media`` applies while probing and decoding.

    explain_open_error(path, err)    why FFmpeg could not open a file: "empty file", "not a media file",
                                     "truncated: no index" (no path in the text; callers add a relative one)
    priming_samples(fmt, codec, ...) codec priming delay (samples) a container does not record itself
    mono_weights(channel_names)      per-channel weights of the mono downmix (ITU-R BS.775 style)
    rotate_image(img, degrees)       apply a display-matrix rotation (90 / 180 / 270) to ``[H, W, 3]``
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

# --------------------------------------------------------------------------------------------------
# why a file does not open
# --------------------------------------------------------------------------------------------------
_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid")


def looks_like_media(head: bytes) -> bool:
    """True if the first bytes of a file carry a container signature we read (mp4/mov, avi, mkv/webm,
    gif, MPEG-PS/ES/TS, Ogg, FLV)."""
    if len(head) >= 8 and head[4:8] in _ISO_BOXES:
        return True
    if head[:4] == b"RIFF" and head[8:11] == b"AVI":
        return True
    if head[:4] in (b"\x1a\x45\xdf\xa3", b"OggS", b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return True
    if head[:6] in (b"GIF87a", b"GIF89a") or head[:3] == b"FLV":
        return True
    return len(head) > 188 and head[0] == 0x47 and head[188] == 0x47  # MPEG transport stream


def explain_open_error(path: str, err: Exception) -> str:
    """A one-line reason for a file FFmpeg refused to open (the path itself is not in the text)."""
    size = os.path.getsize(path)
    if size == 0:
        return "empty file (0 bytes)"
    with open(path, "rb") as fh:
        head = fh.read(512)
    detail = getattr(err, "strerror", None) or type(err).__name__
    if looks_like_media(head):
        return (f"truncated: no index (the container header is there but its index is missing, "
                f"e.g. an incomplete download; {size} bytes; FFmpeg: {detail})")
    return f"not a media file (no known container header; FFmpeg: {detail})"


# --------------------------------------------------------------------------------------------------
# codec priming delay
# --------------------------------------------------------------------------------------------------
# Samples of priming at the start of a decoded track, for containers that have no field for it (AVI).
# MP3: LAME's encoder delay (576) plus the decoder's filterbank delay (529), the value libmp3lame reports
# as initial padding and the mp3 demuxer removes from .mp3 files. AAC: one frame (1024), as FFmpeg's and
# most AAC encoders write. mp4/mov (edit lists), Matroska/WebM (CodecDelay) and Ogg (pre-skip) record the
# delay themselves and FFmpeg already removes it.
PRIMING_SAMPLES = {"mp3": 1105, "mp3float": 1105, "aac": 1024}
_FORMATS_WITHOUT_DELAY = ("avi",)


def priming_samples(format_name: str, codec_name: str, initial_padding: int = 0) -> int:
    """Samples to drop from the start of an audio track that FFmpeg does not drop itself."""
    formats = set(format_name.split(","))
    if not formats & set(_FORMATS_WITHOUT_DELAY):
        return 0
    if initial_padding:
        return int(initial_padding)
    return PRIMING_SAMPLES.get(codec_name, 0)


# --------------------------------------------------------------------------------------------------
# surround -> mono
# --------------------------------------------------------------------------------------------------
SURROUND_GAIN = 0.5 ** 0.5  # -3 dB
_FRONT = ("FL", "FR")
_CENTRE = ("FC",)
_LFE = ("LFE", "LFE2", "LFE1")
_SURROUND = ("BL", "BR", "SL", "SR", "BC", "FLC", "FRC", "TFL", "TFR", "TBL", "TBR", "SDL", "SDR")


def mono_weights(channel_names: Sequence[str]) -> np.ndarray:
    """Weights ``w [C]`` with ``mono = sum(w * x)``, summing to 1 (a full-scale signal stays in [-1, 1]).

    ITU-R BS.775 style: the stereo fold-down ``L' = L + g C + g Ls``, ``R' = R + g C + g Rs`` with
    ``g = 1/sqrt(2)`` (-3 dB), LFE dropped, then ``mono = (L' + R') / 2``, normalised. Mono is itself and
    stereo is ``(L + R) / 2``; channels of unknown position count like front channels (plain average).
    """
    names = [str(n) for n in channel_names]
    if len(names) <= 1:
        return np.ones(max(1, len(names)), dtype=np.float32)
    weights = []
    for name in names:
        if name in _LFE:
            weights.append(0.0)
        elif name in _CENTRE:
            weights.append(2.0 * SURROUND_GAIN)  # goes into both L' and R'
        elif name in _SURROUND:
            weights.append(SURROUND_GAIN)
        else:
            weights.append(1.0)
    w = np.asarray(weights, dtype=np.float64)
    if w.sum() <= 0:
        w = np.ones(len(names))
    return (w / w.sum()).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# rotation
# --------------------------------------------------------------------------------------------------
def normalise_rotation(degrees: float) -> int:
    """Display-matrix rotation (counter-clockwise degrees, any sign) -> 0, 90, 180 or 270; other angles
    are rounded to the nearest quarter turn."""
    return int(round(float(degrees or 0) / 90.0)) % 4 * 90


def rotate_image(img: np.ndarray, degrees: int) -> np.ndarray:
    """``img [H, W, C]`` turned counter-clockwise by ``degrees`` (a multiple of 90), as it is displayed."""
    k = normalise_rotation(degrees) // 90
    return np.ascontiguousarray(np.rot90(img, k=k, axes=(0, 1))) if k else img
