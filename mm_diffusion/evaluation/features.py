"""Folder of videos -> feature arrays, computed across ranks, with a content-keyed reference cache.

Flow for one folder::

    ClipDataset(folder, deterministic order, no flip)   items {"video": [F,C,H,W], "audio": [1,L]}
        -> first n = sample_num clips in evaluation order (every file's first clip, then every
           file's second, ...), split into contiguous shares per rank (dist.shard_range)
        -> batches of video [B,F,C,H,W] / audio [B,1,L] -> encoders -> [B, D]
        -> all_gather in rank order -> exactly n rows, no duplicates, same order as one rank

Cache: :func:`cached_folder_features` keys a result by the folder's content (relative paths, sizes
and mtimes of its video files) and every setting that changes the numbers (clip sizes and rates,
sample count, encoder names / dims / weight files). Files are ``.npz`` (read with
``allow_pickle=False``) plus a ``.json`` description, written atomically.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.media import atomic_path
from ..runs import dist

log = logging.getLogger(__name__)

CACHE_VERSION = 1

__all__ = [
    "FeatureSettings",
    "FolderFeatures",
    "open_clip_dataset",
    "evaluation_order",
    "list_folder_videos",
    "folder_fingerprint",
    "count_to_use",
    "extract_features",
    "extract_folder_features",
    "cached_folder_features",
    "file_identity",
]


@dataclass(frozen=True)
class FeatureSettings:
    """How clips are cut from a folder.

    video_size: (F, C, H, W) frames read per clip (the video encoder resizes / crops further).
    video_fps: frames per second the clip is sampled at.
    audio_fps: audio sample rate the clip is read at (use the audio encoder's own rate).
    frame_stride: passed to the clip dataset (``None``: its default, one clip per video).
    audio_length: samples of audio per clip; ``None`` means the clip duration F / video_fps.
    """

    video_size: Tuple[int, int, int, int] = (16, 3, 224, 224)
    video_fps: int = 10
    audio_fps: int = 16000
    frame_stride: Optional[int] = None
    audio_length: Optional[int] = None

    def __post_init__(self):
        if len(self.video_size) != 4 or any(int(s) <= 0 for s in self.video_size):
            raise ValueError(f"video_size must be 4 positive ints F,C,H,W, got {self.video_size}")
        if self.video_size[1] != 3:
            raise ValueError(f"video_size: C must be 3 (RGB), got {self.video_size}")
        if self.video_fps <= 0:
            raise ValueError(f"video_fps must be > 0, got {self.video_fps}")
        if self.audio_fps <= 0:
            raise ValueError(f"audio_fps must be > 0, got {self.audio_fps}")

    @property
    def duration(self) -> float:
        """Clip duration in seconds: F / video_fps."""
        return self.video_size[0] / self.video_fps

    @property
    def audio_size(self) -> Tuple[int, int]:
        """(1, L): mono, L = audio_length or round(duration * audio_fps)."""
        length = self.audio_length if self.audio_length else int(round(self.duration * self.audio_fps))
        return (1, length)

    def as_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["video_size"] = list(self.video_size)
        d["audio_size"] = list(self.audio_size)
        return d


@dataclass
class FolderFeatures:
    """Features of n clips of one folder, in dataset order.

    video: float64 ``[n, Dv]`` or None; audio: float64 ``[n, Da]`` or None;
    paths / starts: where each clip comes from; av_align: float64 ``[n, 5]`` per-clip AV-Align rows
    (``av_align.SCORE_COLUMNS``) or None.
    """

    video: Optional[np.ndarray]
    audio: Optional[np.ndarray]
    paths: List[str] = field(default_factory=list)
    starts: List[float] = field(default_factory=list)
    av_align: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.paths)


# ---------------------------------------------------------------------------------------------
# folders
# ---------------------------------------------------------------------------------------------
def _check_folder(data_dir: str, what: str) -> Path:
    path = Path(data_dir)
    if not path.exists():
        raise FileNotFoundError(f"{what}: folder {str(path)!r} does not exist")
    if not path.is_dir():
        raise FileNotFoundError(f"{what}: {str(path)!r} is not a folder")
    return path


def list_folder_videos(data_dir: str, what: str = "folder") -> List[str]:
    """Sorted video files under ``data_dir`` (as the clip dataset sees them)."""
    _check_folder(data_dir, what)
    from ..data.media import list_video_files

    return sorted(str(p) for p in list_video_files(str(data_dir)))


def folder_fingerprint(data_dir: str, what: str = "folder") -> Dict[str, Any]:
    """Content description of a folder: ``{"root", "num_files", "sha256"}``.

    The hash covers each video file's path relative to ``data_dir``, its size and mtime (ns), so
    adding, removing, replacing or touching a file changes it; moving the whole folder does not.
    """
    root = _check_folder(data_dir, what).resolve()
    entries = []
    for p in list_folder_videos(str(root), what):
        st = os.stat(p)
        rel = os.path.relpath(os.path.abspath(p), root)
        entries.append([rel, int(st.st_size), int(st.st_mtime_ns)])
    entries.sort()
    digest = hashlib.sha256(json.dumps(entries, separators=(",", ":")).encode()).hexdigest()
    return {"root": str(root), "num_files": len(entries), "sha256": digest}


def file_identity(path: Optional[str]) -> Optional[Dict[str, Any]]:
    """``{"path", "size", "mtime_ns"}`` of a weights file (None for None)."""
    if path is None:
        return None
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def open_clip_dataset(data_dir: str, settings: FeatureSettings, index_cache_dir: Optional[str] = None,
                      what: str = "folder", allow_missing_audio: bool = False, progress: bool = False):
    """The data layer's ``ClipDataset`` over ``data_dir``: deterministic, no flip, all clips on every rank.

    Items: ``{"video": [F,C,H,W] in [-1,1], "audio": [1,L] in [-1,1], "path", "start"}``.
    ``allow_missing_audio``: silent files give silence instead of being skipped (video-only evaluation).
    """
    _check_folder(data_dir, what)
    from ..data.dataset import ClipDataset

    return ClipDataset(
        str(data_dir),
        video_size=tuple(settings.video_size),
        audio_size=tuple(settings.audio_size),
        video_fps=settings.video_fps,
        audio_fps=settings.audio_fps,
        frame_stride=settings.frame_stride,
        random_flip=False,
        deterministic=True,
        rank=0,
        world_size=1,
        cache_dir=index_cache_dir,
        allow_missing_audio=allow_missing_audio,
        progress=progress,
    )


def evaluation_order(dataset) -> List[int]:
    """Dataset indices in evaluation order: the first clip of every file, then every file's second clip, ...

    A folder of long videos thus contributes one clip per video before any video contributes two, so
    the first ``sample_num`` clips spread over as many videos as possible. Deterministic (files sorted,
    clips by start). Datasets without a ``clips`` list of ``(file_idx, start)`` keep their own order.
    """
    clips = getattr(dataset, "clips", None)
    if clips is None or len(clips) != len(dataset):
        return list(range(len(dataset)))
    seen: Dict[Any, int] = {}
    keys = []
    for i, (file_idx, start) in enumerate(clips):
        nth = seen.get(file_idx, 0)
        seen[file_idx] = nth + 1
        keys.append((nth, file_idx, start, i))
    return [k[-1] for k in sorted(keys)]


def count_to_use(available: int, sample_num: Optional[int], allow_fewer: bool, what: str) -> int:
    """How many clips to evaluate: ``sample_num``, or all of them (``sample_num`` None / <= 0).

    Raises ValueError when fewer than ``sample_num`` are available, unless ``allow_fewer``.
    """
    if available < 2:
        raise ValueError(f"{what}: found {available} clip(s); at least 2 are needed for the statistics")
    if sample_num is None or sample_num <= 0:
        return available
    if available < sample_num:
        if not allow_fewer:
            raise ValueError(
                f"{what}: has only {available} clips but --sample_num is {sample_num}; lower "
                f"--sample_num to at most {available} or pass --allow_fewer to use all {available}"
            )
        log.warning("%s: only %d clips available, using them all (--allow_fewer)", what, available)
        return available
    return sample_num


# ---------------------------------------------------------------------------------------------
# extraction
# ---------------------------------------------------------------------------------------------
def _collate(items: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    return {
        "video": torch.stack([it["video"] for it in items]),
        "audio": torch.stack([it["audio"] for it in items]),
        "path": [str(it.get("path", "")) for it in items],
        "start": [float(it.get("start", 0.0)) for it in items],
    }


@torch.no_grad()
def _encode_batches(loader, video_encoder, audio_encoder, audio_rate: int, device, bar,
                    pair_scorer=None, video_fps: float = 10.0):
    """This rank's features batch by batch: ``(video parts, audio parts, paths, starts, AV-Align parts)``
    (parts on the CPU)."""
    video_out: List[torch.Tensor] = []
    audio_out: List[torch.Tensor] = []
    pair_out: List[torch.Tensor] = []
    paths: List[str] = []
    starts: List[float] = []
    for batch in loader:
        if video_encoder is not None:
            video = batch["video"].to(device=device, dtype=torch.float32)
            video_out.append(video_encoder(video).detach().float().cpu())
        if audio_encoder is not None:
            audio = batch["audio"].to(device=device, dtype=torch.float32)
            audio_out.append(audio_encoder(audio, audio_rate).detach().float().cpu())
        if pair_scorer is not None:
            pair_out.append(torch.from_numpy(pair_scorer(batch["video"], batch["audio"], video_fps, audio_rate)))
        paths.extend(batch["path"])
        starts.extend(batch["start"])
        bar.update(len(batch["path"]))
    bar.close()
    return video_out, audio_out, paths, starts, pair_out


def _gather_rows(parts: List[torch.Tensor], encoder) -> Optional[np.ndarray]:
    """Every rank's feature rows in rank order, float64 (None without ``encoder``); a collective."""
    if encoder is None:
        return None
    dim = int(getattr(encoder, "feature_dim", 0) or (parts[0].shape[1] if parts else 0))
    local = torch.cat(parts, 0) if parts else torch.zeros((0, dim))
    return dist.all_gather_tensor(local).double().numpy()


def extract_features(
    dataset,
    num: int,
    video_encoder: Optional[Callable] = None,
    audio_encoder: Optional[Callable] = None,
    audio_rate: int = 16000,
    batch_size: int = 8,
    device: Optional[torch.device] = None,
    num_workers: int = 0,
    progress: bool = True,
    desc: str = "features",
    order: Optional[Sequence[int]] = None,
    pair_scorer: Optional[Callable] = None,
    video_fps: float = 10.0,
) -> FolderFeatures:
    """Features of the first ``num`` clips of ``dataset`` (in ``order``, default 0, 1, ...) across ranks,
    returned on every rank.

    video_encoder: ``enc(video [B,F,C,H,W]) -> [B, Dv]``; audio_encoder: ``enc(audio [B,1,L], audio_rate) -> [B, Da]``;
    pair_scorer: ``scorer(video, audio, video_fps, audio_rate) -> [B, k]`` numpy (AV-Align), or None.
    Each rank handles the contiguous share ``dist.shard_range(num)``; results are gathered in rank
    order, so the output equals a single-process run (up to floating-point batch effects).
    """
    if num > len(dataset):
        raise ValueError(f"{desc}: asked for {num} clips, the dataset has {len(dataset)}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be > 0, got {batch_size}")
    device = device if device is not None else dist.dev()
    order = list(range(len(dataset))) if order is None else list(order)
    if len(set(order[:num])) != num:
        raise ValueError(f"{desc}: the clip order repeats indices")
    share = dist.shard_range(num)
    subset = torch.utils.data.Subset(dataset, [order[i] for i in share])
    loader = torch.utils.data.DataLoader(
        subset, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_collate,
        drop_last=False,
    )
    bar = tqdm(total=len(share), desc=f"{desc} (rank {dist.get_rank()})", unit="clip", disable=not progress,
               leave=False)
    video_out, audio_out, paths, starts, pair_out = _encode_batches(
        loader, video_encoder, audio_encoder, audio_rate, device, bar, pair_scorer, video_fps)
    video_feats = _gather_rows(video_out, video_encoder)
    audio_feats = _gather_rows(audio_out, audio_encoder)
    pair_feats = _gather_rows([p.double() for p in pair_out], pair_scorer)
    all_paths = [p for part in dist.all_gather_object(paths) for p in part]
    all_starts = [s for part in dist.all_gather_object(starts) for s in part]
    for name, feats in (("video", video_feats), ("audio", audio_feats)):
        if feats is not None and feats.shape[0] != num:
            raise RuntimeError(f"{desc}: gathered {feats.shape[0]} {name} feature rows, expected {num}")
    return FolderFeatures(video_feats, audio_feats, all_paths, all_starts, pair_feats)


def extract_folder_features(
    data_dir: str,
    settings: FeatureSettings,
    video_encoder: Optional[Callable] = None,
    audio_encoder: Optional[Callable] = None,
    sample_num: Optional[int] = None,
    allow_fewer: bool = False,
    batch_size: int = 8,
    num_workers: int = 0,
    index_cache_dir: Optional[str] = None,
    progress: bool = True,
    what: str = "folder",
    pair_scorer: Optional[Callable] = None,
) -> FolderFeatures:
    """Open ``data_dir`` as a clip dataset and return the features of its first ``sample_num`` clips
    in :func:`evaluation_order`. Without an audio encoder, files without audio are accepted (read as
    silence, which AV-Align scores as having no onsets)."""
    dataset = open_clip_dataset(data_dir, settings, index_cache_dir, what,
                                allow_missing_audio=audio_encoder is None, progress=progress)
    num = count_to_use(len(dataset), sample_num, allow_fewer, f"{what} {str(data_dir)!r}")
    return extract_features(
        dataset, num, video_encoder, audio_encoder, audio_rate=settings.audio_fps,
        batch_size=batch_size, num_workers=num_workers, progress=progress, desc=what,
        order=evaluation_order(dataset), pair_scorer=pair_scorer, video_fps=settings.video_fps,
    )


# ---------------------------------------------------------------------------------------------
# cache
# ---------------------------------------------------------------------------------------------
def _encoder_id(encoder: Optional[Callable], weights: Optional[str]) -> Optional[Dict[str, Any]]:
    if encoder is None:
        return None
    settings = getattr(encoder, "settings", None)  # the encoders' own JSON-able description
    return {
        "name": str(getattr(encoder, "name", type(encoder).__name__)),
        "feature_dim": int(getattr(encoder, "feature_dim", 0) or 0),
        "settings": json.loads(json.dumps(settings, sort_keys=True, default=str)) if settings else None,
        "weights": file_identity(weights) if weights and os.path.exists(weights) else None,
    }


def _atomic_write_bytes(path: Path, write: Callable[[Any], None]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)


def _save_cache(path: Path, meta: Dict[str, Any], feats: FolderFeatures) -> None:
    arrays: Dict[str, np.ndarray] = {
        "paths": np.asarray(feats.paths, dtype=np.str_),
        "starts": np.asarray(feats.starts, dtype=np.float64),
        "meta_json": np.asarray(json.dumps(meta, sort_keys=True)),
    }
    if feats.video is not None:
        arrays["video"] = feats.video
    if feats.audio is not None:
        arrays["audio"] = feats.audio
    if feats.av_align is not None:
        arrays["av_align"] = feats.av_align
    _atomic_write_bytes(path, lambda f: np.savez(f, **arrays))
    text = json.dumps(meta, indent=2, sort_keys=True).encode()
    _atomic_write_bytes(path.with_suffix(".json"), lambda f: f.write(text))


def _load_cache(path: Path, meta: Dict[str, Any]) -> Optional[FolderFeatures]:
    try:
        with np.load(path, allow_pickle=False) as data:
            stored = json.loads(str(data["meta_json"]))
            if stored != json.loads(json.dumps(meta, sort_keys=True)):
                log.warning("cache %s: settings differ from its name; ignoring it", path)
                return None
            video = data["video"].astype(np.float64) if "video" in data.files else None
            audio = data["audio"].astype(np.float64) if "audio" in data.files else None
            pair = data["av_align"].astype(np.float64) if "av_align" in data.files else None
            return FolderFeatures(video, audio, [str(p) for p in data["paths"]],
                                  [float(s) for s in data["starts"]], pair)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("cache %s unreadable (%s); recomputing", path, exc)
        return None


def cached_folder_features(
    data_dir: str,
    settings: FeatureSettings,
    video_encoder: Optional[Callable] = None,
    audio_encoder: Optional[Callable] = None,
    sample_num: Optional[int] = None,
    allow_fewer: bool = False,
    batch_size: int = 8,
    num_workers: int = 0,
    cache_dir: Optional[str] = None,
    video_weights: Optional[str] = None,
    audio_weights: Optional[str] = None,
    progress: bool = True,
    what: str = "reference",
    pair_scorer: Optional[Callable] = None,
) -> Tuple[FolderFeatures, Dict[str, Any]]:
    """:func:`extract_folder_features` through a cache in ``cache_dir`` (no cache when None).

    Returns ``(features, info)``; ``info`` = ``{"cache": "hit"|"miss"|"off", "cache_file", "key", "folder"}``.
    Rank 0 decides hit or miss and reads/writes the file; the features reach every rank.
    """
    info: Dict[str, Any] = {"cache": "off", "cache_file": None, "key": None}
    if cache_dir is None:
        feats = extract_folder_features(data_dir, settings, video_encoder, audio_encoder, sample_num,
                                        allow_fewer, batch_size, num_workers, None, progress, what, pair_scorer)
        return feats, info

    meta = None
    if dist.is_main_process():
        meta = {
            "version": CACHE_VERSION,
            "folder": folder_fingerprint(data_dir, what),
            "settings": settings.as_dict(),
            "sample_num": sample_num,
            "allow_fewer": bool(allow_fewer),
            "video_encoder": _encoder_id(video_encoder, video_weights),
            "audio_encoder": _encoder_id(audio_encoder, audio_weights),
        }
        if pair_scorer is not None:  # only then, so caches written before AV-Align keep their keys
            meta["av_align"] = _encoder_id(pair_scorer, None)
    meta = dist.broadcast_object(meta)
    key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:24]
    path = Path(cache_dir) / f"features_{key}.npz"
    info.update({"cache_file": str(path), "key": key, "folder": meta["folder"]})

    feats = None
    if dist.is_main_process() and path.exists():
        feats = _load_cache(path, meta)
    hit = dist.broadcast_object(feats is not None)
    if hit:
        info["cache"] = "hit"
        feats = dist.broadcast_object(feats)
        return feats, info

    info["cache"] = "miss"
    feats = extract_folder_features(data_dir, settings, video_encoder, audio_encoder, sample_num,
                                    allow_fewer, batch_size, num_workers, None, progress, what, pair_scorer)
    if dist.is_main_process():
        _save_cache(path, meta, feats)
    dist.barrier()
    return feats, info
