"""AV-Align (Yariv et al. 2023): audio-video synchrony from audio onsets and motion peaks, no weights.

Per clip: audio onset times (spectral flux of a log-mel spectrogram, peak-picked), video peak times
(local maxima of a motion curve computed from dense optical flow), and their intersection over union:
an audio onset counts as matched when a video peak lies within ``tolerance_frames`` frames of it;
``IoU = matched / (|A| + |V| - matched)``. The folder score is the mean over clips.

Two video curves (``VIDEO_SIGNALS``), both from the same flow fields ``f_t`` (frame t-1 -> t):

* ``"flow"`` (the published definition): mean flow magnitude ``mean |f_t|`` per frame, peaks = plain
  local maxima. It fires when things move fastest; it cannot see an elastic bounce at constant speed.
* ``"flow_change"``: how much the motion changes at frame t (``|f_{t+1} - f_t|`` of each grid cell's
  mean flow, averaged over cells),
  peaks = local maxima with a prominence of at least ``change_prominence`` of the curve's range. It
  fires when motion starts, stops or reverses (impacts), the events a sound usually marks.

Differences from the reference script (OpenCV Farneback flow, librosa onsets): the flow is a
single-scale Lucas-Kanade estimate (numpy / scipy) on frames reduced to ``flow_size`` pixels, the
onset detector is re-implemented (librosa-like flux and peak picking), and matching is one-to-one
(each video peak matches at most one onset), which keeps IoU in [0, 1]; the reference counts every
onset near any peak, so its IoU can exceed 1. A clip with neither onsets nor peaks has no IoU and is
left out of the mean (counted in ``num_undefined``).

Inputs: ``video [F, C, H, W]`` (C = 3 RGB or 1) in [-1, 1]; ``audio [L]`` or ``[C, L]`` in [-1, 1].
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage, signal

__all__ = ["AVAlignSettings", "VIDEO_SIGNALS", "audio_onsets", "onset_envelope", "pick_peaks",
           "dense_flow", "motion_curves", "video_peaks", "match_iou", "clip_av_align", "AVAlignScorer",
           "summarise"]

VIDEO_SIGNALS = ("flow", "flow_change")


@dataclass(frozen=True)
class AVAlignSettings:
    """Detector parameters (times in seconds). See the module docstring."""

    tolerance_frames: float = 1.0
    flow_size: int = 64
    flow_sigma: float = 2.0
    change_prominence: float = 0.25
    change_grid: int = 4
    onset_window_s: float = 0.032
    onset_hop_s: float = 0.010
    onset_mels: int = 40
    onset_top_db: float = 50.0
    onset_delta: float = 0.07
    onset_max_s: float = 0.03
    onset_avg_s: float = 0.10
    onset_wait_s: float = 0.03

    def as_dict(self) -> Dict:
        return asdict(self)


# ------------------------------------------------------------------------------------------------
# audio
# ------------------------------------------------------------------------------------------------
def _mono(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float64)
    return a.mean(axis=0) if a.ndim == 2 else a.reshape(-1)


def onset_envelope(audio: np.ndarray, rate: int, s: AVAlignSettings = AVAlignSettings()) -> Tuple[np.ndarray, np.ndarray]:
    """Spectral-flux onset strength of mono ``audio`` ``[L]``: ``(envelope [T], times [T] in seconds)``.

    Log-mel power (dB, floored ``onset_top_db`` below the clip's maximum), first difference over frames,
    half-wave rectified, mean over mel bands; frame t covers samples ``[t*hop, t*hop + win)`` and is
    timed at its centre.
    """
    import torch

    from .audio_features import mel_filterbank, stft_magnitude

    wave = _mono(audio)
    win = int(round(rate * s.onset_window_s))
    hop = max(1, int(round(rate * s.onset_hop_s)))
    if wave.size < win + hop:
        return np.zeros(0), np.zeros(0)
    fft = 1 << (win - 1).bit_length()
    mag = stft_magnitude(torch.from_numpy(wave)[None], win, hop, fft)[0].numpy()  # [T, fft/2+1]
    upper = min(8000.0, rate / 2.0)
    mel = (mag ** 2) @ mel_filterbank(s.onset_mels, fft // 2 + 1, rate, 30.0, upper).numpy()
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    db = np.maximum(db, db.max() - s.onset_top_db)
    flux = np.maximum(0.0, np.diff(db, axis=0)).mean(axis=1)
    env = np.concatenate([[0.0], flux])
    times = (np.arange(env.size) * hop + win / 2.0) / rate
    return env, times


def pick_peaks(env: np.ndarray, pre_max: int, post_max: int, pre_avg: int, post_avg: int,
               delta: float, wait: int) -> List[int]:
    """Indices t where ``env[t]`` is the maximum of ``env[t-pre_max : t+post_max+1]``, exceeds the mean of
    ``env[t-pre_avg : t+post_avg+1]`` by ``delta``, and lies more than ``wait`` after the previous peak.
    ``env`` is first scaled to [0, 1] (an all-constant envelope has no peaks)."""
    env = np.asarray(env, dtype=np.float64)
    if env.size == 0 or env.max() - env.min() <= 1e-12:
        return []
    e = (env - env.min()) / (env.max() - env.min())
    peaks: List[int] = []
    for t in range(e.size):
        lo, hi = max(0, t - pre_max), min(e.size, t + post_max + 1)
        if e[t] < e[lo:hi].max() or e[t] <= 0.0:
            continue
        if e[t] < e[max(0, t - pre_avg):min(e.size, t + post_avg + 1)].mean() + delta:
            continue
        if peaks and t - peaks[-1] <= wait:
            continue
        peaks.append(t)
    return peaks


def audio_onsets(audio: np.ndarray, rate: int, s: AVAlignSettings = AVAlignSettings()) -> np.ndarray:
    """Onset times in seconds of ``audio`` ``[L]`` / ``[C, L]`` at ``rate`` Hz."""
    env, times = onset_envelope(audio, rate, s)
    frames_per_s = 1.0 / s.onset_hop_s
    n = lambda sec: max(0, int(round(sec * frames_per_s)))  # noqa: E731
    idx = pick_peaks(env, n(s.onset_max_s), n(s.onset_max_s), n(s.onset_avg_s), n(s.onset_avg_s),
                     s.onset_delta, n(s.onset_wait_s))
    return times[idx] if idx else np.zeros(0)


# ------------------------------------------------------------------------------------------------
# video
# ------------------------------------------------------------------------------------------------
def _gray_small(video: np.ndarray, size: int) -> np.ndarray:
    """``[F, C, H, W]`` in [-1, 1] -> luma ``[F, h, w]`` in [0, 1], block-averaged so the short side is <= ~size."""
    v = (np.asarray(video, dtype=np.float64) + 1.0) / 2.0
    gray = v[:, 0] if v.shape[1] == 1 else 0.299 * v[:, 0] + 0.587 * v[:, 1] + 0.114 * v[:, 2]
    k = max(1, min(gray.shape[1:]) // max(1, int(size)))
    if k > 1:
        f, h, w = gray.shape
        gray = gray[:, :h - h % k, :w - w % k].reshape(f, h // k, k, w // k, k).mean(axis=(2, 4))
    return gray


def dense_flow(a: np.ndarray, b: np.ndarray, sigma: float = 2.0, reg: float = 1e-4) -> np.ndarray:
    """Lucas-Kanade flow from image ``a`` to ``b`` (``[h, w]``): ``[2, h, w]`` (dx, dy) in pixels.

    Gradients of the mean image, temporal difference ``b - a``, structure tensor smoothed by a Gaussian
    of ``sigma`` pixels, the 2x2 system regularised by ``reg`` (flat regions get ~0 flow).
    """
    a = ndimage.gaussian_filter(a, 1.0)
    b = ndimage.gaussian_filter(b, 1.0)
    m = (a + b) / 2.0
    iy, ix = np.gradient(m)
    it = b - a
    g = lambda x: ndimage.gaussian_filter(x, sigma)  # noqa: E731
    sxx, syy, sxy = g(ix * ix) + reg, g(iy * iy) + reg, g(ix * iy)
    sxt, syt = g(ix * it), g(iy * it)
    det = sxx * syy - sxy * sxy
    u = -(syy * sxt - sxy * syt) / det
    v = -(sxx * syt - sxy * sxt) / det
    return np.stack([u, v])


def _cell_means(flows: np.ndarray, grid: int) -> np.ndarray:
    """Mean flow vector per cell of a ``grid x grid`` partition: ``[N, 2, h, w] -> [N, 2, grid, grid]``."""
    _, _, h, w = flows.shape
    ys = np.linspace(0, h, grid + 1).round().astype(int)
    xs = np.linspace(0, w, grid + 1).round().astype(int)
    out = np.empty(flows.shape[:2] + (grid, grid))
    for i in range(grid):
        for j in range(grid):
            out[:, :, i, j] = flows[:, :, ys[i]:ys[i + 1], xs[j]:xs[j + 1]].mean(axis=(2, 3))
    return out


def motion_curves(video: np.ndarray, s: AVAlignSettings = AVAlignSettings()) -> Dict[str, np.ndarray]:
    """``{"flow": [F], "flow_change": [F]}`` for ``video [F, C, H, W]`` (F >= 3); index t is frame t.

    ``flow[t] = mean |f_t|`` with ``f_t`` the flow from frame t-1 to t (``flow[0] = flow[1]``, as the
    reference script); ``flow_change[t]`` = mean over the cells of a ``change_grid`` x ``change_grid`` grid of
    ``|mean_cell f_{t+1} - mean_cell f_t|`` for 1 <= t <= F-2 (0 at both ends): the change of each
    region's average motion, which a moving object's shifting outline does not trigger.
    """
    gray = _gray_small(video, s.flow_size)
    if gray.shape[0] < 3:
        raise ValueError(f"AV-Align needs at least 3 frames, got {gray.shape[0]}")
    flows = np.stack([dense_flow(gray[t - 1], gray[t], s.flow_sigma) for t in range(1, gray.shape[0])])
    mag = np.sqrt((flows ** 2).sum(axis=1)).mean(axis=(1, 2))
    flow = np.concatenate([[mag[0]], mag])
    cells = _cell_means(flows, s.change_grid)  # [F-1, 2, g, g]
    change = np.sqrt(((cells[1:] - cells[:-1]) ** 2).sum(axis=1)).mean(axis=(1, 2))
    change = np.concatenate([[0.0], change, [0.0]])  # no change is measurable at the first / last frame
    return {"flow": flow, "flow_change": change}


def video_peaks(curve: np.ndarray, fps: float, signal_name: str, s: AVAlignSettings = AVAlignSettings()) -> np.ndarray:
    """Peak times (seconds) of a motion curve: strict local maxima (``"flow"``), or local maxima with a
    prominence >= ``change_prominence`` x the curve's range (``"flow_change"``)."""
    if signal_name not in VIDEO_SIGNALS:
        raise ValueError(f"unknown video signal {signal_name!r}; valid: {', '.join(VIDEO_SIGNALS)}")
    c = np.asarray(curve, dtype=np.float64)
    if signal_name == "flow":
        idx = [t for t in range(1, c.size - 1) if c[t - 1] < c[t] > c[t + 1]]
    else:
        span = float(c.max() - c.min()) if c.size else 0.0
        if span <= 1e-12:
            return np.zeros(0)
        idx = list(signal.find_peaks(c, prominence=s.change_prominence * span)[0])
    return np.asarray(idx, dtype=np.float64) / float(fps)


# ------------------------------------------------------------------------------------------------
# score
# ------------------------------------------------------------------------------------------------
def match_iou(audio_times: Sequence[float], video_times: Sequence[float], tolerance_s: float) -> float:
    """One-to-one matching (in time order) of onsets to peaks within ``tolerance_s``; returns
    ``matched / (|A| + |V| - matched)``, NaN when both are empty."""
    a, v = sorted(float(x) for x in audio_times), sorted(float(x) for x in video_times)
    if not a and not v:
        return float("nan")
    used = [False] * len(v)
    matched = 0
    for t in a:
        best, best_d = None, None
        for j, u in enumerate(v):
            d = abs(u - t)
            if not used[j] and d <= tolerance_s + 1e-9 and (best_d is None or d < best_d):
                best, best_d = j, d
        if best is not None:
            used[best] = True
            matched += 1
    return matched / (len(a) + len(v) - matched)


def clip_av_align(video: np.ndarray, audio: np.ndarray, fps: float, rate: int,
                  s: AVAlignSettings = AVAlignSettings()) -> Dict[str, float]:
    """AV-Align of one clip for every video signal: ``{"flow": iou, "flow_change": iou, "num_onsets": n, ...}``."""
    onsets = audio_onsets(audio, rate, s)
    curves = motion_curves(video, s)
    tol = s.tolerance_frames / float(fps)
    out: Dict[str, float] = {"num_onsets": float(len(onsets))}
    for name in VIDEO_SIGNALS:
        peaks = video_peaks(curves[name], fps, name, s)
        out[name] = match_iou(onsets, peaks, tol)
        out[f"num_peaks_{name}"] = float(len(peaks))
    return out


SCORE_COLUMNS = ("flow", "flow_change", "num_onsets", "num_peaks_flow", "num_peaks_flow_change")


class AVAlignScorer:
    """Batch scorer for the feature pass: ``scorer(video [B, F, C, H, W], audio [B, 1, L], fps, rate) -> [B, 5]``
    float64 rows in ``SCORE_COLUMNS`` order (NaN where a clip's IoU is undefined)."""

    name = "av_align"
    feature_dim = len(SCORE_COLUMNS)

    def __init__(self, settings: AVAlignSettings = AVAlignSettings()):
        self.s = settings

    @property
    def settings(self) -> Dict:
        return {"name": self.name, "columns": list(SCORE_COLUMNS), **self.s.as_dict()}

    def __call__(self, video, audio, fps: float, rate: int) -> np.ndarray:
        v = video.detach().cpu().double().numpy() if hasattr(video, "detach") else np.asarray(video)
        a = audio.detach().cpu().double().numpy() if hasattr(audio, "detach") else np.asarray(audio)
        rows = []
        for i in range(v.shape[0]):
            r = clip_av_align(v[i], a[i], fps, rate, self.s)
            rows.append([r[c] for c in SCORE_COLUMNS])
        return np.asarray(rows, dtype=np.float64).reshape(-1, len(SCORE_COLUMNS))


def summarise(rows: Optional[np.ndarray]) -> Optional[Dict[str, float]]:
    """Folder summary of scorer rows ``[N, 5]``: mean IoU per signal over defined clips, counts."""
    if rows is None or len(rows) == 0:
        return None
    rows = np.asarray(rows, dtype=np.float64)
    out: Dict[str, float] = {"num_clips": int(rows.shape[0])}
    for j, col in enumerate(SCORE_COLUMNS):
        vals = rows[:, j]
        ok = ~np.isnan(vals)
        if col in VIDEO_SIGNALS:
            out[col] = float(vals[ok].mean()) if ok.any() else None
            out[f"num_undefined_{col}"] = int((~ok).sum())
        else:
            out[f"mean_{col}"] = float(vals.mean())
    return out
