"""Media I/O with PyAV: read a time window of a video file, write generated samples.

Reading
    ``probe_video(path)``        stream facts (start/end time, frame count, rotation, audio span) without
                                 decoding the whole file; says why a file is unusable or truncated.
    ``read_av_window(path, ...)`` frames of a window at a target frame rate (uint8 ``[F, H, W, 3]``, turned
                                 by the display matrix) and its audio resampled to a target rate and mixed
                                 to mono (float32 ``[L]``; stereo averaged, surround ITU-R BS.775 style).
    ``list_video_files(dir)``    every video file under a folder, recursively, sorted.

Writing (all atomic: a temporary name in the same folder, then ``os.replace``)
    ``write_video(path, video, audio, fps, audio_rate)``  ``.mp4``/``.mov``/``.mkv`` (H.264 + AAC) or ``.gif``
    ``write_wav(path, audio, rate)``                      16-bit PCM ``.wav`` (soundfile)
    ``write_frames_png(dir_or_prefix, video)``            one ``.png`` per frame

Writers accept torch tensors or numpy arrays: video ``[F, C, H, W]`` float in [-1, 1] (C = 1 or 3) or
uint8 ``[F, H, W, 3]``; audio ``[C, L]`` or ``[L]`` float in [-1, 1].

Time conventions: frame ``i`` of a window starting at ``start`` seconds is the source frame nearest to
``start + i / fps`` (times measured from the first video frame); audio sample ``j`` is the source audio at
``start + j / audio_rate``. AAC encoder delay is handled by the mp4 edit list that FFmpeg writes and honours
on decode, so a written-then-read clip keeps its audio aligned to the sample; codec priming that a container
cannot record (MP3 / AAC in AVI) is removed by ``media_checks.priming_samples``. Decoded audio chunks are laid
end to end (``_assemble_audio``), so 1 ms-rounded Matroska timestamps cannot open gaps between them.
"""
from __future__ import annotations

import contextlib
import os
import uuid
from fractions import Fraction
from math import gcd
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import av
import numpy as np

from . import media_checks

VIDEO_EXTENSIONS = (".mp4", ".avi", ".gif", ".webm", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg")
_WRITE_CONTAINER_EXTS = (".mp4", ".mov", ".mkv", ".m4v")
# Sample rates the AAC encoder accepts; other rates are resampled to the next one up when writing.
AAC_RATES = (7350, 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)

ArrayLike = Union[np.ndarray, "torch.Tensor"]  # noqa: F821 (torch is optional for the type only)


# --------------------------------------------------------------------------------------------------
# files and atomic writes
# --------------------------------------------------------------------------------------------------
def list_video_files(data_dir: str, extensions: Sequence[str] = VIDEO_EXTENSIONS) -> List[str]:
    """All video files under ``data_dir`` (any depth, class sub-folders allowed), sorted, hidden entries skipped.

    Raises ``FileNotFoundError`` if ``data_dir`` is not a directory.
    """
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"data directory {data_dir!r} does not exist or is not a directory")
    exts = tuple(e.lower() for e in extensions)
    found = []
    for root, dirs, files in os.walk(data_dir, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if not name.startswith(".") and name.lower().endswith(exts):
                found.append(os.path.join(root, name))
    return sorted(found)


@contextlib.contextmanager
def atomic_path(path: str) -> Iterator[str]:
    """Yield a temporary path next to ``path`` (same extension); rename it to ``path`` on success.

    On any exception the temporary file is removed and the final name is left untouched.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    stem, ext = os.path.splitext(os.path.basename(path))
    tmp = os.path.join(folder, f".{stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{ext}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


# --------------------------------------------------------------------------------------------------
# array conversions for the writers
# --------------------------------------------------------------------------------------------------
def _to_numpy(x: ArrayLike) -> np.ndarray:
    if hasattr(x, "detach"):  # torch.Tensor
        x = x.detach().cpu()
        if str(x.dtype) in ("torch.bfloat16", "torch.float16"):
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


def video_to_uint8(video: ArrayLike) -> np.ndarray:
    """Normalise a clip to uint8 ``[F, H, W, 3]``.

    Accepts float ``[F, C, H, W]`` in [-1, 1] (C = 1 or 3; values outside are clipped) or uint8
    ``[F, H, W, 3]`` / ``[F, H, W, 1]``.
    """
    v = _to_numpy(video)
    if v.ndim != 4:
        raise ValueError(f"video must be 4-D ([F, C, H, W] float or [F, H, W, 3] uint8), got shape {v.shape}")
    if v.dtype == np.uint8:
        if v.shape[-1] not in (1, 3):
            raise ValueError(f"uint8 video must be [F, H, W, 3] (or 1 channel), got shape {v.shape}")
        out = v
    elif np.issubdtype(v.dtype, np.floating):
        if v.shape[1] not in (1, 3):
            raise ValueError(f"float video must be [F, C, H, W] with C in (1, 3), got shape {v.shape}")
        v = np.nan_to_num(v.astype(np.float32), nan=0.0)
        out = np.round((np.clip(v, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8).transpose(0, 2, 3, 1)
    else:
        raise ValueError(f"video dtype must be float (in [-1, 1]) or uint8, got {v.dtype}")
    if out.shape[-1] == 1:
        out = np.repeat(out, 3, axis=-1)
    return np.ascontiguousarray(out)


def audio_to_float(audio: ArrayLike) -> np.ndarray:
    """Normalise audio to float32 ``[C, L]`` in [-1, 1] (input ``[C, L]`` or ``[L]``; clipped, NaN -> 0)."""
    a = _to_numpy(audio)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2:
        raise ValueError(f"audio must be [C, L] or [L], got shape {a.shape}")
    if a.shape[0] > 8 and a.shape[1] <= 8:
        raise ValueError(f"audio must be channels-first [C, L]; got shape {a.shape} (transpose it?)")
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float32) / float(np.iinfo(a.dtype).max)
    a = np.nan_to_num(a.astype(np.float32), nan=0.0)
    return np.clip(a, -1.0, 1.0)


# --------------------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------------------
def write_video(
    path: str,
    video: ArrayLike,
    audio: Optional[ArrayLike] = None,
    fps: float = 10,
    audio_rate: int = 16000,
    crf: int = 15,
    pix_fmt: str = "yuv420p",
    audio_bitrate: int = 192_000,
) -> str:
    """Write a clip (with optional audio) atomically; the container follows the extension.

    video: ``[F, C, H, W]`` float in [-1, 1] or uint8 ``[F, H, W, 3]``.
    audio: ``[C, L]`` or ``[L]`` float in [-1, 1] at ``audio_rate`` Hz (C = 1 or 2), or None.
    ``.mp4``/``.mov``/``.mkv``/``.m4v``: H.264 (libx264, ``crf``) + AAC; odd frame sizes are encoded as
    yuv444p because yuv420p needs even sizes; an ``audio_rate`` AAC does not support (e.g. 4000 Hz) is
    resampled to the next supported rate (readers resample to what they ask for). ``.gif``: Pillow, audio dropped. Returns ``path``.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    frames = video_to_uint8(video)
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if ext == ".gif":
        with atomic_path(path) as tmp:
            _write_gif(tmp, frames, fps)
        return path
    if ext not in _WRITE_CONTAINER_EXTS:
        raise ValueError(f"cannot write {path!r}: extension {ext!r} not supported; use one of "
                         f"{_WRITE_CONTAINER_EXTS + ('.gif',)}")
    samples = None
    if audio is not None:
        samples = audio_to_float(audio)
        if samples.shape[0] not in (1, 2):
            raise ValueError(f"audio must have 1 or 2 channels to mux, got shape {samples.shape}")
        if int(audio_rate) <= 0:
            raise ValueError(f"audio_rate must be > 0, got {audio_rate}")
        if int(audio_rate) not in AAC_RATES:
            target = next((r for r in AAC_RATES if r >= int(audio_rate)), AAC_RATES[-1])
            samples = np.clip(resample_audio(samples, int(audio_rate), target), -1.0, 1.0)
            audio_rate = target
    with atomic_path(path) as tmp:
        _mux_h264_aac(tmp, frames, samples, fps, int(audio_rate), crf, pix_fmt, audio_bitrate)
    return path


def _mux_h264_aac(path, frames, samples, fps, audio_rate, crf, pix_fmt, audio_bitrate) -> None:
    n_frames, height, width, _ = frames.shape
    if pix_fmt == "yuv420p" and (height % 2 or width % 2):
        pix_fmt = "yuv444p"
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(path, mode="w") as container:
        vstream = container.add_stream("libx264", rate=rate)
        vstream.width, vstream.height, vstream.pix_fmt = width, height, pix_fmt
        vstream.options = {"crf": str(crf), "preset": "medium"}
        astream = None
        if samples is not None:
            astream = container.add_stream("aac", rate=audio_rate)
            astream.layout = "mono" if samples.shape[0] == 1 else "stereo"
            astream.bit_rate = audio_bitrate
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(frames[i], format="rgb24")
            frame.pts = i
            container.mux(vstream.encode(frame))
        container.mux(vstream.encode(None))
        if astream is not None:
            layout = astream.layout.name
            chunk = 1024  # AAC frame size; the encoder accepts exactly this many samples per frame
            for start in range(0, samples.shape[1], chunk):
                block = np.ascontiguousarray(samples[:, start:start + chunk])
                aframe = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
                aframe.sample_rate = audio_rate
                aframe.pts = start
                container.mux(astream.encode(aframe))
            container.mux(astream.encode(None))


def _write_gif(path: str, frames: np.ndarray, fps: float) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    duration_ms = max(10, int(round(1000.0 / fps)))
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms,
                   loop=0, optimize=False)


def write_wav(path: str, audio: ArrayLike, rate: int = 16000, subtype: str = "PCM_16") -> str:
    """Write ``audio`` (``[C, L]`` or ``[L]`` float in [-1, 1]) as a ``.wav`` at ``rate`` Hz, atomically."""
    import soundfile as sf

    if int(rate) <= 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    data = audio_to_float(audio).T  # soundfile wants [L, C]
    with atomic_path(path) as tmp:
        sf.write(tmp, data, int(rate), subtype=subtype, format="WAV")
    return os.fspath(path)


def write_frames_png(dir_or_prefix: str, video: ArrayLike) -> List[str]:
    """Write each frame as a PNG; returns the paths.

    If ``dir_or_prefix`` is an existing directory or ends with a path separator, files are
    ``<dir>/frame_0000.png``...; otherwise it is a prefix: ``<prefix>_0000.png``...
    """
    from PIL import Image

    frames = video_to_uint8(video)
    target = os.fspath(dir_or_prefix)
    if os.path.isdir(target) or target.endswith(("/", os.sep)):
        os.makedirs(target, exist_ok=True)
        names = [os.path.join(target, f"frame_{i:04d}.png") for i in range(len(frames))]
    else:
        names = [f"{target}_{i:04d}.png" for i in range(len(frames))]
    for name, frame in zip(names, frames):
        with atomic_path(name) as tmp:
            Image.fromarray(frame).save(tmp, format="PNG")
    return names


# --------------------------------------------------------------------------------------------------
# probing
# --------------------------------------------------------------------------------------------------
def probe_video(path: str) -> dict:
    """Stream facts of a video file, from one demuxing pass (no decoding) plus a few decoded frames.

    Returns a JSON-able dict: ``video_start``/``video_end`` (seconds; end = last frame time + its duration;
    for a truncated file the end of what decodes), ``num_source_frames``, ``width``, ``height`` (as
    displayed, after ``rotation``), ``rotation`` (0/90/180/270, counter-clockwise, from the display
    matrix), ``has_audio``, ``audio_rate``, ``audio_channels``, ``audio_start``/``audio_end`` (seconds, the
    span the audio packets cover after the codec priming delay, ``None`` without audio),
    ``audio_priming`` (samples removed) and ``warning`` (``None``, or why only part of the file is
    indexed, e.g. ``"truncated: ..."``).
    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` whose message says why for a file
    that cannot be used: ``"empty file"``, ``"not a media file"``, ``"truncated: no index"``, no video
    stream, nothing decodable. Messages never contain the path (callers add it, relative).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"video file {path!r} not found")
    if os.path.getsize(path) == 0:
        raise ValueError("cannot decode: empty file (0 bytes)")
    try:
        container = av.open(path)
    except av.error.FFmpegError as err:
        raise ValueError(f"cannot decode: {media_checks.explain_open_error(path, err)}") from None
    try:
        with container:
            facts = _demux_facts(container)
        return _decoded_facts(path, facts)
    except av.error.FFmpegError as err:
        raise ValueError(f"cannot decode: {getattr(err, 'strerror', None) or err}") from None


def _demux_facts(container) -> dict:
    """Packet times of the first video and audio streams (one demuxing pass) and the declared duration."""
    if not container.streams.video:
        raise ValueError("cannot decode: no video stream")
    vs = container.streams.video[0]
    ast = container.streams.audio[0] if container.streams.audio else None
    pts, durs = [], []
    cut = {}  # stream type -> its latest packet was flagged corrupt (at the very end: cut off by the file's end)
    a_lo, a_hi = None, None
    for packet in container.demux([vs] + ([ast] if ast is not None else [])):
        if packet.pts is None:
            continue
        cut[packet.stream.type] = bool(packet.is_corrupt)
        if packet.is_corrupt:
            continue
        if packet.stream.type == "video":
            pts.append(packet.pts)
            durs.append(packet.duration or 0)
        else:
            t = float(packet.pts * packet.time_base)
            a_lo = t if a_lo is None else min(a_lo, t)
            a_hi = max(a_hi or t, t + float((packet.duration or 0) * packet.time_base))
    if not pts:
        raise ValueError("cannot decode: video stream has no packets")
    tb = vs.time_base
    rate = vs.average_rate or vs.guessed_rate
    times = sorted(float(p * tb) for p in pts)
    step = float(np.median(np.diff(times))) if len(times) > 1 else (float(1 / rate) if rate else 0.1)
    last_dur = float(durs[int(np.argmax(pts))] * tb) or step
    declared = None
    if vs.duration:
        declared = float(((vs.start_time or 0) + vs.duration) * tb)
    elif container.duration:
        declared = (container.duration + (container.start_time or 0)) / av.time_base
    reach = max(times[-1] + last_dur, a_hi or 0.0)
    truncated = any(cut.values()) or (declared is not None and declared - reach > max(0.1, 2 * step))
    if truncated:  # B-frames: the last frames present may skip ones whose packets were cut off
        times = _contiguous_prefix(times, step)
        last_dur = step
    end_s = times[-1] + last_dur
    if end_s <= times[0]:  # single frame without duration
        end_s = times[0] + (float(1 / rate) if rate else 0.1)
    priming = 0
    if ast is not None:
        priming = media_checks.priming_samples(container.format.name, ast.codec_context.name)
    return dict(start=times[0], end=end_s, num=len(times), declared=declared, truncated=truncated,
                last_dur=last_dur, frame_times=times[-3:], audio=(a_lo, a_hi), priming=priming,
                has_audio_stream=ast is not None)


def _contiguous_prefix(times: List[float], step: float, tail: int = 32) -> List[float]:
    """``times`` up to the first gap of more than 1.5 frame steps among the last ``tail`` frames."""
    lo = max(1, len(times) - tail)
    for i in range(lo, len(times)):
        if times[i] - times[i - 1] > 1.5 * step:
            return times[:i]
    return times


def _decoded_facts(path: str, facts: dict) -> dict:
    """Decode the first frame of each stream and the last video frame; the probe dict of ``probe_video``."""
    with av.open(path) as container:
        vs = container.streams.video[0]
        frame = next(container.decode(vs), None)
        if frame is None:
            raise ValueError("cannot decode: no decodable video frame")
        rotation = media_checks.normalise_rotation(frame.rotation)
        width, height = (frame.height, frame.width) if rotation in (90, 270) else (frame.width, frame.height)
    end, warning = _decodable_end(path, facts)
    info = {
        "video_start": facts["start"], "video_end": end, "num_source_frames": facts["num"],
        "width": int(width), "height": int(height), "rotation": rotation,
        "has_audio": False, "audio_rate": None, "audio_channels": None,
        "audio_start": None, "audio_end": None, "audio_priming": 0, "warning": warning,
    }
    if facts["has_audio_stream"]:
        with av.open(path) as container:
            ast = container.streams.audio[0]
            try:
                aframe = next(container.decode(ast), None)
            except av.error.FFmpegError:
                aframe = None
        if aframe is not None and facts["audio"][0] is not None:
            shift = facts["priming"] / aframe.sample_rate
            info.update(has_audio=True, audio_rate=int(aframe.sample_rate),
                        audio_channels=int(aframe.layout.nb_channels), audio_priming=int(facts["priming"]),
                        audio_start=facts["audio"][0] - shift, audio_end=facts["audio"][1] - shift)
    return info


def _decodable_end(path: str, facts: dict) -> Tuple[float, Optional[str]]:
    """Seek to the last demuxed video frame and decode to the end: ``(video_end, warning or None)``.

    A file whose last packet was cut short, or whose last frames do not decode, is indexed up to the
    last frame that decodes, with a ``"truncated: ..."`` warning."""
    last_t = facts["frame_times"][-1]
    seen = None
    with av.open(path) as container:
        vs = container.streams.video[0]
        with contextlib.suppress(av.error.FFmpegError):
            container.seek(int(max(0.0, last_t - 1e-3) * av.time_base), backward=True, any_frame=False)
        with contextlib.suppress(av.error.FFmpegError):
            for frame in container.decode(vs):
                if frame.pts is not None:
                    t = float(frame.pts * frame.time_base)
                    seen = t if seen is None else max(seen, t)
    end = facts["end"]
    if seen is None or seen < last_t - 0.5 * max(facts["last_dur"], 1e-3):
        if seen is None or seen <= facts["start"]:
            raise ValueError(f"cannot decode: truncated: the frames at the end ({last_t - facts['start']:.2f} s) "
                             f"do not decode")
        end = seen + facts["last_dur"]
    if facts["truncated"] or end < facts["end"]:
        declared = f" of the {facts['declared'] - facts['start']:.2f} s the container declares" if facts["declared"] else ""
        return end, f"truncated: indexed to {end - facts['start']:.2f} s{declared}, the data after that is cut off"
    return end, None


# --------------------------------------------------------------------------------------------------
# reading a window
# --------------------------------------------------------------------------------------------------
def audio_frame_to_float(frame: "av.AudioFrame") -> np.ndarray:
    """Decoded audio frame -> float32 ``[C, n]`` in [-1, 1], whatever the sample format (planar or packed)."""
    data = frame.to_ndarray()
    channels = frame.layout.nb_channels
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    if np.issubdtype(data.dtype, np.floating):
        return data.astype(np.float32, copy=False)
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    return data.astype(np.float32) / float(-np.iinfo(data.dtype).min)


def resample_audio(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Polyphase resampling of ``x`` (``[..., L]``) from ``src_rate`` to ``dst_rate`` Hz (scipy)."""
    if src_rate == dst_rate:
        return x.astype(np.float32, copy=False)
    from scipy.signal import resample_poly

    g = gcd(int(src_rate), int(dst_rate))
    return resample_poly(x, int(dst_rate) // g, int(src_rate) // g, axis=-1).astype(np.float32)


def read_av_window(
    path: str,
    start: float = 0.0,
    num_frames: Optional[int] = None,
    fps: float = 10.0,
    audio_rate: int = 16000,
    audio_duration: Optional[float] = None,
    read_audio: bool = True,
    probe: Optional[dict] = None,
) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Read ``num_frames`` frames at ``fps`` starting ``start`` seconds after the first frame, plus audio.

    Returns ``(frames, audio)``: frames uint8 ``[F, H, W, 3]``; audio float32 mono ``[L]`` at
    ``audio_rate`` with ``L = round(audio_duration * audio_rate)`` (default duration ``F / fps``), the
    channels averaged (zero-padded where the file has no audio left), or ``None`` if the file has no
    audio track or ``read_audio`` is False. ``num_frames=None`` reads to the end of the video.
    Frames past the end of the video repeat the last frame. Raises ``ValueError`` when the file cannot
    be decoded or the window starts after the end.
    """
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if start < 0:
        raise ValueError(f"start must be >= 0 seconds, got {start}")
    info = probe if probe is not None else probe_video(path)
    t_first = info["video_start"]
    duration = info["video_end"] - t_first
    if num_frames is None:
        num_frames = max(1, int(np.ceil((duration - start) * fps - 1e-6)))
    if start >= duration:
        raise ValueError(f"window start {start:.3f}s is past the end of {path!r} ({duration:.3f}s)")
    if audio_duration is None:
        audio_duration = num_frames / fps
    want_audio = read_audio and info.get("has_audio")
    t0 = t_first + start
    targets = t0 + np.arange(num_frames) / fps
    a_end = t0 + audio_duration
    try:
        frames, chunks = _decode_window(path, targets, t0, a_end if want_audio else None)
    except av.error.FFmpegError as err:
        raise ValueError(f"cannot decode {path!r}: {err}") from err
    audio = None
    if want_audio:
        audio = _assemble_audio(chunks, t0, audio_duration, int(audio_rate))
    return frames, audio


def _decode_window(path, targets, t0, audio_end):
    """Decode frames nearest to each target time (turned by the display matrix), and audio chunks
    covering [t0, audio_end] as ``(time, rate, mono samples, pts step)``, times shifted by the codec
    priming delay the container does not record (``media_checks.priming_samples``)."""
    frames: List[Optional[np.ndarray]] = [None] * len(targets)
    chunks: List[Tuple[float, int, np.ndarray, float]] = []
    with av.open(path) as container:
        vs = container.streams.video[0]
        streams = [vs]
        if audio_end is not None and container.streams.audio:
            ast = container.streams.audio[0]
            streams.append(ast)
            priming = media_checks.priming_samples(container.format.name, ast.codec_context.name)
        _seek_before(container, min(t0, float(targets[0])) - 1.0)
        j = 0
        prev = None  # (time, frame)
        video_done = False
        audio_done = audio_end is None or len(streams) == 1
        last_target = float(targets[-1])
        for packet in container.demux(streams):
            for frame in _decode_packet(packet):
                if frame.pts is None:
                    continue
                t = float(frame.pts * frame.time_base)
                if packet.stream.type == "video":
                    if video_done:
                        continue
                    cache = {}
                    while j < len(targets) and t >= targets[j]:
                        pick = frame
                        if prev is not None and (targets[j] - prev[0]) <= (t - targets[j]) + 1e-6:
                            pick = prev[1]
                        key = id(pick)
                        if key not in cache:
                            cache[key] = _frame_rgb(pick)
                        frames[j] = cache[key]
                        j += 1
                    prev = (t, frame)
                    if j >= len(targets) or t > last_target + 1.0:
                        video_done = True
                else:
                    if audio_done:
                        continue
                    t -= priming / frame.sample_rate
                    if t > audio_end + 0.05:  # margin for the resampling filter
                        audio_done = True
                        continue
                    if t + frame.samples / frame.sample_rate >= t0 - 0.1:
                        chunks.append((t, int(frame.sample_rate), _mono(frame), float(frame.time_base)))
            if video_done and audio_done:
                break
        # targets after the last decoded frame: use the last frame (end-of-stream rounding)
        if j < len(targets):
            if prev is None:
                raise ValueError(f"no video frame decoded from {path!r}")
            last = _frame_rgb(prev[1])
            for k in range(j, len(targets)):
                frames[k] = last
    return np.stack(frames), chunks


def _seek_before(container, seconds: float) -> None:
    """Seek to the keyframe at or before ``seconds`` (nothing for times <= 0; the start if seeking fails)."""
    if seconds > 0:
        try:
            container.seek(int(seconds * av.time_base), backward=True, any_frame=False)
        except av.error.FFmpegError:
            container.seek(0)


def _mono(frame: "av.AudioFrame") -> np.ndarray:
    """A decoded audio frame mixed to mono float32 ``[n]`` (``media_checks.mono_weights``)."""
    weights = media_checks.mono_weights([c.name for c in frame.layout.channels])
    return (weights @ audio_frame_to_float(frame)).astype(np.float32)


def _decode_packet(packet) -> list:
    """Frames of one packet; none for a packet cut short by the end of the file (the index promised
    more data than there is) or one the decoder rejects as invalid."""
    if packet.is_corrupt:
        return []
    try:
        return packet.decode()
    except av.error.InvalidDataError:
        return []


def _frame_rgb(frame: "av.VideoFrame") -> np.ndarray:
    """A decoded frame as displayed: uint8 ``[H, W, 3]`` turned by its display-matrix rotation."""
    return media_checks.rotate_image(frame.to_ndarray(format="rgb24"), frame.rotation)


# A chunk whose timestamp is further than this from where the previous chunk ended starts a new run
# (a real gap or overlap) instead of being placed end to end; plus half the stream's timestamp step.
RESYNC_SECONDS = 1e-3


def _chunk_offsets(chunks, base: float, src_rate: int) -> List[int]:
    """Sample offset (from ``base``) of each chunk: runs of chunks laid end to end, a new run where a
    timestamp is further than ``RESYNC_SECONDS`` (+ half a timestamp step) from the running position; each
    run is anchored at the mean of its chunks' own timestamps (averaging their rounding)."""
    runs: List[List[Tuple[int, int]]] = []  # per run: (running position, own position)
    pos = None
    for t, _, x, step in chunks:
        own = int(round((t - base) * src_rate))
        if pos is None or abs(own - pos) > (RESYNC_SECONDS + 0.5 * step) * src_rate:
            runs.append([])
            pos = own
        runs[-1].append((pos, own))
        pos += len(x)
    offsets = []
    for run in runs:
        shift = int(round(float(np.mean([own - at for at, own in run]))))
        offsets.extend(at + shift for at, _ in run)
    return offsets


def _assemble_audio(chunks, t0, duration, rate) -> np.ndarray:
    """Lay decoded mono chunks end to end, resample, and cut ``[t0, t0 + duration)`` at ``rate``.

    The first chunk sits at its timestamp; each following chunk starts where the previous one ended
    unless its own timestamp is more than ``RESYNC_SECONDS`` (+ half a timestamp step) away (see
    ``_chunk_offsets``): Matroska
    rounds timestamps to 1 ms, so placing every short Vorbis / Opus chunk at its own rounded time leaves
    gaps and overlaps of tens of samples. Missing ranges stay zero."""
    length = int(round(duration * rate))
    out = np.zeros(length, dtype=np.float32)
    if not chunks:
        return out
    src_rate = chunks[0][1]
    base = chunks[0][0]
    offsets = _chunk_offsets(chunks, base, src_rate)
    buf = np.zeros(max(o + len(c[2]) for o, c in zip(offsets, chunks)), dtype=np.float32)
    for off, (_, _, x, _) in zip(offsets, chunks):
        if off + len(x) > 0:
            buf[max(off, 0):off + len(x)] = x[max(-off, 0):]
    res = resample_audio(buf, src_rate, rate)
    first = int(round((t0 - base) * rate))
    lo, hi = max(first, 0), min(first + length, len(res))
    if hi > lo:
        out[lo - first:hi - first] = res[lo:hi]
    return out


def read_video(path: str, fps: Optional[float] = None, audio_rate: Optional[int] = None
               ) -> Tuple[np.ndarray, Optional[np.ndarray], float, Optional[int]]:
    """Read a whole file: ``(frames uint8 [F, H, W, 3], mono audio float32 [L] or None, fps, audio_rate)``.

    ``fps`` defaults to the stream's average frame rate; ``audio_rate`` to the track's own rate.
    """
    info = probe_video(path)
    if fps is None:
        with av.open(path) as container:
            vs = container.streams.video[0]
            rate = vs.average_rate or vs.guessed_rate
        fps = float(rate) if rate else 10.0
    if audio_rate is None:
        audio_rate = info["audio_rate"] or 16000
    duration = info["video_end"] - info["video_start"]
    frames, audio = read_av_window(path, 0.0, None, fps, audio_rate, audio_duration=duration, probe=info)
    return frames, audio, float(fps), int(audio_rate)
