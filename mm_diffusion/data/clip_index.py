"""The clip index of a data folder: per-file stream facts, cached as JSON, and the clips derived from them.

Probing a file (``media.probe_video``) demuxes it and decodes one frame per stream; the result is cached
in ``<data_dir>/.mm_diffusion_index.json`` (or, when the data folder is read-only or ``cache_dir`` is
given, in ``<cache_dir>/<hash of the data path>.json``; default cache dir ``$XDG_CACHE_HOME/mm_diffusion``
or ``~/.cache/mm_diffusion``). An entry is reused only while the file's size and mtime are unchanged.
Files that fail to probe are cached with their reason, so they are reported once and never retried
until they change. The clip list itself is recomputed from the cached facts on every construction
(arithmetic only), so a change of ``F``, ``fps`` or ``stride`` can never see a stale clip list.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from tqdm.auto import tqdm

from . import media
from .media import atomic_path

INDEX_VERSION = 2  # 2: probes carry rotation, audio span and priming, truncation warnings; classes
INDEX_NAME = ".mm_diffusion_index.json"


@dataclass
class FileEntry:
    """One video file: ``relpath`` under the data dir, its probe facts, or why it was excluded."""

    path: str
    relpath: str
    probe: Optional[dict] = None
    error: Optional[str] = None


@dataclass
class IndexStats:
    """What an index build did: how many files it probed anew vs. took from the cache."""

    files: int = 0
    probed: int = 0
    cached: int = 0
    failed: List[Tuple[str, str]] = field(default_factory=list)  # (path relative to the data dir, reason)
    warnings: List[Tuple[str, str]] = field(default_factory=list)  # indexed in part: (relative path, why)
    classes: List[str] = field(default_factory=list)  # sorted top-level sub-folder names
    cache_path: Optional[str] = None


def class_name(relpath: str) -> Optional[str]:
    """The class of a file: its top-level folder under the data dir (``None`` for a file directly in it)."""
    parts = os.path.normpath(relpath).split(os.sep)
    return parts[0] if len(parts) > 1 else None


def class_names(relpaths) -> List[str]:
    """Sorted top-level folder names of ``relpaths``: class id ``i`` is ``class_names(...)[i]``."""
    return sorted({c for c in (class_name(r) for r in relpaths) if c is not None})


def _user_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mm_diffusion")


def _hashed_name(data_dir: str) -> str:
    digest = hashlib.sha1(os.path.abspath(data_dir).encode("utf-8")).hexdigest()[:16]
    return f"index_{digest}.json"


def cache_candidates(data_dir: str, cache_dir: Optional[str]) -> List[str]:
    """Where the index of ``data_dir`` is looked for / written, in order of preference."""
    if cache_dir is not None:
        return [os.path.join(cache_dir, _hashed_name(data_dir))]
    return [os.path.join(data_dir, INDEX_NAME), os.path.join(_user_cache_dir(), _hashed_name(data_dir))]


def _load_cache(candidates: List[str], data_dir: str) -> Dict[str, dict]:
    for path in candidates:
        if not os.path.isfile(path):
            continue
        try:
            with open(path, "r", encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            continue  # unreadable or half-written by someone else: rebuild
        if doc.get("version") == INDEX_VERSION and isinstance(doc.get("files"), dict):
            return doc["files"]
    return {}


def _save_cache(candidates: List[str], data_dir: str, files: Dict[str, dict]) -> Optional[str]:
    doc = {"version": INDEX_VERSION, "data_dir": os.path.abspath(data_dir), "files": files,
           "classes": class_names(files)}
    for path in candidates:
        try:
            with atomic_path(path) as tmp:
                with open(tmp, "w", encoding="utf-8") as fh:
                    json.dump(doc, fh, indent=1, sort_keys=True)
            return path
        except OSError:
            continue  # read-only location: try the next one
    return None


def folder_classes(data_dir: str, num_classes: int = 0) -> List[str]:
    """Class names of a class-folder dataset (sorted top-level sub-folders holding videos; no probing).

    ``ValueError`` when ``data_dir`` is not a folder of class folders, or when ``num_classes`` (> 0) is
    not the number of folders found."""
    text = os.fspath(data_dir)
    if text == "synthetic" or text.startswith("synthetic:") or not os.path.isdir(text):
        raise ValueError(f"class labels need a --data_dir folder with one sub-folder per class, got {text!r}")
    names = class_names(os.path.relpath(p, text) for p in media.list_video_files(text))
    if not names:
        raise ValueError(f"--data_dir {text!r} has no class sub-folders with videos (labels come from the "
                         f"top-level sub-folders, e.g. data/ApplyEyeMakeup/v_1.avi)")
    if int(num_classes or 0) > 0 and int(num_classes) != len(names):
        raise ValueError(f"--num_classes {num_classes} but {text!r} has {len(names)} class folders: {names[:10]}")
    return names


def build_file_index(data_dir: str, cache_dir: Optional[str] = None, progress: bool = True,
                     probe_fn=None) -> Tuple[List[FileEntry], IndexStats]:
    """Probe every video file under ``data_dir`` (reusing the cache) and return entries in sorted order.

    ``probe_fn(path) -> dict`` defaults to ``media.probe_video``; a ``ValueError``/``OSError`` from it
    marks the file as failed with that reason (``stats.failed``; a probe's ``"warning"`` goes to
    ``stats.warnings``). ``stats.classes`` (also saved in the index) are the sorted top-level folder names.
    """
    probe_fn = probe_fn or media.probe_video
    paths = media.list_video_files(data_dir)
    candidates = cache_candidates(data_dir, cache_dir)
    cached = _load_cache(candidates, data_dir)
    stats = IndexStats(files=len(paths))
    files: Dict[str, dict] = {}
    entries: List[FileEntry] = []
    todo = []
    for path in paths:
        rel = os.path.relpath(path, data_dir)
        st = os.stat(path)
        key = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        old = cached.get(rel)
        if old is not None and old.get("size") == key["size"] and old.get("mtime_ns") == key["mtime_ns"]:
            files[rel] = old
            stats.cached += 1
        else:
            todo.append((path, rel, key))
    for path, rel, key in tqdm(todo, desc="indexing videos", unit="file", disable=not progress or not todo):
        rec = dict(key)
        try:
            rec["probe"] = probe_fn(path)
        except (ValueError, OSError) as err:
            rec["error"] = str(err) or type(err).__name__
        files[rel] = rec
        stats.probed += 1
    for path in paths:
        rel = os.path.relpath(path, data_dir)
        rec = files[rel]
        entry = FileEntry(path=path, relpath=rel, probe=rec.get("probe"), error=rec.get("error"))
        if entry.error:
            stats.failed.append((rel, entry.error))
        elif entry.probe.get("warning"):
            stats.warnings.append((rel, entry.probe["warning"]))
        entries.append(entry)
    stats.classes = class_names(files)
    if stats.probed or set(cached) != set(files):
        stats.cache_path = _save_cache(candidates, data_dir, files)
    else:
        stats.cache_path = next((c for c in candidates if os.path.isfile(c)), None)
    return entries, stats


def frames_available(probe: dict, fps: float) -> int:
    """Number of frames at ``fps`` inside the video: times ``i / fps`` before its end."""
    import math

    duration = probe["video_end"] - probe["video_start"]
    return max(0, int(math.ceil(duration * fps - 1e-6)))


def clip_starts(probe: dict, num_frames: int, fps: float, stride: int) -> List[int]:
    """Start frames (at ``fps``) of every complete clip of ``num_frames`` frames, ``stride`` apart."""
    if stride <= 0:
        raise ValueError(f"frame_stride must be a positive number of frames, got {stride}")
    total = frames_available(probe, fps)
    return list(range(0, total - num_frames + 1, stride)) if total >= num_frames else []
