"""Feature networks for FVD / KVD (I3D) and FAD (AudioCLIP audio branch, VGGish): loading and preprocessing.

Public API (relied on by :mod:`mm_diffusion.evaluation.job`):

* ``load_video_encoder(path, features="logits", device="cpu", resize_to=224) -> VideoEncoder``
  ``VideoEncoder(video: [N, F, C, H, W] in [-1, 1]) -> [N, 400]`` (logits) or ``[N, 1024]`` (pooled).
* ``load_audio_encoder(name, path, device="cpu", **options) -> AudioEncoder`` with ``name`` in
  ``AUDIO_ENCODERS``; ``AudioEncoder(audio: [N, C, L] or [N, L], sample_rate) -> [N, D]``.

Random-weight files in these formats, for tests and examples, are written by :mod:`mm_diffusion.testing.encoders`.

Every encoder is an ``nn.Module`` in eval mode (BatchNorm uses its running statistics), runs without
gradients, returns float32 features on its own device, and has ``name``, ``feature_dim`` and a
JSON-able ``settings`` dict (include it in any cache key). Weight files are read with
``torch.load(weights_only=True)``; nothing is ever downloaded.
"""
from __future__ import annotations

import importlib
import logging
import numbers
import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Dict, Mapping, Optional, Union

import torch
from torch import nn

from ..runs.checkpoint import file_sha256
from .audio_features import fit_length, resample, to_mono
from .audioclip import ESResNeXtFBSP
from .i3d import InceptionI3d
from .i3d_protocols import DEFAULT_PROTOCOL, get_protocol, prepare_clips
from .vggish import VGGISH_EXAMPLE_SAMPLES, VGGish, waveform_to_examples

__all__ = [
    "VideoEncoder", "AudioEncoder", "AudioCLIPEncoder", "VGGishEncoder",
    "load_video_encoder", "load_audio_encoder",
    "VIDEO_FEATURES", "AUDIO_ENCODERS", "WEIGHT_FILES",
]

log = logging.getLogger(__name__)
PathLike = Union[str, os.PathLike]

VIDEO_FEATURES = ("logits", "pool")
AUDIO_ENCODERS = ("audioclip", "vggish")

# Where each published weight file comes from (text only: nothing here is fetched).
WEIGHT_FILES: Dict[str, Dict[str, str]] = {
    "i3d": {
        "flag": "--i3d_path",
        "file": "i3d_pretrained_400.pt",
        "source": "the VideoGPT / MM-Diffusion FVD I3D (Kinetics-400), Google Drive id 1mQK8KD8G6UWRa5t87SRMm5PVXtlpneJT "
                  "(https://drive.google.com/uc?id=1mQK8KD8G6UWRa5t87SRMm5PVXtlpneJT); a TorchScript I3D detector such as "
                  "StyleGAN-V's i3d_torchscript.pt (https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt) also works",
    },
    "audioclip": {
        "flag": "--audio_encoder_path",
        "file": "AudioCLIP-Full-Training.pt",
        "source": "https://github.com/AndreyGuzhov/AudioCLIP/releases/download/v0.1/AudioCLIP-Full-Training.pt",
    },
    "vggish": {
        "flag": "--audio_encoder_path",
        "file": "vggish-10086976.pth",
        "source": "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth",
    },
    "vggish_pca": {
        "flag": "--audio_encoder_path (PCA file next to it)",
        "file": "vggish_pca_params-970ea276.pth",
        "source": "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish_pca_params-970ea276.pth "
                  "(or Google's vggish_pca_params.npz from https://storage.googleapis.com/audioset/vggish_pca_params.npz)",
    },
}


# ------------------------------------------------------------------------------------------------
# Files
# ------------------------------------------------------------------------------------------------
def _resolve_weight_file(path: Optional[PathLike], kind: str) -> Path:
    """Return the weight file for ``kind`` (a file, or the expected file name inside a folder), else raise
    FileNotFoundError naming the flag, the expected file and where the published one comes from."""
    info = WEIGHT_FILES[kind]
    candidate = None if path is None or str(path) == "" else Path(path).expanduser()
    if candidate is not None and candidate.is_dir():
        candidate = candidate / info["file"]
    if candidate is None or not candidate.is_file():
        where = "no path was given" if candidate is None else f"'{candidate}' does not exist or is not a file"
        raise FileNotFoundError(
            f"{info['flag']}: weight file not found ({where}). Expected '{info['file']}' (or a folder holding it). "
            f"The published file comes from {info['source']}. Nothing is downloaded automatically: fetch it "
            f"yourself and pass its path with {info['flag']}.")
    return candidate


def _describe_file(path: Path) -> Dict[str, Union[str, int]]:
    """Name, size and sha256 of a weight file (part of ``settings``, hence of feature-cache keys)."""
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": file_sha256(path)}


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip with a ``code/`` folder; a ``torch.save`` zip has only ``data.pkl`` + tensors."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    return any("/code/" in n or n.endswith("constants.pkl") for n in names)


_NUMPY_GLOBALS = (
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
    "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
    "numpy.ndarray", "numpy.dtype",
)


def _import_global(qualname: str):
    module, _, attr = qualname.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def _torch_load(path: Path) -> object:
    """``torch.load(weights_only=True)``; files holding numpy arrays (torchvggish's PCA file) are read by
    allow-listing only numpy's array/dtype reconstructors, which run no code from the file."""
    if path.suffix == ".safetensors":  # a flat tensor file: no pickle at all
        from safetensors.torch import load_file
        return load_file(str(path), device="cpu")

    def load():
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:  # legacy (non-zip) format cannot be memory-mapped
            if "mmap" not in str(err) and "zip" not in str(err):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)

    try:
        return load()
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"'{path}' is not a readable torch weight file ({type(err).__name__}: {err})") from err
    except pickle.UnpicklingError as err:
        needed = torch.serialization.get_unsafe_globals_in_checkpoint(path) if zipfile.is_zipfile(path) else []
        ok = needed and all(n in _NUMPY_GLOBALS or (n.startswith("numpy.dtypes.") and n.endswith("DType"))
                            for n in needed)
        if not ok:
            raise ValueError(f"'{path}' cannot be read safely with torch.load(weights_only=True) "
                             f"(it needs {needed or 'non-tensor objects'}): {err}") from err
        import numpy as np

        allowed = [_import_global(n) for n in needed]
        allowed += [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
        with torch.serialization.safe_globals(allowed):
            return load()


def _as_state_dict(obj: object, path: Path) -> Dict[str, torch.Tensor]:
    """Unwrap ``{"state_dict": ...}`` / ``{"model": ...}`` containers and a DataParallel ``module.`` prefix."""
    if isinstance(obj, Mapping) and len(obj) == 1:
        (key, inner), = obj.items()
        if key in ("state_dict", "model", "model_state_dict") and isinstance(inner, Mapping):
            obj = inner
    if not isinstance(obj, Mapping):
        raise ValueError(f"'{path}' does not hold a state_dict (a mapping of names to tensors); got {type(obj).__name__}")
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _to_tensor(value) -> torch.Tensor:
    return value if torch.is_tensor(value) else torch.as_tensor(value)


def _check_and_load(module: nn.Module, state: Mapping[str, torch.Tensor], what: str, path: Path) -> None:
    """Strict load with an informative error. Missing ``*.num_batches_tracked`` entries (files saved by very old
    torch) are filled with 0; they do not affect eval-mode outputs."""
    expected = module.state_dict()
    state = {k: _to_tensor(v) for k, v in state.items()}
    for key in expected:
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
                 for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or misshaped:
        def show(items):
            return ", ".join(items[:10]) + (f", ... ({len(items)} in all)" if len(items) > 10 else "")
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {show(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {show(unexpected)}")
        if misshaped:
            parts.append(f"mis-shaped keys ({len(misshaped)}): {show(misshaped)}")
        raise ValueError(f"'{path}' is not a valid {what} weight file: " + "; ".join(parts))
    module.load_state_dict(state, strict=True)


def _device(device) -> torch.device:
    return torch.device(device) if device is not None else torch.device("cpu")


# ------------------------------------------------------------------------------------------------
# Video: I3D
# ------------------------------------------------------------------------------------------------
class VideoEncoder(nn.Module):
    """I3D features of 16-frame clips for FVD / KVD.

    ``forward(video: [N, F, C, H, W] float in [-1, 1]) -> [N, feature_dim]`` float32 on the encoder's device.
    Preprocessing (``preprocess``): the first ``num_frames`` (16) frames, resized as ``protocol`` says
    (``i3d_protocols``; default ``mmdiffusion``: short side to ``resize_to`` (224) bilinearly, long side
    ``ceil(long * resize_to / short)``, centre crop ``resize_to x resize_to``); values stay in [-1, 1].
    ``features="logits"``: the 400 Kinetics logits averaged over time (MM-Diffusion / VideoGPT FVD);
    ``features="pool"``: the 1024-d pooled Mixed_5c features (state_dict I3D only).
    """

    num_frames = 16

    def __init__(self, network: nn.Module, features: str = "logits", resize_to: int = 224,
                 torchscript: bool = False, weights: Optional[Dict] = None, protocol: str = DEFAULT_PROTOCOL):
        super().__init__()
        self.protocol = get_protocol(protocol)  # resize convention (+ the network's BatchNorm eps)
        if features not in VIDEO_FEATURES:
            raise ValueError(f"features must be one of {VIDEO_FEATURES}, got {features!r}")
        if torchscript and features != "logits":
            raise ValueError("features='pool' needs the i3d_pretrained_400.pt state_dict; a TorchScript detector "
                             "only exposes its 400 logits (use features='logits')")
        if int(resize_to) < 1:
            raise ValueError(f"resize_to must be a positive number of pixels, got {resize_to}")
        self.network = network.eval()
        self.features = features
        self.resize_to = int(resize_to)
        self.torchscript = torchscript
        self.name = "i3d_torchscript" if torchscript else "i3d"
        self.feature_dim = 400 if features == "logits" else InceptionI3d.feature_dim
        self._weights = weights or {}
        self._script_kwargs: Dict[str, bool] = {}
        if torchscript:
            wanted = {"rescale": False, "resize": False, "return_features": True}
            try:
                names = {a.name for a in network.forward.schema.arguments}
            except AttributeError:
                names = set()
            self._script_kwargs = {k: v for k, v in wanted.items() if k in names}
        self.requires_grad_(False)
        self.train(False)

    @property
    def device(self) -> torch.device:
        for p in self.network.parameters():
            return p.device
        return torch.device("cpu")

    @property
    def settings(self) -> Dict:
        return {"name": self.name, "features": self.features, "feature_dim": self.feature_dim,
                "num_frames": self.num_frames, "resize_to": self.resize_to, "protocol": self.protocol.as_dict(),
                "bn_eps": None if self.torchscript else getattr(self.network, "bn_eps", None),
                "batchnorm": "eval", "weights": self._weights}

    def train(self, mode: bool = True):  # BatchNorm always in eval mode
        return super().train(False)

    def preprocess(self, video: torch.Tensor) -> torch.Tensor:
        """``video: [N, F, C, H, W]`` in [-1, 1], F >= 16, C = 3 -> ``[N, 3, 16, S, S]`` (S = resize_to) on the encoder's device.

        Raises ValueError for another rank, C != 3, fewer than 16 frames or a non-float tensor.
        """
        if not torch.is_tensor(video) or video.dim() != 5:
            shape = tuple(video.shape) if torch.is_tensor(video) else type(video).__name__
            raise ValueError(f"video must be a tensor [N, F, C, H, W], got {shape}")
        n, f, c, h, w = video.shape
        if c != 3:
            raise ValueError(f"video must have 3 colour channels in dim 2 ([N, F, C, H, W]), got C={c} (shape {tuple(video.shape)})")
        if f < self.num_frames:
            raise ValueError(f"I3D features need at least {self.num_frames} frames per clip, got F={f}; "
                             f"generate/read clips of >= {self.num_frames} frames (only the first {self.num_frames} are used)")
        if not video.is_floating_point():
            raise ValueError(f"video must be float in [-1, 1], got dtype {video.dtype}")
        x = video[:, :self.num_frames].to(self.device, torch.float32)
        return prepare_clips(x, self.protocol, self.resize_to, self.num_frames)

    @torch.no_grad()
    def forward(self, video: torch.Tensor) -> torch.Tensor:
        x = self.preprocess(video)
        if self.torchscript:
            out = self.network(x, **self._script_kwargs)
            if out.dim() == 3:  # [N, classes, time]
                out = out.mean(dim=2)
            if out.dim() != 2 or out.shape[1] != self.feature_dim:
                raise ValueError(f"TorchScript I3D returned shape {tuple(out.shape)}, expected [N, {self.feature_dim}]")
        elif self.features == "logits":
            out = self.network(x)
        else:
            out = self.network.features(x)
        return out.float()


def load_video_encoder(path: Optional[PathLike], features: str = "logits", device="cpu",
                       resize_to: int = 224, protocol: str = DEFAULT_PROTOCOL) -> VideoEncoder:
    """Load I3D from ``path`` (``i3d_pretrained_400.pt`` state_dict, strict; or a TorchScript I3D detector).

    ``path`` may be a folder holding ``i3d_pretrained_400.pt``. ``resize_to`` < 224 is for fast tests only
    (the published features use 224). ``protocol`` (``i3d_protocols.PROTOCOLS``): resize convention and,
    for a state dict, BatchNorm eps (default MM-Diffusion's). ``path`` may also be a ``.safetensors`` file
    (``python -m mm_diffusion.evaluation.weights``). Raises FileNotFoundError (names ``--i3d_path``) or ValueError.
    """
    proto = get_protocol(protocol)
    if features not in VIDEO_FEATURES:
        raise ValueError(f"features must be one of {VIDEO_FEATURES}, got {features!r}")
    file = _resolve_weight_file(path, "i3d")
    dev = _device(device)
    weights = _describe_file(file)
    if _is_torchscript(file):
        # A TorchScript archive holds a compiled graph; torch.jit.load runs it in the TorchScript
        # interpreter (no Python code from the file is executed).
        with warnings.catch_warnings():  # torch >= 2.10 marks TorchScript deprecated; the format still loads
            warnings.simplefilter("ignore", DeprecationWarning)
            network = torch.jit.load(str(file), map_location=dev)
        weights["format"] = "torchscript"
        return VideoEncoder(network, features, resize_to, torchscript=True, weights=weights, protocol=protocol).to(dev)
    network = InceptionI3d(400, in_channels=3, bn_eps=proto.bn_eps)
    _check_and_load(network, _as_state_dict(_torch_load(file), file), "I3D (i3d_pretrained_400.pt)", file)
    weights["format"] = "state_dict"
    return VideoEncoder(network, features, resize_to, weights=weights, protocol=protocol).to(dev)


# ------------------------------------------------------------------------------------------------
# Audio: shared wrapper
# ------------------------------------------------------------------------------------------------
class AudioEncoder(nn.Module):
    """Base class: ``forward(audio: [N, C, L] or [N, L], sample_rate: int) -> [N, feature_dim]`` float32.

    ``preprocess`` averages channels to mono, resamples from ``sample_rate`` to ``self.sample_rate``
    (``scipy.signal.resample_poly``) and crops / zero-pads at the end to ``self.clip_samples``.
    ``sample_rate`` is required: audio read at the wrong rate is a known defect of the published evaluator.
    """

    name = "audio"
    sample_rate = 16000
    clip_samples = 16000
    feature_dim = 0
    fad_scale = 1.0
    fad_scale_note = "FAD unscaled"

    def __init__(self, network: nn.Module, weights: Optional[Dict] = None):
        super().__init__()
        self.network = network.eval()
        self._weights = weights or {}
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True):  # BatchNorm always in eval mode
        return super().train(False)

    @property
    def device(self) -> torch.device:
        for p in self.network.parameters():
            return p.device
        return torch.device("cpu")

    @property
    def settings(self) -> Dict:
        return {"name": self.name, "feature_dim": self.feature_dim, "sample_rate": self.sample_rate,
                "clip_samples": self.clip_samples, "mono": "channel mean", "resampler": "scipy.signal.resample_poly",
                "fad_scale": self.fad_scale, "batchnorm": "eval", "weights": self._weights, **self.extra_settings()}

    def extra_settings(self) -> Dict:
        return {}

    def preprocess(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """``[N, C, L]`` / ``[N, L]`` at ``sample_rate`` -> mono ``[N, clip_samples]`` at ``self.sample_rate`` (float32, encoder device)."""
        integral = isinstance(sample_rate, numbers.Integral) or (
            isinstance(sample_rate, numbers.Real) and float(sample_rate).is_integer())
        if isinstance(sample_rate, bool) or not integral or int(sample_rate) <= 0:
            raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
        wave = to_mono(audio).float()
        wave = resample(wave, int(sample_rate), self.sample_rate)
        return fit_length(wave, self.clip_samples).to(self.device)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def forward(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        return self.embed(self.preprocess(audio, sample_rate)).float()


class AudioCLIPEncoder(AudioEncoder):
    """AudioCLIP audio embedding (raw 1024-d ``fc`` output, no L2 normalisation) of 1.6-s clips at 44.1 kHz.

    ``waveform_scale`` (default 32768) maps [-1, 1] audio to the int16 range AudioCLIP was trained on. The
    published MM-Diffusion evaluator feeds [-1, 1] unscaled (so the network sees ~3e-5 amplitudes) and
    leaves BatchNorm in training mode; pass ``waveform_scale=1.0`` to reproduce the input scale (BatchNorm
    stays in eval mode here, see docs/evaluation_networks.md). FAD is reported x 1e4 as MM-Diffusion publishes.
    """

    name = "audioclip"
    sample_rate = 44100
    clip_samples = 70560  # int(44100 * 1.6)
    feature_dim = 1024
    fad_scale = 1e4
    fad_scale_note = ("FAD x 1e4 (AudioCLIP embeddings), the scale MM-Diffusion publishes "
                      "(its code used x 1e3 before commit 3766a2f)")

    def __init__(self, network: ESResNeXtFBSP, weights: Optional[Dict] = None, waveform_scale: float = 32768.0):
        super().__init__(network, weights)
        self.waveform_scale = float(waveform_scale)

    def extra_settings(self) -> Dict:
        return {"waveform_scale": self.waveform_scale, "embedding": "raw fc output (1024)"}

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        """``wave: [N, 70560]`` mono at 44.1 kHz in [-1, 1] -> ``[N, 1024]``."""
        return self.network(wave[:, None] * self.waveform_scale)


class VGGishEncoder(AudioEncoder):
    """VGGish 128-d embedding at 16 kHz, the common FAD definition (unscaled).

    ``examples="first"`` (default): each clip is cropped / zero-padded to 15600 samples (0.975 s), which
    gives exactly one 0.96-s example (a 1.6-s clip yields only this one example in torchvggish too).
    ``examples="mean"``: the clip is kept whole (``clip_samples`` = ``clip_seconds`` * 16000, default 1.6 s)
    and the embeddings of its complete 0.96-s examples are averaged.
    ``pca=True`` applies torchvggish's post-processor (PCA whitening, clip, 8-bit quantisation) and needs the
    PCA file; ``final_relu`` keeps torchvggish's last ReLU (the common FAD tool drops it).
    """

    name = "vggish"
    sample_rate = 16000
    feature_dim = 128
    fad_scale = 1.0
    fad_scale_note = "FAD unscaled (VGGish embeddings, the common FAD definition)"

    def __init__(self, network: VGGish, weights: Optional[Dict] = None, examples: str = "first",
                 clip_seconds: float = 1.6, pca: bool = False):
        super().__init__(network, weights)
        if examples not in ("first", "mean"):
            raise ValueError(f"examples must be 'first' or 'mean', got {examples!r}")
        self.examples = examples
        self.pca = bool(pca)
        if examples == "first":
            self.clip_samples = VGGISH_EXAMPLE_SAMPLES
        else:
            self.clip_samples = max(VGGISH_EXAMPLE_SAMPLES, int(round(clip_seconds * self.sample_rate)))

    def extra_settings(self) -> Dict:
        return {"examples": self.examples, "pca": self.pca, "final_relu": bool(self.network.final_relu)}

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        """``wave: [N, clip_samples]`` mono at 16 kHz -> ``[N, 128]``."""
        ex = waveform_to_examples(wave)  # [N, E, 96, 64]
        n, e = ex.shape[:2]
        if self.examples == "first":
            ex, e = ex[:, :1], 1
        emb = self.network(ex.reshape(n * e, 1, 96, 64).float())
        if self.pca:
            emb = self.network.pproc(emb)
        return emb.view(n, e, -1).mean(dim=1)


# ------------------------------------------------------------------------------------------------
# Audio loaders
# ------------------------------------------------------------------------------------------------
def _load_audioclip(path: Optional[PathLike], device, waveform_scale: float = 32768.0) -> AudioCLIPEncoder:
    file = _resolve_weight_file(path, "audioclip")
    state = _as_state_dict(_torch_load(file), file)
    audio = {k[len("audio."):]: v for k, v in state.items() if k.startswith("audio.")}
    if audio:
        unused = sorted(k for k in state if not k.startswith("audio."))
        if unused:
            log.debug("AudioCLIP: %d entries of %s are not on the FAD path and were ignored: %s",
                      len(unused), file.name, ", ".join(unused))
    else:  # a file holding the bare audio network
        audio = state
    network = ESResNeXtFBSP()
    _check_and_load(network, audio, "AudioCLIP audio-branch (audio.* of AudioCLIP-Full-Training.pt)", file)
    weights = _describe_file(file)
    return AudioCLIPEncoder(network, weights, waveform_scale=waveform_scale).to(_device(device))


def _load_vggish(path: Optional[PathLike], device, pca: bool = False, pca_path: Optional[PathLike] = None,
                 examples: str = "first", clip_seconds: float = 1.6, final_relu: bool = False) -> VGGishEncoder:
    file = _resolve_weight_file(path, "vggish")
    state = _as_state_dict(_torch_load(file), file)
    network = VGGish(final_relu=final_relu)
    vgg_part = nn.ModuleDict({"features": network.features, "embeddings": network.embeddings})
    pca_in_file = {k[len("pproc."):]: v for k, v in state.items() if k.startswith("pproc.")}
    state = {k: v for k, v in state.items() if not k.startswith("pproc.")}
    _check_and_load(vgg_part, state, "VGGish (vggish-10086976.pth)", file)
    weights = _describe_file(file)
    if pca:
        if pca_in_file and pca_path is None:
            pca_state, pca_file = pca_in_file, file
        else:
            if pca_path is None:
                pca_path = file.parent / WEIGHT_FILES["vggish_pca"]["file"]
            pca_file = _resolve_weight_file(pca_path, "vggish_pca")
            if pca_file.suffix == ".npz":
                import numpy as np
                with np.load(pca_file, allow_pickle=False) as npz:
                    pca_state = {k: npz[k] for k in npz.files}
            else:
                pca_state = _as_state_dict(_torch_load(pca_file), pca_file)
        pca_state = {k: _to_tensor(v).to(torch.float32) for k, v in pca_state.items()}
        if "pca_means" in pca_state:
            pca_state["pca_means"] = pca_state["pca_means"].reshape(-1, 1)
        _check_and_load(network.pproc, pca_state, "VGGish PCA (vggish_pca_params-970ea276.pth)", pca_file)
        weights["pca"] = _describe_file(pca_file)
    return VGGishEncoder(network, weights, examples=examples, clip_seconds=clip_seconds, pca=pca).to(_device(device))


def load_audio_encoder(name: str, path: Optional[PathLike], device="cpu", **options) -> AudioEncoder:
    """Load the FAD audio encoder ``name`` (``"audioclip"`` or ``"vggish"``) from ``path`` (file or folder).

    Options: audioclip: ``waveform_scale=32768.0``; vggish: ``pca=False``, ``pca_path=None`` (default: the
    PCA file name next to ``path``), ``examples="first"``, ``clip_seconds=1.6``, ``final_relu=False``.
    Raises ValueError (unknown name / option, bad file) or FileNotFoundError (names ``--audio_encoder_path``).
    """
    if name not in AUDIO_ENCODERS:
        raise ValueError(f"unknown audio encoder {name!r}; valid: {', '.join(AUDIO_ENCODERS)}")
    loader = _load_audioclip if name == "audioclip" else _load_vggish
    try:
        return loader(path, device, **options)
    except TypeError as err:
        if "unexpected keyword" in str(err):
            raise ValueError(f"invalid option for audio encoder {name!r}: {err}") from None
        raise
