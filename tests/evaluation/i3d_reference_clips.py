"""Fixed synthetic clips for the real-weight I3D reference logits (numpy only, so the throwaway Flax
environment that recorded ``tests/fixtures/i3d_flax_reference.npz`` builds exactly the same pixels).

``reference_clip(name) -> uint8 [T, H, W, 3]``: smooth colour gradients moving over time plus a bright
disc crossing the frame, computed in float64 and rounded to 8 bits (so both sides agree bit for bit).
"""
import numpy as np

# name -> (frames, height, width)
CLIPS = {"A": (16, 224, 224), "C": (16, 48, 80)}


def reference_clip(name: str) -> np.ndarray:
    """uint8 ``[T, H, W, 3]`` for clip ``name`` (see ``CLIPS``)."""
    t_n, h, w = CLIPS[name]
    t = np.arange(t_n, dtype=np.float64)[:, None, None, None]
    y = (np.arange(h, dtype=np.float64) + 0.5)[None, :, None, None] / h
    x = (np.arange(w, dtype=np.float64) + 0.5)[None, None, :, None] / w
    c = np.arange(3, dtype=np.float64)[None, None, None, :]
    waves = 0.5 + 0.35 * np.sin(2 * np.pi * (1.5 * x + 0.7 * y * (c + 1) + 0.06 * t) + 2.0 * c)
    cx = 0.15 + 0.045 * t
    cy = 0.3 + 0.02 * t
    disc = np.clip(1.0 - np.sqrt((x - cx) ** 2 + (y - cy) ** 2) / 0.12, 0.0, 1.0) ** 0.5
    img = np.clip(waves * (1.0 - disc) + disc * np.array([0.95, 0.85, 0.2])[None, None, None, :], 0.0, 1.0)
    return np.round(img * 255.0).astype(np.uint8)


def to_unit_range(clip: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [-1, 1] (``u / 127.5 - 1``, as the data layer and MM-Diffusion's FVD do)."""
    return (clip.astype(np.float32) / 127.5 - 1.0).astype(np.float32)
