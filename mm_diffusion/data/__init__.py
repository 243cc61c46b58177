"""Data: media I/O (PyAV), the clip dataset over a folder of videos, the synthetic audio-visual dataset.

    media      read_av_window / read_video / probe_video / list_video_files,
               write_video (.mp4 H.264+AAC, .gif) / write_wav / write_frames_png
    media_checks  why a file does not open, codec priming, the mono downmix weights, rotation
    dataset    ClipDataset, load_data (endless resumable batch stream), collate_av
    sampler    ResumableSampler
    synthetic  generate_clip, SyntheticAVDataset, the analyser and its CLI
"""
from .dataset import BatchStream, ClipDataset, collate_av, load_data
from .media import (list_video_files, probe_video, read_av_window, read_video, write_frames_png, write_video,
                    write_wav)
from .sampler import ResumableSampler
from .synthetic import SyntheticAVDataset, generate_clip

__all__ = [
    "BatchStream", "ClipDataset", "ResumableSampler", "SyntheticAVDataset", "collate_av", "generate_clip",
    "list_video_files", "load_data", "probe_video", "read_av_window", "read_video", "write_frames_png",
    "write_video", "write_wav",
]
