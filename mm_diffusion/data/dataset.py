"""The clip dataset over a folder of video files, and ``load_data``: the training loop's batch stream.

``ClipDataset(data_dir, ...)[i]`` is ``{"video": Tensor[F, 3, H, W] float32 in [-1, 1],
"audio": Tensor[1, L] float32 in [-1, 1], "path": str, "start": int}`` where ``start`` is the clip's first
frame counted at ``video_fps``. ``load_data(...)`` turns it (or the synthetic dataset) into an endless,
exactly resumable stream of batches ``{"video": [N, F, 3, H, W], "audio": [N, 1, L]}``.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from . import media
from .clip_index import build_file_index, class_name, clip_starts, frames_available
from .sampler import ResumableSampler
from .synthetic.spec import parse_synthetic_spec
from .transforms import check_sizes, fit_length, frames_to_tensor, resize_and_pad

__all__ = ["ClipDataset", "ResumableSampler", "load_data", "BatchStream", "collate_av"]


# Audio may miss this much of a clip's window (seconds, at either end) before the clip counts as short.
SHORT_AUDIO_SLACK = 0.05


def audio_covers(probe: dict, start: float, duration: float) -> bool:
    """Whether the file's audio spans ``[start, start + duration]`` (seconds after the first video frame),
    within ``SHORT_AUDIO_SLACK``. Probes without an audio span (old indexes) count as covered."""
    if probe.get("audio_end") is None:
        return True
    t0 = probe["video_start"] + start
    return (probe["audio_start"] <= t0 + SHORT_AUDIO_SLACK
            and probe["audio_end"] >= t0 + duration - SHORT_AUDIO_SLACK)


def _flip_bit(*keys: int) -> bool:
    digest = hashlib.blake2b(np.asarray(keys, dtype=np.int64).tobytes(), digest_size=1).digest()
    return bool(digest[0] & 1)


class ClipDataset(Dataset):
    """Clips of ``F`` frames (at ``video_fps``) with their audio (at ``audio_fps``) from every video file
    found recursively under ``data_dir``.

    Args:
        video_size: ``(F, 3, H, W)``; frames are resized keeping the aspect ratio (bicubic) and padded
            with black to ``H x W``.
        audio_size: ``(1, L)``; the clip's audio (``F / video_fps`` seconds, channels averaged) is
            zero-padded or cropped to ``L`` samples.
        frame_stride: frames (at ``video_fps``) between the starts of consecutive clips of a file;
            default ``F`` (back-to-back clips).
        random_flip: flip each draw horizontally with probability 1/2 (decided by a hash of ``seed``
            and the draw, so a resumed run flips the same way); ignored when ``deterministic``.
        deterministic: evaluation mode: no random flip (``load_data`` also keeps the order).
        rank, world_size: this process keeps clips ``rank::world_size`` of the sorted clip list.
        cache_dir: where to keep the index instead of ``<data_dir>/.mm_diffusion_index.json``.
        allow_missing_audio: use silence for files without an audio track (default: skip them, with
            a warning).
        progress: tqdm bar while indexing.
        drop_short_audio: drop clips whose audio does not cover the clip (audio ending early or starting
            late by more than ``SHORT_AUDIO_SLACK`` s); default: keep them, zero-padded. Either way they
            are counted in ``report["short_audio_clips"]`` and warned about once per file.
        class_cond: items get ``"label"``: the id of the file's top-level folder among the sorted folder
            names (``self.classes``); files directly in ``data_dir`` are then an error.

    Files that fail to decode are reported once (path relative to ``data_dir`` and reason: empty file,
    not a media file, truncated ...) and excluded; truncated files whose index survives are indexed up to
    where their data ends, with one warning. ``self.report`` lists all of it. Raises
    ``FileNotFoundError`` if ``data_dir`` is missing and ``ValueError`` if no usable clip is found.
    """

    accepts_draw_ids = True

    def __init__(self, data_dir: str, video_size: Sequence[int] = (16, 3, 64, 64),
                 audio_size: Sequence[int] = (1, 25600), video_fps: float = 10, audio_fps: int = 16000,
                 frame_stride: Optional[int] = None, random_flip: bool = False,
                 deterministic: bool = False, rank: int = 0, world_size: int = 1,
                 cache_dir: Optional[str] = None, allow_missing_audio: bool = False,
                 progress: bool = True, seed: int = 0, drop_short_audio: bool = False, class_cond: bool = False):
        self.video_size, self.audio_size = check_sizes(video_size, audio_size)
        if video_fps <= 0 or int(audio_fps) <= 0:
            raise ValueError(f"video_fps and audio_fps must be > 0, got {video_fps}, {audio_fps}")
        if int(world_size) < 1 or not 0 <= int(rank) < int(world_size):
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.data_dir = os.fspath(data_dir)
        self.video_fps = float(video_fps)
        self.audio_fps = int(audio_fps)
        self.num_frames = self.video_size[0]
        self.frame_stride = int(frame_stride) if frame_stride is not None else self.num_frames
        self.random_flip = bool(random_flip) and not deterministic
        self.deterministic = bool(deterministic)
        self.rank, self.world_size = int(rank), int(world_size)
        self.allow_missing_audio = bool(allow_missing_audio)
        self.seed = int(seed)
        self.drop_short_audio = bool(drop_short_audio)
        self.class_cond = bool(class_cond)
        self.epoch = 0
        self._bad_files: Dict[str, str] = {}

        entries, self.index_stats = build_file_index(self.data_dir, cache_dir, progress)
        self.classes: List[str] = list(self.index_stats.classes) if self.class_cond else []
        skipped_audio, too_short = self._select_files(entries)
        all_clips = self._build_clips()
        self.report = self._make_report(skipped_audio, too_short)
        self._report(skipped_audio)
        if not all_clips:
            raise ValueError(self._empty_message(len(entries), skipped_audio, too_short))
        self.num_clips_total = len(all_clips)
        self.clips = all_clips[self.rank::self.world_size]
        if not self.clips:
            raise ValueError(f"rank {self.rank} of {self.world_size} gets no clip: {self.data_dir!r} has only "
                             f"{len(all_clips)} clips; use fewer ranks or more data")

    # ---- index -> files -> clips ---------------------------------------------------------------------
    def _select_files(self, entries) -> Tuple[List[str], List[str]]:
        """Fill ``self.files`` (path, probe) and ``self.file_labels`` (class id or None) with the usable
        entries; returns the relative paths
        skipped for having no audio track and for being shorter than one clip."""
        self.files, self.file_labels = [], []
        skipped_audio, too_short, unlabelled = [], [], []
        for entry in entries:
            if entry.error:
                continue
            if not entry.probe["has_audio"] and not self.allow_missing_audio:
                skipped_audio.append(entry.relpath)
                continue
            if frames_available(entry.probe, self.video_fps) < self.num_frames:
                too_short.append(entry.relpath)
                continue
            label = None
            if self.class_cond:
                name = class_name(entry.relpath)
                if name is None:
                    unlabelled.append(entry.relpath)
                    continue
                label = self.classes.index(name)
            self.files.append((entry.path, entry.probe))
            self.file_labels.append(label)
        if unlabelled:
            raise ValueError(f"class_cond: {len(unlabelled)} file(s) lie directly in {self.data_dir!r}, outside a "
                             f"class folder (labels come from the top-level sub-folders): {', '.join(unlabelled[:5])}")
        return skipped_audio, too_short

    def _build_clips(self) -> List[Tuple[int, int]]:
        """``(file index, start frame)`` of every clip; counts (and with ``drop_short_audio`` drops) the
        clips whose audio does not cover them (``self.short_audio``: relative path -> clip count)."""
        clips: List[Tuple[int, int]] = []
        self.short_audio: Dict[str, int] = {}
        self.short_audio_dropped = 0
        for file_idx, (path, probe) in enumerate(self.files):
            for start in clip_starts(probe, self.num_frames, self.video_fps, self.frame_stride):
                if probe["has_audio"] and not audio_covers(probe, start / self.video_fps,
                                                           self.num_frames / self.video_fps):
                    rel = os.path.relpath(path, self.data_dir)
                    self.short_audio[rel] = self.short_audio.get(rel, 0) + 1
                    if self.drop_short_audio:
                        self.short_audio_dropped += 1
                        continue
                clips.append((file_idx, start))
        return clips

    def _make_report(self, skipped_audio: List[str], too_short: List[str]) -> dict:
        """What the index excluded or only partly used, by path relative to the data dir (JSON-able)."""
        return {"excluded": dict(self.index_stats.failed), "partial": dict(self.index_stats.warnings),
                "no_audio": list(skipped_audio) if not self.allow_missing_audio else [],
                "too_short": list(too_short), "short_audio_clips": dict(self.short_audio),
                "short_audio_dropped": self.short_audio_dropped, "classes": list(self.classes)}

    # ---- reporting ---------------------------------------------------------------------------------
    def _report(self, skipped_audio: List[str]) -> None:
        """One warning per kind of problem, each file once, paths relative to the data dir."""
        if self.index_stats.failed:
            lines = "\n".join(f"  {p}: {why}" for p, why in self.index_stats.failed)
            warnings.warn(f"excluded {len(self.index_stats.failed)} video file(s) that failed to decode:\n{lines}",
                          stacklevel=3)
        if self.index_stats.warnings:
            lines = "\n".join(f"  {p}: {why}" for p, why in self.index_stats.warnings)
            warnings.warn(f"{len(self.index_stats.warnings)} video file(s) indexed in part:\n{lines}", stacklevel=3)
        if skipped_audio:
            lines = "\n".join(f"  {p}" for p in skipped_audio)
            warnings.warn(f"skipped {len(skipped_audio)} video file(s) without an audio track "
                          f"(allow_missing_audio=True uses silence instead):\n{lines}", stacklevel=3)
        if self.short_audio:
            action = "dropped" if self.drop_short_audio else "zero-padded (drop_short_audio=True drops them)"
            lines = "\n".join(f"  {p}: {n} clip(s)" for p, n in self.short_audio.items())
            warnings.warn(f"{sum(self.short_audio.values())} clip(s) in {len(self.short_audio)} file(s) have audio that "
                          f"does not cover the clip, {action}:\n{lines}", stacklevel=3)

    def _empty_message(self, n_found: int, skipped_audio: List[str], too_short: List[str]) -> str:
        need = f"{self.num_frames} frames at {self.video_fps:g} fps ({self.num_frames / self.video_fps:.2f} s)"
        parts = [f"found {n_found} video file(s) (extensions {', '.join(media.VIDEO_EXTENSIONS)})"]
        if self.index_stats.failed:
            parts.append(f"{len(self.index_stats.failed)} failed to decode")
        if skipped_audio:
            parts.append(f"{len(skipped_audio)} have no audio track (pass allow_missing_audio=True to use silence)")
        if too_short:
            parts.append(f"{len(too_short)} are shorter than one clip of {need}")
        if self.short_audio_dropped:
            parts.append(f"{self.short_audio_dropped} clip(s) dropped for audio shorter than the clip (drop_short_audio)")
        return f"no usable clip in data dir {self.data_dir!r}: " + "; ".join(parts)

    # ---- items -------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.clips)

    def set_epoch(self, epoch: int) -> None:
        """Epoch used to vary flips when items are fetched by plain integer index."""
        self.epoch = int(epoch)

    def __getitem__(self, index: Union[int, Tuple[int, int]]) -> dict:
        if isinstance(index, (tuple, list)):
            idx, draw = int(index[0]), int(index[1])
            flip_keys = (self.seed, draw)
        else:
            idx = int(index)
            flip_keys = (self.seed, self.epoch, idx)
        if not -len(self) <= idx < len(self):
            raise IndexError(f"clip index {idx} out of range for {len(self)} clips")
        idx %= len(self)
        last_err = None
        for attempt in range(len(self)):
            file_idx, start = self.clips[(idx + attempt) % len(self)]
            path = self.files[file_idx][0]
            if path in self._bad_files:
                continue
            try:
                item = self.load_clip(file_idx, start)
            except (ValueError, OSError) as err:
                self._bad_files[path] = str(err)
                warnings.warn(f"excluding {path!r}: failed to decode ({err})")
                last_err = err
                continue
            if self.random_flip and _flip_bit(*flip_keys):
                item["video"] = item["video"].flip(-1)
            return item
        raise RuntimeError(f"every clip of this shard of {self.data_dir!r} failed to decode; last error: {last_err}")

    def load_clip(self, file_idx: int, start: int) -> dict:
        """Decode clip ``start`` (frame index at ``video_fps``) of file ``file_idx``; no augmentation."""
        path, probe = self.files[file_idx]
        label = self.file_labels[file_idx]
        frames_n, channels, height, width = self.video_size
        frames, audio = media.read_av_window(path, start / self.video_fps, frames_n, self.video_fps,
                                             self.audio_fps, probe=probe)
        video = frames_to_tensor(resize_and_pad(frames, height, width))
        if audio is None:
            audio = np.zeros(0, dtype=np.float32)
        audio = fit_length(audio, self.audio_size[1])
        item = {"video": video, "audio": torch.from_numpy(np.ascontiguousarray(audio))[None].float(),
                "path": path, "start": int(start)}
        if label is not None:
            item["label"] = int(label)
        return item


# ------------------------------------------------------------------------------------------------------
# batches for the training loop
# ------------------------------------------------------------------------------------------------------
def collate_av(items: List[dict]) -> Dict[str, torch.Tensor]:
    """Stack items into an AV batch ``{"video": [N, F, C, H, W], "audio": [N, C, L]}``, plus ``"label": [N]``
    int64 when the items carry labels (other keys dropped)."""
    batch = {"video": torch.stack([it["video"] for it in items]),
             "audio": torch.stack([it["audio"] for it in items])}
    if items and "label" in items[0]:
        batch["label"] = torch.tensor([int(it["label"]) for it in items], dtype=torch.long)
    return batch


class BatchStream:
    """Endless iterator of AV batches with an exact ``state_dict()`` / ``load_state_dict()``.

    The state counts the batches handed to the caller (not the ones prefetched by loader workers).
    """

    def __init__(self, dataset: Dataset, sampler: ResumableSampler, num_workers: int = 0):
        self.dataset, self.sampler, self.num_workers = dataset, sampler, int(num_workers)
        self._iter = None
        self._start = sampler.consumed
        self._yielded = 0

    def _make_iter(self):
        self.sampler.consumed = self._start + self._yielded * self.sampler.batch_size
        loader = DataLoader(self.dataset, batch_sampler=self.sampler, num_workers=self.num_workers,
                            collate_fn=collate_av, persistent_workers=False,
                            pin_memory=False)
        return iter(loader)

    def __iter__(self) -> Iterator[Dict[str, torch.Tensor]]:
        return self

    def __next__(self) -> Dict[str, torch.Tensor]:
        if self._iter is None:
            self._iter = self._make_iter()
        batch = next(self._iter)
        self._yielded += 1
        return batch

    def state_dict(self) -> Dict[str, int]:
        return self.sampler.state_at(self._start + self._yielded * self.sampler.batch_size)

    def load_state_dict(self, state: Dict[str, int]) -> None:
        self.sampler.load_state_dict(state)
        self._start, self._yielded, self._iter = self.sampler.consumed, 0, None


def load_data(*, data_dir: Optional[str] = None, batch_size: int, video_size: Sequence[int],
              audio_size: Sequence[int], video_fps: float = 10, audio_fps: int = 16000,
              frame_stride: Optional[int] = None, random_flip: bool = True, deterministic: bool = False,
              rank: int = 0, world_size: int = 1, num_workers: int = 0, seed: int = 0,
              cache_dir: Optional[str] = None, allow_missing_audio: bool = False, progress: bool = True,
              dataset: Optional[Dataset] = None, sampler_state: Optional[dict] = None,
              hum_level: float = 0.0, drop_short_audio: bool = False, class_cond: bool = False) -> BatchStream:
    """Endless stream of batches ``{"video": [N, F, 3, H, W], "audio": [N, 1, L]}`` for training.

    Data source, one of:
      * ``data_dir=PATH``: a ``ClipDataset`` over the folder, sharded by ``rank``/``world_size``;
      * ``data_dir="synthetic"`` or ``"synthetic:NUM"``: the in-memory synthetic dataset (``NUM`` clips,
        default 1024) generated with ``seed`` (``hum_level`` > 0 adds the generator's quiet colour-dependent hum
        under the bounce tones); sharded through the sampler;
      * ``dataset=...``: any map-style dataset with ``video``/``audio`` items; sharded through the sampler.
    ``deterministic=True`` keeps the file order and disables flips. ``sampler_state`` (from
    ``stream.state_dict()``) resumes the exact order. ``drop_short_audio`` / ``class_cond``: see
    :class:`ClipDataset` (folders only); with ``class_cond`` batches carry ``"label": [N]`` and
    ``stream.dataset.classes`` names the ids.
    """
    if (data_dir is None) == (dataset is None):
        raise ValueError("pass exactly one of data_dir (a folder, or 'synthetic[:NUM]') and dataset")
    sampler_rank, sampler_world = rank, world_size
    if dataset is None:
        text = os.fspath(data_dir)
        spec = parse_synthetic_spec(text, default_seed=seed)
        if spec is not None:
            from .synthetic import SyntheticAVDataset

            if class_cond:
                raise ValueError("class_cond needs a data folder with one sub-folder per class; the synthetic "
                                 "dataset has no labels")
            num, clip_seed = spec
            dataset = SyntheticAVDataset(num, video_size, audio_size, fps=video_fps, audio_rate=audio_fps,
                                         seed=clip_seed, random_flip=random_flip and not deterministic, hum_level=hum_level)
        else:
            if hum_level:
                raise ValueError(f"hum_level={hum_level} applies to the synthetic dataset only, not to the folder {text!r}")
            dataset = ClipDataset(text, video_size, audio_size, video_fps, audio_fps, frame_stride,
                                  random_flip=random_flip, deterministic=deterministic, rank=rank,
                                  world_size=world_size, cache_dir=cache_dir,
                                  allow_missing_audio=allow_missing_audio, progress=progress and rank == 0,
                                  seed=seed, drop_short_audio=drop_short_audio, class_cond=class_cond)
            sampler_rank, sampler_world = 0, 1  # already sharded
    sampler = ResumableSampler(len(dataset), batch_size, sampler_rank, sampler_world, seed=seed,
                               shuffle=not deterministic,
                               with_draw_ids=bool(getattr(dataset, "accepts_draw_ids", False)))
    if sampler_state is not None:
        sampler.load_state_dict(sampler_state)
    return BatchStream(dataset, sampler, num_workers)
