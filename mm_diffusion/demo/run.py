"""``python -m mm_diffusion.demo``: show that joint audio-video generation works, and let anyone judge it.

From one checkpoint of the coupled U-Net (default: the shipped ``mm_diffusion/assets/demo.pt`` with its flags in
``demo.json``), on the CPU:

1. ``--num_samples`` unconditional AV pairs with DPM-Solver (``--steps`` steps);
2. audio-to-video and video-to-audio zero-shot generation for ``--num_conditional`` held-out synthetic clips;
3. the synthetic analyser on all of them, on ``--num_real`` held-out real clips and on those clips with
   shuffled audio (chance level); one table with the gap-closed ratios against the quality bars;
4. mp4s, one contact sheet PNG per task and ``demo_results.json`` under ``--out``.

Sampling settings: ``--steps`` and ``--guidance_scale`` left out take the checkpoint's recommended setting (the
``recommended_sampling`` entry of its JSON; the shipped model's ``demo.json`` says guidance 2, which its
audio-to-video sync needs), else 20 steps and no guidance; ``--condition_mode auto`` is clean
conditioning for a model trained with per-modality timesteps, else the paper's replacement method. The log
line and ``demo_results.json`` (``sampling_source``) say where each value came from.

Held-out clips: the synthetic dataset with dataset seed ``--seed`` (default 1000003; must be >= 10**6, see
:data:`HELD_OUT_MIN_SEED`). Training draws its synthetic clips from dataset seed ``--seed`` of the training run
(small numbers, 0 by default), and clip ``i`` of dataset seed ``s`` is generated from the 32-bit hash
``clip_seed(s, i)``, so held-out clips never coincide with training clips. The demo refuses a seed equal to
the checkpoint's training seed.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Any, Dict, List, Optional, Sequence

import torch
from tqdm.auto import tqdm

from ..cli.flags import add_dict_to_argparser, create_model_and_diffusion, model_kwargs_from_args, run_rates
from ..cli.errors import run_cli
from ..runs.checkpoint import file_sha256, load_model_weights
from ..sampling.conditional import generate_conditional
from .report import all_passed, check_bars, format_table, gap_ratios, rows_from_scores
from .uncertainty import DEFAULT_RESAMPLES, gap_standard_errors
from .sheet import clip_band, write_contact_sheet
from ..runs.files import write_json
from ..runs.locate import ASSETS_DIR, demo_checkpoint, find_recommended_sampling, find_run_config
from ..sampling.condition_settings import (CONDITION_MODE_CHOICES, resolve_condition_mode, resolve_guidance_scale,
                                           resolve_joint_guidance_scale)
from ..sampling.generate import generate_av
from ..models.precision import inference_model, native_bf16_cpu

__all__ = ["HELD_OUT_MIN_SEED", "DEFAULT_CHECKPOINT", "NOT_SHIPPED", "MISSING_CHECKPOINT", "create_parser",
           "resolve_checkpoint", "load_demo_model", "resolve_sampling", "held_out_clips", "run_demo", "main"]

HELD_OUT_MIN_SEED = 10 ** 6
DEFAULT_CHECKPOINT = os.path.join(ASSETS_DIR, "demo.pt")
NOT_SHIPPED = ("the shipped demo model {path} is missing (deleted, or the package was installed without its "
               "assets: reinstall with `pip install -e .`). To train a replacement, run the command in "
               "mm_diffusion/assets/MODEL_CARD.md, or quickly `CONFIG=demo bash ssh_scripts/multimodal_train.sh`, and "
               "pass a checkpoint of the run with `--checkpoint RUN/model######.pt` (its config.json is read from "
               "the same folder)")
MISSING_CHECKPOINT = ("--checkpoint {path} does not exist: give a coupled U-Net weights file (.pt/.pth/.safetensors) "
                      "with its flags in <name>.json or config.json beside it, or leave --checkpoint out to use the "
                      "shipped demo model")
SHEET_CLIPS = 8  # clips per contact sheet
DEFAULT_STEPS = 20  # DPM-Solver steps when neither --steps nor the checkpoint says


def demo_defaults() -> Dict[str, Any]:
    """The demo's flags and their defaults."""
    return dict(checkpoint="", out="outputs/demo", num_samples=32, num_conditional=16, num_real=64, steps=None,
                method="dpm_solver", classifier_scale=0.0, condition_mode="auto", guidance_scale=None,
                joint_guidance_scale=None,
                batch_size=16, seed=1_000_003, precision="auto", threads=2, no_progress=False)


DEMO_HELP = {
    "checkpoint": f"coupled U-Net weights (.pt/.pth/.safetensors) with its flags in <name>.json or config.json "
                  f"beside it ('': {DEFAULT_CHECKPOINT})",
    "out": "output folder",
    "num_samples": "unconditional samples",
    "num_conditional": "held-out clips for audio-to-video and for video-to-audio (>= 2)",
    "num_real": "held-out real clips scored for the real / shuffled rows (>= 2)",
    "steps": f"DPM-Solver steps (left out: the checkpoint's recommended_sampling.steps in its JSON, else "
             f"{DEFAULT_STEPS})",
    "method": "sampler",
    "classifier_scale": "audio-to-video / video-to-audio: 0 = replacement only; > 0 adds gradient guidance of this "
                        "scale (slower: a backward pass per step)",
    "condition_mode": "audio-to-video / video-to-audio: replacement (the paper's zero-shot method) or clean (the "
                      "known modality at its own t = 0; for models trained with --independent_t_prob); auto: clean "
                      "when the checkpoint's flags have independent_t_prob > 0, else replacement (so published "
                      "checkpoints get the paper's method)",
    "guidance_scale": "--condition_mode clean: classifier-free guidance across modalities (1 = none; left out: the "
                      "checkpoint's recommended_sampling.guidance_scale under clean, else 1; the shipped demo "
                      "model recommends 2)",
    "joint_guidance_scale": "unconditional task: the audio guided by the video with this scale (cross-modal "
                            "classifier-free guidance inside joint sampling; models trained with "
                            "--independent_t_prob; 1 = off; one more model call per step; left out: the "
                            "checkpoint's recommended_sampling.joint_guidance_scale for such a model, else 1; "
                            "the shipped demo model recommends 2)",
    "batch_size": "samples per model batch",
    "seed": f"held-out dataset seed and sampling seed (>= {HELD_OUT_MIN_SEED})",
    "precision": "fp32, or bf16 (a bf16 copy of the network, computed with the CPU's bf16 units); auto: bf16 on a "
                 "CPU with native bf16 (AMX or AVX512-BF16), else fp32",
    "threads": "torch CPU threads",
    "no_progress": "no progress bars",
}


def create_parser() -> argparse.ArgumentParser:
    """Flags of ``python -m mm_diffusion.demo``, through the flag builder every job uses."""
    parser = argparse.ArgumentParser(
        prog="python -m mm_diffusion.demo",
        description="Generate AV samples from the demo checkpoint, zero-shot audio-to-video / video-to-audio on "
                    "held-out synthetic clips, score everything with the synthetic analyser and print one table.")
    return add_dict_to_argparser(parser, demo_defaults(), helps=DEMO_HELP, types={"steps": int, "guidance_scale": float,
                                                                                  "joint_guidance_scale": float},
                                 choices={"method": ("dpm_solver", "dpm_solver++"), "condition_mode": CONDITION_MODE_CHOICES,
                                          "precision": ("auto", "fp32", "bf16")})


def check_args(args: argparse.Namespace) -> argparse.Namespace:
    """ValueError naming the offending flag when a count or the seed is out of range."""
    if args.classifier_scale < 0:
        raise ValueError(f"--classifier_scale must be >= 0, got {args.classifier_scale}")
    for name, low in (("num_samples", 1), ("num_conditional", 2), ("num_real", 2), ("steps", 1),
                      ("batch_size", 1), ("threads", 1)):
        if getattr(args, name) is not None and getattr(args, name) < low:
            raise ValueError(f"--{name} must be >= {low}, got {getattr(args, name)}")
    if args.seed < HELD_OUT_MIN_SEED:
        raise ValueError(f"--seed must be >= {HELD_OUT_MIN_SEED} (held-out clips; training uses small dataset "
                         f"seeds), got {args.seed}")
    return args


def resolve_checkpoint(path: str = "") -> str:
    """The checkpoint to use: ``path`` or the shipped demo one; FileNotFoundError naming the missing file (and,
    for the shipped one, how to get it back or train a replacement)."""
    if not path:
        path = demo_checkpoint() or DEFAULT_CHECKPOINT
        if not os.path.isfile(path):
            raise FileNotFoundError(NOT_SHIPPED.format(path=path))
    elif not os.path.isfile(path):
        raise FileNotFoundError(MISSING_CHECKPOINT.format(path=path))
    return path


def load_demo_model(checkpoint: str):
    """``(model, diffusion, info)`` from ``checkpoint`` and the flags saved beside it (strict load, eval mode).

    ``info``: ``video_size`` ``(F, C, H, W)``, ``audio_size`` ``(C, L)``, ``fps``, ``audio_rate`` (the run's
    ``video_fps`` / ``audio_fps``; audio_fps 0 or absent means ``L * fps / F``), ``hum_level``, ``train_seed``,
    ``flags_path``, ``independent_t_prob`` (0 when the run did not train per-modality timesteps)."""
    flags = find_run_config(checkpoint)
    if flags is None:
        raise FileNotFoundError(f"no model flags next to {checkpoint!r}: expected {os.path.splitext(checkpoint)[0]}"
                                f".json or config.json in its folder (a training run writes config.json)")
    model, diffusion = create_model_and_diffusion(flags)
    load_model_weights(model, checkpoint, strict=True)
    kwargs = model_kwargs_from_args(flags)
    video_size, audio_size = tuple(kwargs["video_size"]), tuple(kwargs["audio_size"])
    fps, rate = run_rates(flags)
    info = dict(video_size=video_size, audio_size=audio_size, fps=fps, audio_rate=rate,
                hum_level=float(flags.get("hum_level") or 0.0), train_seed=flags.get("seed"),
                independent_t_prob=float(flags.get("independent_t_prob") or 0.0))
    return model.eval(), diffusion, info


def held_out_clips(num: int, info: Dict[str, Any], seed: int) -> Dict[str, torch.Tensor]:
    """``num`` held-out synthetic clips ``{"video": [num, F, C, H, W], "audio": [num, C, L]}`` (dataset seed
    ``seed``), with the checkpoint's sizes and rates."""
    from ..data import SyntheticAVDataset

    data = SyntheticAVDataset(num, info["video_size"], info["audio_size"], fps=info["fps"],
                              audio_rate=info["audio_rate"], seed=seed, hum_level=info["hum_level"])
    items = [data[i] for i in range(num)]
    return {"video": torch.stack([it["video"] for it in items]), "audio": torch.stack([it["audio"] for it in items])}


def resolve_sampling(args: argparse.Namespace, checkpoint: str, info: Dict[str, Any]) -> Dict[str, str]:
    """Make ``args.condition_mode``, ``args.steps``, ``args.guidance_scale`` and ``args.joint_guidance_scale``
    concrete for ``checkpoint`` (ValueError for joint guidance on a model without per-modality timesteps): a flag
    given wins; unset, the checkpoint's ``recommended_sampling`` (its JSON), else the defaults (20 steps, no
    guidance; see :mod:`~mm_diffusion.sampling.condition_settings`). Returns where each value came from
    (``"flag"``, ``"checkpoint"`` or ``"default"``)."""
    recommended = find_recommended_sampling(checkpoint)
    source = {}
    args.condition_mode = resolve_condition_mode(args.condition_mode, info.get("independent_t_prob"), args.classifier_scale)
    if args.steps is None:
        source["steps"] = "checkpoint" if "steps" in recommended else "default"
        args.steps = int(recommended.get("steps", DEFAULT_STEPS))
    else:
        source["steps"] = "flag"
    args.guidance_scale, source["guidance_scale"] = resolve_guidance_scale(args.guidance_scale, args.condition_mode,
                                                                          recommended)
    args.joint_guidance_scale, source["joint_guidance_scale"] = resolve_joint_guidance_scale(
        args.joint_guidance_scale, info.get("independent_t_prob"), recommended)
    return source


def _batches(n: int, size: int) -> List[List[int]]:
    return [list(range(s, min(n, s + size))) for s in range(0, n, size)]


def _generate(kind: str, model, diffusion, info, n: int, args, reference=None, bar=None) -> Dict[str, torch.Tensor]:
    videos, audios = [], []
    for idx in _batches(n, args.batch_size):
        if reference is None:
            out = generate_av(model, diffusion, idx, video_size=info["video_size"], audio_size=info["audio_size"],
                              method=args.method, steps=args.steps, seed=args.seed,
                              joint_guidance_scale=args.joint_guidance_scale)
        else:
            ref = {k: v[idx[0]:idx[-1] + 1] for k, v in reference.items()}
            out = generate_conditional(model, diffusion, ref, idx, mode=kind, method=args.method, steps=args.steps,
                                       seed=args.seed, classifier_scale=args.classifier_scale,
                                       condition_mode=args.condition_mode, guidance_scale=args.guidance_scale)
        videos.append(out["video"].float().cpu())
        audios.append(out["audio"].float().cpu())
        if bar is not None:
            bar.update(len(idx))
    return {"video": torch.cat(videos), "audio": torch.cat(audios)}


def _analyse(pairs: Dict[str, torch.Tensor], info) -> tuple:
    from ..data.synthetic import analyse_pair, score_analyses

    analyses = [analyse_pair(v, a, info["fps"], info["audio_rate"]) for v, a in zip(pairs["video"], pairs["audio"])]
    return analyses, score_analyses(analyses)


def _write_task_files(out_dir: str, task: str, pairs, analyses, info, title: str) -> Dict[str, Any]:
    from ..data import write_video

    folder = os.path.join(out_dir, task)
    os.makedirs(folder, exist_ok=True)
    videos = []
    for i, (v, a) in enumerate(zip(pairs["video"], pairs["audio"])):
        path = os.path.join(folder, f"{task}_{i:03d}.mp4")
        write_video(path, v, a, fps=info["fps"], audio_rate=info["audio_rate"])
        videos.append(os.path.relpath(path, out_dir))
    bands = [clip_band(v, a, info["fps"], info["audio_rate"], an["video"]["bounce_frames"], an["audio"]["onset_times"],
                       title=f"{task} {i}")
             for i, (v, a, an) in enumerate(zip(pairs["video"][:SHEET_CLIPS], pairs["audio"][:SHEET_CLIPS],
                                                analyses[:SHEET_CLIPS]))]
    sheet = os.path.join(out_dir, f"contact_{task}.png")
    write_contact_sheet(sheet, bands, title)
    return {"videos": videos, "contact_sheet": os.path.relpath(sheet, out_dir)}


TASK_TITLES = {"unconditional": "unconditional samples (DPM-Solver)",
               "audio2video": "audio-to-video: audio given (held-out), video generated",
               "video2audio": "video-to-audio: video given (held-out), audio generated",
               "real": "real held-out clips"}


def _generate_all(model, diffusion, info, args, cond_ref, timings: Dict[str, float]) -> Dict[str, Dict[str, torch.Tensor]]:
    """The three tasks' samples (unconditional, audio2video, video2audio), each task's time into ``timings``."""
    total = args.num_samples + 2 * args.num_conditional
    generated: Dict[str, Dict[str, torch.Tensor]] = {}
    with tqdm(total=total, desc="demo: generating", unit="clip", disable=args.no_progress) as bar:
        for task, n, ref in (("unconditional", args.num_samples, None), ("audio2video", args.num_conditional, cond_ref),
                             ("video2audio", args.num_conditional, cond_ref)):
            t0 = time.perf_counter()
            generated[task] = _generate(task, model, diffusion, info, n, args, ref, bar)
            timings[task] = time.perf_counter() - t0
    return generated


def run_demo(args: argparse.Namespace, log=print) -> Dict[str, Any]:
    """Run the whole demo for parsed ``args``; returns the ``demo_results.json`` document (also written)."""
    check_args(args)
    checkpoint = resolve_checkpoint(args.checkpoint)
    torch.set_num_threads(int(args.threads))
    start = time.perf_counter()
    model, diffusion, info = load_demo_model(checkpoint)
    precision = args.precision if args.precision != "auto" else ("bf16" if native_bf16_cpu() else "fp32")
    model = inference_model(model, precision)
    sampling_source = resolve_sampling(args, checkpoint, info)
    if info["train_seed"] is not None and int(info["train_seed"]) == int(args.seed):
        raise ValueError(f"--seed {args.seed} is the checkpoint's training seed; held-out clips need another one")
    log(f"[demo] {checkpoint}: video {info['video_size']} at {info['fps']:g} fps, audio {info['audio_size']} at "
        f"{info['audio_rate']} Hz; held-out dataset seed {args.seed}; {precision}; "
        f"conditional tasks: {args.condition_mode}")
    log(f"[demo] {args.method} {args.steps} steps ({sampling_source['steps']}), guidance scale "
        f"{args.guidance_scale:g} ({sampling_source['guidance_scale']}), unconditional joint guidance "
        f"{args.joint_guidance_scale:g} ({sampling_source['joint_guidance_scale']}); 'checkpoint' = its JSON's "
        f"recommended setting, a flag overrides it")
    timings: Dict[str, float] = {"load": time.perf_counter() - start}

    t0 = time.perf_counter()
    num_ref = max(args.num_real, args.num_conditional)
    reference = held_out_clips(num_ref, info, args.seed)
    cond_ref = {k: v[:args.num_conditional] for k, v in reference.items()}
    timings["held_out_clips"] = time.perf_counter() - t0

    generated = _generate_all(model, diffusion, info, args, cond_ref, timings)

    t0 = time.perf_counter()
    analyses, scores = {}, {}
    for task, pairs in (*generated.items(), ("real", reference)):
        analyses[task], scores[task] = _analyse(pairs, info)
    timings["analyse"] = time.perf_counter() - t0

    rows = rows_from_scores({t: scores[t] for t in generated}, scores["real"])
    gaps = gap_ratios(rows)
    bars = check_bars(rows, gaps)
    errors = gap_standard_errors({t: analyses[t] for t in generated}, rows)
    counts = {**{t: len(p["video"]) for t, p in generated.items()}, "real": num_ref, "shuffled": num_ref}
    table = format_table(rows, gaps, bars, counts, errors)

    t0 = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    files = {}
    for task, pairs in (*generated.items(), ("real", cond_ref)):
        files[task] = _write_task_files(args.out, task, pairs, analyses[task][:len(pairs["video"])], info,
                                        TASK_TITLES[task])
    timings["write"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - start

    doc = {
        "checkpoint": os.path.abspath(checkpoint), "checkpoint_sha256": file_sha256(checkpoint),
        "video_size": list(info["video_size"]), "audio_size": list(info["audio_size"]), "video_fps": info["fps"],
        "audio_fps": info["audio_rate"], "hum_level": info["hum_level"],
        "sampler": args.method, "steps": args.steps, "classifier_scale": args.classifier_scale,
        "condition_mode": args.condition_mode, "guidance_scale": args.guidance_scale,
        "joint_guidance_scale": args.joint_guidance_scale, "sampling_source": sampling_source, "seed": args.seed,
        "held_out_dataset_seed": args.seed,
        "counts": counts, "rows": rows, "gap_ratios": gaps, "gap_standard_errors": errors,
        "gap_error_method": f"bootstrap over the generated clips, {DEFAULT_RESAMPLES} resamples, reference fixed",
        "bars": bars, "all_bars_passed": all_passed(bars),
        "scores": {t: {k: v for k, v in s.items()} for t, s in scores.items()},
        "files": files, "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "threads": int(args.threads), "precision": precision, "table": table,
    }
    write_json(os.path.join(args.out, "demo_results.json"), doc, indent=1, allow_nan=False)
    log(table)
    log(f"[demo] wrote {args.out}/demo_results.json, contact_*.png and mp4s in {timings['total']:.1f} s "
        f"(generation {sum(timings[t] for t in generated):.1f} s)")
    return doc


def demo(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """``python -m mm_diffusion.demo``: parse ``argv``, run the demo; returns the ``demo_results.json`` document."""
    return run_demo(create_parser().parse_args(argv))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """:func:`demo` as a command: 0 on success (whatever the bars say), 2 on a usage / missing-file error."""
    return run_cli(demo, argv)
