"""The evaluation job behind ``python -m mm_diffusion.evaluate``: FVD, KVD and FAD between a reference and a
generated folder.

Both folders are plain folders of videos (mp4 with an audio track). Each is read through the clip
dataset in a fixed order without flips; the first ``--sample_num`` clips of each side are encoded
across all ranks (mpiexec or torchrun, see ``mm_diffusion.runs.dist``) and gathered, then rank 0
computes the metrics, prints a table and writes ``<output_dir>/metrics.json`` atomically.

* FVD: Fréchet distance of I3D features (default: the 400 Kinetics logits averaged over time).
* KVD: unbiased MMD^2 with the cubic polynomial kernel on the same I3D features.
* FAD: Fréchet distance of audio embeddings (AudioCLIP: raw 1024-d, reported x 1e4 as published;
  VGGish: 128-d, unscaled). The scale is printed and stored.
* AV-Align (audio onsets vs motion peaks, no weights) of each folder, see ``evaluation.av_align``.
* ``--protocol`` picks the I3D preprocessing / BatchNorm convention (default MM-Diffusion's);
  metrics.json records it and the sha256 of every weight file.
* With a synthetic reference folder (a JSON sidecar per clip), the synthetic analyser's AV-sync
  figures for the generated folder are reported as well.

Reference features are cached in ``--cache_dir``, keyed by the folder's content and the settings.
Nothing is ever downloaded: weight files are given with ``--i3d_path`` / ``--audio_encoder_path``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import time
from typing import Any, Dict, List, Optional, Sequence

from ..cli.errors import run_cli
from ..cli.flags import add_dict_to_argparser
from ..runs import dist
from ..runs.files import jsonable, write_json
from . import metrics
from .encoders import WEIGHT_FILES
from .features import FeatureSettings, cached_folder_features, extract_folder_features, file_identity

log = logging.getLogger("mm_diffusion.evaluate")

# Where the published weight files come from (the networks' table; for messages and --help). Nothing is fetched.
WEIGHT_SOURCES = {kind: f"{WEIGHT_FILES[kind]['file']} ({WEIGHT_FILES[kind]['source']})"
                  for kind in ("i3d", "audioclip", "vggish")}
AUDIO_ENCODERS = ("audioclip", "vggish", "none")
# Synthetic analyser figures shown in the table (all of them go to metrics.json).
SYNTHETIC_TABLE_KEYS = ("av_sync_f1", "av_sync_f1_pm1", "colour_pitch_agreement", "ball_detected_rate")


def default_cache_dir() -> str:
    base = os.environ.get("MM_DIFFUSION_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "mm_diffusion")
    return os.path.join(base, "eval_features")


def evaluate_defaults() -> Dict[str, Any]:
    """Flag defaults (flag names of the original ``multimodal_eval.sh`` plus ours)."""
    return dict(
        ref_dir=None,
        fake_dir=None,
        output_dir=None,
        sample_num=2048,
        batch_size=8,
        devices=None,
        i3d_path=None,
        video_features="logits",
        audio_encoder="audioclip",
        audio_encoder_path=None,
        audio_options="",
        cache_dir=default_cache_dir(),
        allow_fewer=False,
        video_size="16,3,224,224",
        video_fps=10,
        audio_fps=None,
        frame_stride=None,
        num_workers=2,
        fd_method="sqrtm",
        kvd_subsets=0,
        kvd_subset_size=1000,
        fad_scale=None,
        no_progress=False,
        protocol="mmdiffusion",
        av_align=True,
    )


FLAG_HELP = {
    "ref_dir": "folder of reference (real) videos; required",
    "fake_dir": "folder of generated videos; required",
    "output_dir": "where metrics.json is written (default: --fake_dir)",
    "sample_num": "clips taken from each folder, in the dataset's fixed order (<= 0: all); an error if a "
                  "folder has fewer, unless --allow_fewer",
    "batch_size": "clips per forward pass per process",
    "devices": "comma list of GPU ids; the process with local rank r uses devices[r %% len] "
               "(ignored without CUDA)",
    "i3d_path": "I3D weights: " + WEIGHT_SOURCES["i3d"],
    "video_features": "I3D features for FVD/KVD: 'logits' (400 logits averaged over time, as MM-Diffusion "
                      "reports) or 'pool' (1024-d pooled features)",
    "audio_encoder": "audio network for FAD: 'audioclip' (FAD x 1e4, as published), 'vggish' "
                     "(unscaled) or 'none' (no FAD, e.g. for silent videos)",
    "audio_encoder_path": "weights of --audio_encoder: audioclip: " + WEIGHT_SOURCES["audioclip"]
                          + "; vggish: " + WEIGHT_SOURCES["vggish"],
    "audio_options": "extra options of the audio encoder as key=value pairs, comma separated: audioclip: "
                     "waveform_scale (32768: int16 range as AudioCLIP was trained; 1.0: the published evaluator's "
                     "input scale); vggish: pca (true/false), pca_path, examples (first/mean), clip_seconds, final_relu",
    "cache_dir": "reference-feature cache (npz + json, keyed by folder content and settings); "
                 "'none' disables it (default: $MM_DIFFUSION_CACHE/eval_features or "
                 "~/.cache/mm_diffusion/eval_features)",
    "allow_fewer": "use all clips of a folder that has fewer than --sample_num instead of failing",
    "video_size": "F,C,H,W read per clip before the I3D preprocessing (which resizes the short side to "
                  "224 and centre-crops)",
    "video_fps": "frame rate clips are sampled at; clip duration = F / video_fps seconds",
    "audio_fps": "audio sample rate clips are read at (default: the audio encoder's own rate, "
                 "44100 for AudioCLIP, 16000 for VGGish)",
    "frame_stride": "passed to the clip dataset (default: its own)",
    "num_workers": "data-loading worker processes per rank",
    "fd_method": "Fréchet distance computation: 'sqrtm' (exact matrix square root of S1 S2, the usual "
                 "FID/FVD code path) or 'eigh' (same value via symmetric eigendecompositions, ~4x faster at 1024-d)",
    "kvd_subsets": "0: KVD over all clips at once; N > 0: mean over N random subsets (KID style)",
    "kvd_subset_size": "clips per KVD subset when --kvd_subsets > 0",
    "fad_scale": "factor applied to the audio Fréchet distance (default: the encoder's, 1e4 AudioCLIP, "
                 "1 VGGish)",
    "no_progress": "hide the progress bars",
    "protocol": "I3D convention for FVD/KVD: 'mmdiffusion' (MM-Diffusion/VideoGPT: short side to 224 bilinear, "
                "centre crop, BatchNorm eps 1e-5) or 'tf' (original TensorFlow FVD: frame stretched to 224x224 "
                "with TF1 bilinear, BatchNorm eps 1e-3); see docs/evaluation_networks.md",
    "av_align": "also report AV-Align (audio onsets vs optical-flow motion peaks, IoU within +-1 frame) of both "
                "folders; false to skip it",
}


def create_argparser() -> argparse.ArgumentParser:
    """Flags of ``python -m mm_diffusion.evaluate``, through the flag builder every job uses."""
    from .i3d_protocols import PROTOCOLS

    parser = argparse.ArgumentParser(
        prog="python -m mm_diffusion.evaluate",
        description="FVD / KVD (I3D) and FAD (AudioCLIP or VGGish) between two folders of videos. "
                    "Launch with mpiexec -n N or torchrun --nproc_per_node N to spread the work.",
    )
    return add_dict_to_argparser(
        parser, evaluate_defaults(), helps=FLAG_HELP,
        types={"audio_fps": int, "frame_stride": int, "fad_scale": float},
        choices={"video_features": ("logits", "pool"), "fd_method": metrics.FD_METHODS,
                 "audio_encoder": AUDIO_ENCODERS, "protocol": tuple(PROTOCOLS)})


# ---------------------------------------------------------------------------------------------
# pieces
# ---------------------------------------------------------------------------------------------
def parse_video_size(text: str) -> tuple:
    try:
        parts = tuple(int(p) for p in str(text).split(","))
    except ValueError:
        raise ValueError(f"--video_size {text!r}: expected four integers F,C,H,W such as 16,3,224,224") from None
    if len(parts) != 4 or min(parts) <= 0:
        raise ValueError(f"--video_size {text!r}: expected four positive integers F,C,H,W such as 16,3,224,224")
    return parts


def check_weights(flag: str, path: Optional[str], kind: str) -> str:
    """The weights path (a file, or a folder holding the expected file name), or FileNotFoundError
    naming the flag, the expected file and where the published one comes from."""
    expected = WEIGHT_FILES[kind]["file"]
    if path and os.path.isdir(path) and os.path.isfile(os.path.join(path, expected)):
        return path
    if path and os.path.isfile(path):
        return path
    where = "it was not given" if not path else f"{path!r} does not exist or is not a file"
    raise FileNotFoundError(
        f"{flag}: weights file missing ({where}). Expected {expected}, published at "
        f"{WEIGHT_FILES[kind]['source']}. Nothing is downloaded: fetch it yourself and pass its path with {flag}."
    )


def check_args(args: argparse.Namespace) -> None:
    for flag in ("ref_dir", "fake_dir"):
        value = getattr(args, flag)
        if not value:
            raise ValueError(f"--{flag} is required")
        if not os.path.isdir(value):
            raise FileNotFoundError(f"--{flag}: folder {value!r} does not exist or is not a folder")
    if os.path.realpath(args.ref_dir) == os.path.realpath(args.fake_dir):
        log.warning("--ref_dir and --fake_dir are the same folder; the distances will be ~0")
    if args.batch_size <= 0:
        raise ValueError(f"--batch_size must be >= 1, got {args.batch_size}")
    if args.sample_num is not None and 0 < args.sample_num < 2:
        raise ValueError(f"--sample_num must be >= 2 (or <= 0 for all clips), got {args.sample_num}")
    if args.kvd_subsets < 0 or args.kvd_subset_size < 2:
        raise ValueError(f"--kvd_subsets must be >= 0 and --kvd_subset_size >= 2, got "
                         f"{args.kvd_subsets} / {args.kvd_subset_size}")
    if args.num_workers < 0:
        raise ValueError(f"--num_workers must be >= 0, got {args.num_workers}")
    parse_options(args.audio_options)
    check_weights("--i3d_path", args.i3d_path, "i3d")
    if args.audio_encoder != "none":
        check_weights("--audio_encoder_path", args.audio_encoder_path, args.audio_encoder)


def parse_options(text: str) -> Dict[str, Any]:
    """``"a=1,b=true,c=name"`` -> ``{"a": 1, "b": True, "c": "name"}`` (values read as JSON, else kept as text)."""
    out: Dict[str, Any] = {}
    for item in (p.strip() for p in str(text or "").split(",")):
        if not item:
            continue
        if "=" not in item:
            raise ValueError(f"--audio_options: {item!r} is not key=value (e.g. waveform_scale=1.0,pca=true)")
        key, value = (x.strip() for x in item.split("=", 1))
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def load_encoders(args: argparse.Namespace, device):
    """(video_encoder, audio_encoder or None), built by the networks' loaders, in eval mode."""
    from .encoders import load_audio_encoder, load_video_encoder

    video_encoder = load_video_encoder(args.i3d_path, features=args.video_features, device=device,
                                       protocol=args.protocol)
    audio_encoder = None
    if args.audio_encoder != "none":
        audio_encoder = load_audio_encoder(args.audio_encoder, args.audio_encoder_path, device=device,
                                           **parse_options(args.audio_options))
    return video_encoder, audio_encoder


def compute_metrics(ref, fake, fad_scale: float = 1.0, kvd_subsets: int = 0,
                    kvd_subset_size: int = 1000, fd_method: str = "sqrtm") -> Dict[str, float]:
    """FVD / KVD from the ``video`` features, FAD (scaled) and FAD raw from the ``audio`` features."""
    out: Dict[str, float] = {}
    if ref.video is not None and fake.video is not None:
        out["fvd"] = metrics.frechet_distance(ref.video, fake.video, method=fd_method)
        out["kvd"] = metrics.kernel_distance(ref.video, fake.video, num_subsets=kvd_subsets,
                                             subset_size=kvd_subset_size)
    if ref.audio is not None and fake.audio is not None:
        raw = metrics.frechet_distance(ref.audio, fake.audio, method=fd_method)
        out["fad_raw"] = raw
        out["fad"] = raw * fad_scale
    out.update(av_align_metrics(ref, fake))
    return out


def av_align_metrics(ref, fake) -> Dict[str, float]:
    """``av_align`` / ``av_align_ref`` (motion-change peaks) and ``av_align_flow`` / ``av_align_flow_ref``
    (the published flow-magnitude peaks): folder means of the per-clip AV-Align rows, when computed."""
    from .av_align import summarise

    out: Dict[str, float] = {}
    for suffix, feats in (("", fake), ("_ref", ref)):
        summary = summarise(getattr(feats, "av_align", None))
        if summary is None:
            continue
        for signal, key in (("flow_change", "av_align"), ("flow", "av_align_flow")):
            if summary.get(signal) is not None:
                out[key + suffix] = summary[signal]
    return out


def synthetic_figures(ref_dir: str, fake_dir: str) -> Optional[Dict[str, Any]]:
    """The synthetic analyser's figures for ``fake_dir`` when ``ref_dir`` is a synthetic folder, else None."""
    try:
        from ..data import synthetic
    except Exception as exc:  # the data layer may be absent or broken; metrics still work
        log.debug("synthetic analyser unavailable: %s", exc)
        return None
    is_synth = getattr(synthetic, "is_synthetic_folder", None)
    analyse = getattr(synthetic, "analyse_folder", None)
    if is_synth is None or analyse is None:
        return None
    if not is_synth(ref_dir):
        return None
    # every clip of the generated folder (rates from its files); see docs/evaluation.md
    result = analyse(fake_dir, progress=False)
    return jsonable(result, nonfinite_as_none=True)


def write_json_atomic(path: str, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    write_json(path, obj, indent=2, newline=True)


def _av_align_rows(m: Dict[str, Any]) -> List[Sequence[str]]:
    rows = []
    for key, name, what in (("av_align", "AV-Align", "motion-change peaks"),
                            ("av_align_flow", "AV-Align flow", "flow-magnitude peaks (published)")):
        if key in m:
            ref = m.get(key + "_ref")
            rows.append((name, f"{m[key]:.4f}", f"audio onsets vs {what}" + (f"; reference {ref:.4f}" if ref is not None else "")))
    return rows


def format_table(result: Dict[str, Any]) -> str:
    """Human-readable table of ``result`` (the metrics.json content)."""
    m = result["metrics"]
    vf = result["video_encoder"]
    rows: List[Sequence[str]] = [("metric", "value", "what")]
    if "fvd" in m:
        rows.append(("FVD", f"{m['fvd']:.4f}", f"Fréchet distance, {vf['name']} {vf['features']} ({vf['feature_dim']}-d)"))
        kvd_note = "unbiased MMD^2, kernel (x.y/d + 1)^3" + (
            f", mean of {result['kvd_subsets']} subsets" if result.get("kvd_subsets") else ", all clips")
        rows.append(("KVD", f"{m['kvd']:.4f}", kvd_note))
    rows += _av_align_rows(m)
    if "fad" in m:
        af = result["audio_encoder"]
        rows.append(("FAD", f"{m['fad']:.4f}",
                     f"{af['name']} ({af['feature_dim']}-d) Fréchet distance x {af['fad_scale']:g} "
                     f"(unscaled {m['fad_raw']:.6g})"))
    synth = result.get("synthetic") or {}
    for key in SYNTHETIC_TABLE_KEYS:  # the headline figures; metrics.json holds them all
        value = synth.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            rows.append((f"synthetic {key}", f"{value:.4f}", f"analyser on --fake_dir ({synth.get('num_clips', '?')} clips)"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{result['num_ref']} reference clips ({result['ref_dir']}) vs "
             f"{result['num_fake']} generated clips ({result['fake_dir']})"]
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------
def _fad_scale(args, audio_encoder) -> float:
    """``--fad_scale``, else the audio encoder's own factor (1 without an audio encoder)."""
    if args.fad_scale is not None:
        return args.fad_scale
    return float(getattr(audio_encoder, "fad_scale", 1.0)) if audio_encoder is not None else 1.0


def _encoder_records(args, video_encoder, audio_encoder, ref, audio_fps: int, fad_scale: float) -> Dict[str, Any]:
    """The ``video_encoder`` / ``audio_encoder`` entries of metrics.json: names, sizes, settings, weight files."""
    video = {
        "name": str(getattr(video_encoder, "name", "i3d")),
        "features": args.video_features,
        "feature_dim": int(getattr(video_encoder, "feature_dim", ref.video.shape[1])),
        "settings": getattr(video_encoder, "settings", None),
        "weights": file_identity(args.i3d_path),
        "weights_sha256": _weights_sha256(video_encoder),
        "protocol": args.protocol,
    }
    audio = None if audio_encoder is None else {
        "name": str(getattr(audio_encoder, "name", args.audio_encoder)),
        "feature_dim": int(getattr(audio_encoder, "feature_dim", ref.audio.shape[1])),
        "sample_rate": int(getattr(audio_encoder, "sample_rate", audio_fps)),
        "fad_scale": fad_scale,
        "fad_scale_note": str(getattr(audio_encoder, "fad_scale_note", "")) if args.fad_scale is None
        else f"FAD x {fad_scale:g} (set by --fad_scale)",
        "options": parse_options(args.audio_options),
        "settings": getattr(audio_encoder, "settings", None),
        "weights": file_identity(args.audio_encoder_path),
        "weights_sha256": _weights_sha256(audio_encoder),
    }
    protocol = video_encoder.protocol.as_dict() if hasattr(video_encoder, "protocol") else args.protocol
    return {"video_encoder": video, "audio_encoder": audio, "protocol": protocol}


def _weights_sha256(encoder) -> Optional[str]:
    """sha256 of the weight file an encoder was loaded from (its ``settings['weights']``), if known."""
    weights = (getattr(encoder, "settings", None) or {}).get("weights") or {}
    return weights.get("sha256")


def _av_align_scorer(args):
    """The AV-Align per-clip scorer for the feature pass (None with ``--av_align false``)."""
    if not args.av_align:
        return None
    from .av_align import AVAlignScorer

    return AVAlignScorer()


def _av_align_record(scorer, ref, fake) -> Optional[Dict[str, Any]]:
    """The ``av_align`` entry of metrics.json: settings, definitions and both folders' summaries."""
    if scorer is None:
        return None
    from .av_align import summarise

    return {"settings": scorer.settings, "definitions": {
        "av_align": "IoU of audio onsets and motion-change peaks (flow_change), within +-1 frame",
        "av_align_flow": "IoU of audio onsets and flow-magnitude peaks (Yariv et al. 2023), within +-1 frame"},
        "fake": summarise(fake.av_align), "ref": summarise(ref.av_align)}


def _synthetic_or_none(args) -> Optional[Dict[str, Any]]:
    try:
        return synthetic_figures(args.ref_dir, args.fake_dir)
    except Exception as exc:  # never lose the main metrics because of the analyser
        log.warning("synthetic analyser failed on %s: %s", args.fake_dir, exc)
        return None


def run(args: argparse.Namespace) -> Optional[Dict[str, Any]]:
    """Evaluate as ``args`` say; returns the metrics.json content on rank 0, None on other ranks."""
    check_args(args)
    video_size = parse_video_size(args.video_size)
    info = dist.setup_dist(args.devices)
    video_encoder, audio_encoder = load_encoders(args, info.device)
    audio_fps = args.audio_fps or (int(audio_encoder.sample_rate) if audio_encoder is not None else 16000)
    settings = FeatureSettings(video_size=video_size, video_fps=args.video_fps, audio_fps=audio_fps,
                               frame_stride=args.frame_stride)
    fad_scale = _fad_scale(args, audio_encoder)
    cache_dir = None if str(args.cache_dir).lower() in ("", "none") else args.cache_dir
    progress = not args.no_progress and info.is_main
    scorer = _av_align_scorer(args)

    t0 = time.perf_counter()
    ref, cache_info = cached_folder_features(
        args.ref_dir, settings, video_encoder, audio_encoder, args.sample_num, args.allow_fewer,
        args.batch_size, args.num_workers, cache_dir, args.i3d_path,
        args.audio_encoder_path if audio_encoder is not None else None, progress, "--ref_dir", pair_scorer=scorer,
    )
    t1 = time.perf_counter()
    fake = extract_folder_features(
        args.fake_dir, settings, video_encoder, audio_encoder, args.sample_num, args.allow_fewer,
        args.batch_size, args.num_workers, None, progress, "--fake_dir", pair_scorer=scorer,
    )
    t2 = time.perf_counter()
    if not info.is_main:
        return None  # no collectives after this point: rank 0 alone computes and writes

    result: Dict[str, Any] = {
        "metrics": compute_metrics(ref, fake, fad_scale, args.kvd_subsets, args.kvd_subset_size, args.fd_method),
        "num_ref": len(ref), "num_fake": len(fake),
        "ref_dir": os.path.abspath(args.ref_dir), "fake_dir": os.path.abspath(args.fake_dir),
        "sample_num": args.sample_num, "settings": settings.as_dict(),
        **_encoder_records(args, video_encoder, audio_encoder, ref, audio_fps, fad_scale),
        "fad_scale": fad_scale if audio_encoder is not None else None,
        "fd_method": args.fd_method, "kvd_subsets": args.kvd_subsets,
        "kvd_subset_size": args.kvd_subset_size if args.kvd_subsets else None,
        "reference_cache": cache_info, "synthetic": _synthetic_or_none(args), "world_size": info.world_size,
        "av_align": _av_align_record(scorer, ref, fake),
        "seconds": {"reference": round(t1 - t0, 3), "generated": round(t2 - t1, 3)},
    }
    result = jsonable(result, nonfinite_as_none=True)
    out_path = os.path.join(args.output_dir or args.fake_dir, "metrics.json")
    write_json_atomic(out_path, result)
    print(format_table(result))
    print(f"wrote {out_path}")
    return result


def evaluate(argv: Optional[Sequence[str]] = None) -> Optional[Dict[str, Any]]:
    """``python -m mm_diffusion.evaluate``: parse ``argv``, evaluate; returns the result (rank 0) or None."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return run(create_argparser().parse_args(argv))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """:func:`evaluate` as a command: exit status 0, or 2 after a one-line error for bad input."""
    return run_cli(evaluate, argv)
