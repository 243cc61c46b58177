"""A tiny tree-map over "a dict of tensors or a bare tensor".

Diffusion maths is written once and applied leaf by leaf to an AV pair
``{"video": Tensor[N, F, C, H, W], "audio": Tensor[N, C, L]}`` or to a bare tensor
(``image: [N, C, H, W]`` for the super-resolution model).
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, Optional, Tuple, Union

import torch

Tree = Union[torch.Tensor, Dict[str, torch.Tensor]]

__all__ = [
    "Tree",
    "channel_dim",
    "is_dict",
    "tree_map",
    "tree_items",
    "tree_first",
    "split_channels",
    "randn",
    "randn_like",
    "randn_tree",
    "batch_size",
    "leaf_t",
]


def channel_dim(key: Optional[str]) -> int:
    """The channel axis of a leaf: 2 for ``"video"`` ([N, F, C, H, W]), else 1.

    Audio ``[N, C, L]``, images ``[N, C, H, W]`` and a bare tensor (``key=None``) all keep
    channels on axis 1.
    """
    return 2 if key == "video" else 1


def is_dict(tree: Any) -> bool:
    """True when ``tree`` is a mapping of modality name -> tensor."""
    return isinstance(tree, dict)


def tree_items(tree: Tree) -> Iterator[Tuple[Optional[str], torch.Tensor]]:
    """Yield ``(key, leaf)`` pairs; a bare tensor yields ``(None, tensor)``."""
    if is_dict(tree):
        yield from tree.items()
    else:
        yield None, tree


def tree_first(tree: Tree) -> torch.Tensor:
    """Any one leaf (the first), e.g. to read the batch size, device or dtype."""
    return next(iter(tree.values())) if is_dict(tree) else tree


def _check_same_structure(trees: Tuple[Any, ...]) -> None:
    if not is_dict(trees[0]):
        for other in trees[1:]:
            if is_dict(other):
                raise ValueError("tree_map: mixing a bare tensor with a dict of tensors")
        return
    keys = set(trees[0].keys())
    for other in trees[1:]:
        if not is_dict(other):
            raise ValueError(f"tree_map: expected a dict with keys {sorted(keys)}, got a bare {type(other).__name__}")
        if set(other.keys()) != keys:
            raise ValueError(f"tree_map: key mismatch {sorted(keys)} vs {sorted(other.keys())}")


def tree_map(fn: Callable[..., Any], *trees: Any, with_key: bool = False) -> Any:
    """Apply ``fn`` leaf-wise over trees of identical structure.

    ``tree_map(f, a, b)`` returns ``{k: f(a[k], b[k])}`` for dicts and ``f(a, b)`` for bare
    tensors. With ``with_key=True`` the key (``None`` for a bare tensor) is passed first:
    ``f(key, a[k], b[k])``. Raises ``ValueError`` when the structures differ.
    """
    if not trees:
        raise ValueError("tree_map needs at least one tree")
    _check_same_structure(trees)
    if is_dict(trees[0]):
        if with_key:
            return {k: fn(k, *(t[k] for t in trees)) for k in trees[0]}
        return {k: fn(*(t[k] for t in trees)) for k in trees[0]}
    return fn(None, *trees) if with_key else fn(*trees)


def split_channels(tree: Tree) -> Tuple[Tree, Tree]:
    """Split every leaf in two halves along its channel axis (learned-sigma model outputs).

    ``video: [N, F, 2C, H, W] -> ([N, F, C, H, W], [N, F, C, H, W])``,
    ``audio: [N, 2C, L] -> ([N, C, L], [N, C, L])``.
    """

    def _split(key, leaf):
        dim = channel_dim(key)
        if leaf.dim() <= dim or leaf.shape[dim] % 2:
            raise ValueError(
                f"learned-sigma output {key or 'tensor'} of shape {tuple(leaf.shape)} must have an even "
                f"number of channels on axis {dim} (twice the data channels)"
            )
        return torch.chunk(leaf, 2, dim=dim)

    pairs = tree_map(_split, tree, with_key=True)
    if is_dict(pairs):
        return {k: v[0] for k, v in pairs.items()}, {k: v[1] for k, v in pairs.items()}
    return pairs[0], pairs[1]


def randn(shape, *, device=None, dtype=torch.float32, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``torch.randn`` that accepts a generator on another device (draws there, then moves)."""
    device = torch.device(device) if device is not None else (generator.device if generator is not None else None)
    if generator is not None and device is not None and generator.device != device:
        return torch.randn(tuple(shape), generator=generator, device=generator.device, dtype=dtype).to(device)
    return torch.randn(tuple(shape), generator=generator, device=device, dtype=dtype)


def randn_like(tree: Tree, generator: Optional[torch.Generator] = None) -> Tree:
    """Standard normal noise with the structure, shape, dtype and device of ``tree``."""
    return tree_map(lambda x: randn(x.shape, generator=generator, device=x.device, dtype=x.dtype), tree)


def randn_tree(shapes: Any, *, device=None, dtype=torch.float32, generator: Optional[torch.Generator] = None) -> Tree:
    """Noise from shapes: a dict ``{"video": (N, F, C, H, W), "audio": (N, C, L)}`` or a tuple."""
    if is_dict(shapes):
        return {k: randn(s, generator=generator, device=device, dtype=dtype) for k, s in shapes.items()}
    return randn(shapes, generator=generator, device=device, dtype=dtype)


def batch_size(tree: Tree) -> int:
    """The common leading (batch) size N; raises ``ValueError`` if the leaves disagree."""
    sizes = {k: int(v.shape[0]) for k, v in tree_items(tree)}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"all modalities need the same batch size, got {sizes}")
    return next(iter(sizes.values()))


def leaf_t(t: Any, key: Optional[str]) -> Any:
    """The timesteps of leaf ``key``: ``t[key]`` for per-modality timesteps (a dict), else ``t`` itself."""
    if is_dict(t):
        if key not in t:
            raise ValueError(f"per-modality timesteps {sorted(t)} have no entry for {key or 'a bare tensor'!r}")
        return t[key]
    return t
