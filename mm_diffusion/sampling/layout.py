"""Where samples go, which ones already exist, who makes the rest, and with which seeds.

Every sample has a global index ``k`` in ``[0, all_save_num)`` and a name ``<prefix>_sample_<k:06d>``
(``prefix`` = the sampler, e.g. ``dpm_solver``; ``dpm_solver++`` is spelled ``dpm_solver_pp``). Its files
("products") live in sub-folders of ``OUT/<model name>/``:

* unconditional (:func:`unconditional_products`): ``original/<name>.mp4`` (video + audio, or ``.gif``),
  ``audios/<name>.wav``, ``img/<name>_0000.png ...`` (one PNG per frame) and, with an SR model,
  ``sr_mp4/<name>.mp4`` (the super-resolved video with the same audio);
* conditional (:func:`conditional_products`): ``gt/`` (the condition clip), ``reconstruct/`` (generated +
  known modality), ``audios/``, ``img/`` (of the reconstruction) and, for audio-to-video with SR, ``sr/``.

Names depend only on ``k``, so they are unique across ranks and batches, and a sample is complete when every
one of its files exists (each is written under a temporary name and renamed). A re-run counts the complete
samples and makes only the missing ones, shared round-robin between the ranks: exactly ``all_save_num``
samples exist at the end, whatever the world size. Seeds derive from ``(--seed, k)`` (:func:`derive_seed`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, List, Sequence

import numpy as np
import torch

__all__ = ["Product", "OutputLayout", "unconditional_products", "conditional_products", "sampler_prefix",
           "plan_batches", "derive_seed", "make_generator"]


@dataclass(frozen=True)
class Product:
    """One file kind of a sample: ``subdir/<name>.<ext>``, or ``subdir/<name>_0000.png ...`` with ``frames > 0``."""

    subdir: str
    ext: str = "mp4"
    frames: int = 0

    def paths(self, root: str, name: str) -> List[str]:
        folder = os.path.join(root, self.subdir)
        if self.frames:
            return [os.path.join(folder, f"{name}_{i:04d}.{self.ext}") for i in range(self.frames)]
        return [os.path.join(folder, f"{name}.{self.ext}")]


def sampler_prefix(sample_fn: str) -> str:
    """File-name prefix for a sampler: ``dpm_solver++`` -> ``dpm_solver_pp``."""
    return sample_fn.replace("++", "_pp").replace("-", "_")


def unconditional_products(frames: int, save_type: str = "mp4", with_sr: bool = False) -> Dict[str, Product]:
    """The files of one unconditional sample (see the module docstring)."""
    if save_type not in ("mp4", "gif"):
        raise ValueError(f"--save_type must be 'mp4' or 'gif', got {save_type!r}")
    products = {
        "original": Product("original", save_type),
        "audio": Product("audios", "wav"),
        "frames": Product("img", "png", frames=frames),
    }
    if with_sr:
        products["sr"] = Product("sr_mp4", save_type)
    return products


def conditional_products(frames: int, save_type: str = "mp4", with_sr: bool = False) -> Dict[str, Product]:
    """The files of one conditional sample: gt/, reconstruct/, audios/, img/ (and sr/)."""
    if save_type not in ("mp4", "gif"):
        raise ValueError(f"--save_type must be 'mp4' or 'gif', got {save_type!r}")
    products = {
        "gt": Product("gt", save_type),
        "reconstruct": Product("reconstruct", save_type),
        "audio": Product("audios", "wav"),
        "frames": Product("img", "png", frames=frames),
    }
    if with_sr:
        products["sr"] = Product("sr", save_type)
    return products


class OutputLayout:
    """The files of the samples of one model under ``root`` (= ``OUT/<model name>``)."""

    def __init__(self, root: str, prefix: str, products: Dict[str, Product]):
        self.root = os.fspath(root)
        self.prefix = prefix
        self.products = dict(products)

    def name(self, index: int) -> str:
        """``<prefix>_sample_<index:06d>``."""
        return f"{self.prefix}_sample_{int(index):06d}"

    def paths(self, index: int) -> Dict[str, List[str]]:
        """Product name -> the file paths of sample ``index``."""
        name = self.name(index)
        return {key: prod.paths(self.root, name) for key, prod in self.products.items()}

    def path(self, index: int, product: str) -> str:
        """The single file of ``product`` (the folder prefix of a frame product) for sample ``index``."""
        prod = self.products[product]
        if prod.frames:
            return os.path.join(self.root, prod.subdir, self.name(index))
        return prod.paths(self.root, self.name(index))[0]

    def make_dirs(self) -> None:
        for prod in self.products.values():
            os.makedirs(os.path.join(self.root, prod.subdir), exist_ok=True)

    def _listing(self) -> Dict[str, set]:
        out = {}
        for prod in self.products.values():
            folder = os.path.join(self.root, prod.subdir)
            out[prod.subdir] = set(os.listdir(folder)) if os.path.isdir(folder) else set()
        return out

    def is_complete(self, index: int) -> bool:
        """True when every file of sample ``index`` exists and is non-empty."""
        return all(os.path.isfile(p) and os.path.getsize(p) > 0 for ps in self.paths(index).values() for p in ps)

    def complete(self, total: int) -> List[int]:
        """Indices in ``[0, total)`` whose files all exist (one directory listing per folder)."""
        listing = self._listing()
        done = []
        for index in range(total):
            ok = True
            for key, paths in self.paths(index).items():
                entries = listing[self.products[key].subdir]
                if not all(os.path.basename(p) in entries for p in paths):
                    ok = False
                    break
            if ok and self.is_complete(index):
                done.append(index)
        return done

    def missing(self, total: int) -> List[int]:
        """Indices in ``[0, total)`` that still have to be made, ascending."""
        done = set(self.complete(total))
        return [i for i in range(total) if i not in done]


def plan_batches(indices: Sequence[int], batch_size: int, rank: int, world_size: int) -> List[List[int]]:
    """This rank's share of ``indices`` (round-robin, ``indices[rank::world_size]``) cut into batches.

    Shares are disjoint and cover ``indices`` exactly; a rank's last batch may be shorter.
    """
    if batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {batch_size}")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    mine = list(indices)[rank::world_size]
    return [mine[i:i + batch_size] for i in range(0, len(mine), batch_size)]


def derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed from ``seed`` and integer keys (stable across runs, platforms and world sizes)."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *(int(k) & 0xFFFFFFFF for k in keys)]).generate_state(2)
    return int((int(state[0]) << 31) ^ int(state[1])) & 0x7FFFFFFFFFFFFFFF


def make_generator(seed: int, device="cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=torch.device(device))
    gen.manual_seed(int(seed))
    return gen
