"""The demo command: end to end on a random tiny checkpoint, its error messages, the gap maths."""
import json
import math
import os

import numpy as np
import pytest
from PIL import Image

from mm_diffusion.demo import run as demo_run
from mm_diffusion.demo.report import (BALL_BAR, GAP_BAR, check_bars, format_table, gap_ratio,
                                                gap_ratios, reference_rows, rows_from_scores)
from mm_diffusion.demo.sheet import BOUNCE_COLOUR, ONSET_COLOUR, TITLE_HEIGHT, clip_band
from mm_diffusion.testing.checkpoints import write_random_checkpoint

TASKS = ("unconditional", "audio2video", "video2audio")
ROWS = TASKS + ("real", "shuffled")


def _finite_or_none(x):
    return x is None or (isinstance(x, (int, float)) and math.isfinite(x))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    ckpt = write_random_checkpoint(str(root / "run" / "model000000.pt"), "tiny")
    out = root / "out"
    lines = []
    args = demo_run.create_parser().parse_args([
        "--checkpoint", ckpt, "--out", str(out), "--num_samples", "2", "--num_conditional", "2",
        "--num_real", "6", "--steps", "3", "--no_progress"])
    doc = demo_run.run_demo(args, log=lines.append)
    return dict(doc=doc, out=out, log="\n".join(lines), ckpt=ckpt)


def test_demo_prints_one_table_with_every_row(demo):
    log = demo["log"]
    for label in ("unconditional", "audio-to-video", "video-to-audio", "real", "shuffled"):
        assert any(line.startswith(label) for line in log.splitlines()), label
    assert "gap F1" in log and "gap col-pitch" in log
    assert "NOT MET" in log  # random weights cannot pass the bars
    assert log.count("FAIL") >= 1


def test_demo_json_has_all_keys_and_finite_numbers(demo):
    path = demo["out"] / "demo_results.json"
    doc = json.loads(path.read_text())
    assert doc == json.loads(json.dumps(demo["doc"]))
    for key in ("checkpoint", "checkpoint_sha256", "video_size", "audio_size", "video_fps", "audio_fps", "steps",
                "classifier_scale", "seed", "counts", "rows", "gap_ratios", "bars", "all_bars_passed", "files", "timings_s", "table"):
        assert key in doc, key
    assert doc["video_size"] == [4, 3, 16, 16] and doc["audio_size"] == [1, 1600]
    assert doc["video_fps"] == 10 and doc["audio_fps"] == 4000  # from the json: 1600 * 10 / 4
    assert doc["seed"] >= demo_run.HELD_OUT_MIN_SEED
    assert doc["counts"] == {"unconditional": 2, "audio2video": 2, "video2audio": 2, "real": 6, "shuffled": 6}
    assert set(doc["rows"]) == set(ROWS)
    for row in doc["rows"].values():
        assert set(row) == {"ball_detected_rate", "av_sync_f1", "colour_pitch_agreement"}
        assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in row.values())
    assert set(doc["gap_ratios"]) == set(TASKS) == set(doc["gap_standard_errors"])
    assert "+-: bootstrap standard error" in doc["table"]
    for task in TASKS:
        assert all(v is None or (math.isfinite(v) and v >= 0) for v in doc["gap_standard_errors"][task].values())
        assert all(_finite_or_none(v) for v in doc["gap_ratios"][task].values())
        for bar in doc["bars"][task].values():
            assert isinstance(bar["passed"], bool) and _finite_or_none(bar["value"])
    assert "ball_detected_rate" in doc["bars"]["unconditional"]
    assert doc["all_bars_passed"] is False
    assert all(isinstance(v, float) and v >= 0 for v in doc["timings_s"].values())
    # the real clips are synchronised, the shuffled ones much less: the reference the gaps are measured on
    assert doc["rows"]["real"]["av_sync_f1"] > doc["rows"]["shuffled"]["av_sync_f1"]
    assert doc["rows"]["real"]["ball_detected_rate"] == doc["rows"]["shuffled"]["ball_detected_rate"] == 1.0
    # video-to-audio keeps the real (held-out) video: its ball is always found
    assert doc["rows"]["video2audio"]["ball_detected_rate"] == 1.0


def test_demo_writes_mp4s_and_contact_sheets(demo):
    out, files = demo["out"], demo["doc"]["files"]
    for task in TASKS + ("real",):
        assert len(files[task]["videos"]) == 2
        for rel in files[task]["videos"]:
            assert rel.endswith(".mp4") and (out / rel).stat().st_size > 1000
        sheet = out / files[task]["contact_sheet"]
        assert sheet.name == f"contact_{task}.png"
        with Image.open(sheet) as im:
            assert im.format == "PNG"
            assert im.width == 4 * 16 * 4  # 4 frames of 16 px scaled x4
            assert im.height > 2 * (64 + 48)  # two clips: frames + waveform each
    assert not [p for p in os.listdir(out) if ".tmp" in p]


def test_missing_checkpoint_errors_name_the_file(tmp_path, capsys, monkeypatch):
    missing = str(tmp_path / "demo.pt")
    with pytest.raises(FileNotFoundError) as err:
        demo_run.resolve_checkpoint(missing)
    assert f"--checkpoint {missing} does not exist" in str(err.value)
    assert demo_run.main(["--checkpoint", missing, "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    # the shipped model gone (assets not installed): say so, and how to get one back
    monkeypatch.setattr(demo_run, "demo_checkpoint", lambda: None)
    monkeypatch.setattr(demo_run, "DEFAULT_CHECKPOINT", missing)
    with pytest.raises(FileNotFoundError) as err:
        demo_run.resolve_checkpoint("")
    msg = str(err.value)
    assert f"shipped demo model {missing} is missing" in msg and "MODEL_CARD.md" in msg
    assert "CONFIG=demo bash ssh_scripts/multimodal_train.sh" in msg and "--checkpoint" in msg


def test_checkpoint_without_flags_and_bad_arguments(tmp_path):
    ckpt = write_random_checkpoint(str(tmp_path / "w.pt"), "tiny", write_config=False)
    with pytest.raises(FileNotFoundError, match="config.json"):
        demo_run.load_demo_model(ckpt)
    parse = demo_run.create_parser().parse_args
    with pytest.raises(ValueError, match="--seed must be >= 1000000"):
        demo_run.check_args(parse(["--seed", "5"]))
    with pytest.raises(ValueError, match="--num_conditional must be >= 2, got 1"):
        demo_run.check_args(parse(["--num_conditional", "1"]))
    with pytest.raises(ValueError, match="--steps"):
        demo_run.check_args(parse(["--steps", "0"]))
    with pytest.raises(ValueError, match="--classifier_scale must be >= 0"):
        demo_run.check_args(parse(["--classifier_scale", "-1"]))


def test_gap_ratio_on_hand_made_numbers():
    assert gap_ratio(0.8, 1.0, 0.5) == pytest.approx(0.6)
    assert gap_ratio(1.0, 1.0, 0.5) == pytest.approx(1.0)
    assert gap_ratio(0.5, 1.0, 0.5) == pytest.approx(0.0)
    assert gap_ratio(0.25, 1.0, 0.5) == pytest.approx(-0.5)  # worse than chance
    assert gap_ratio(0.9, 0.4, 0.2) == pytest.approx(3.5)    # better than real is allowed, not capped
    assert gap_ratio(0.7, 0.5, 0.5) is None                  # R == S: undefined
    assert gap_ratio(0.7, 0.5, 0.5 + 1e-15) is None
    assert gap_ratio(float("nan"), 1.0, 0.5) is None
    assert gap_ratio(None, 1.0, 0.5) is None


def _rows(uncond_ball=0.95, uncond_f1=0.8, uncond_cp=0.9, real_cp=1.0, shuffled_cp=0.2):
    real = {"num_clips": 10, "ball_detected_rate": 1.0, "av_sync_f1": 1.0, "colour_pitch_agreement": real_cp,
            "shuffled_av_sync_f1": 0.5, "shuffled_colour_pitch_agreement": shuffled_cp}
    tasks = {"unconditional": {"ball_detected_rate": uncond_ball, "av_sync_f1": uncond_f1,
                               "colour_pitch_agreement": uncond_cp},
             "audio2video": {"ball_detected_rate": 0.5, "av_sync_f1": 0.79, "colour_pitch_agreement": 0.9},
             "video2audio": {"ball_detected_rate": 1.0, "av_sync_f1": 0.5, "colour_pitch_agreement": 0.2}}
    return rows_from_scores(tasks, real)


def test_bars_and_table_on_hand_made_numbers():
    rows = _rows()
    assert rows["shuffled"] == {"ball_detected_rate": 1.0, "av_sync_f1": 0.5, "colour_pitch_agreement": 0.2}
    gaps = gap_ratios(rows)
    assert gaps["unconditional"]["av_sync_f1"] == pytest.approx(0.6)
    assert gaps["unconditional"]["colour_pitch_agreement"] == pytest.approx(0.875)
    assert gaps["audio2video"]["av_sync_f1"] == pytest.approx(0.58)
    assert gaps["video2audio"] == {"av_sync_f1": 0.0, "colour_pitch_agreement": 0.0}
    bars = check_bars(rows, gaps)
    assert bars["unconditional"]["ball_detected_rate"] == {"value": 0.95, "threshold": BALL_BAR, "passed": True}
    assert bars["unconditional"]["gap_av_sync_f1"]["passed"] is True  # exactly 0.6 passes
    assert bars["audio2video"]["gap_av_sync_f1"]["passed"] is False  # 0.58 fails
    assert bars["audio2video"]["gap_colour_pitch_agreement"]["passed"] is True
    assert "ball_detected_rate" not in bars["audio2video"]  # the 0.9 bar is for unconditional samples only
    assert bars["unconditional"]["gap_av_sync_f1"]["threshold"] == GAP_BAR
    table = format_table(rows, gaps, bars)
    lines = table.splitlines()
    uncond = next(line for line in lines if line.startswith("unconditional"))
    assert "0.950 pass" in uncond and "0.600 pass" in uncond and "0.875 pass" in uncond
    a2v = next(line for line in lines if line.startswith("audio-to-video"))
    assert "0.580 FAIL" in a2v
    assert lines[-1].endswith("NOT MET")
    low = check_bars(_rows(uncond_ball=0.89), gap_ratios(_rows(uncond_ball=0.89)))
    assert low["unconditional"]["ball_detected_rate"]["passed"] is False


def test_r_equals_s_gives_na_and_fails():
    rows = _rows(real_cp=0.5, shuffled_cp=0.5)
    gaps = gap_ratios(rows)
    assert all(gaps[t]["colour_pitch_agreement"] is None for t in TASKS)
    bars = check_bars(rows, gaps)
    assert all(bars[t]["gap_colour_pitch_agreement"]["passed"] is False for t in TASKS)
    table = format_table(rows, gaps, bars)
    assert "n/a FAIL" in table and table.splitlines()[-1].endswith("NOT MET")
    json.dumps({"gaps": gaps, "bars": bars}, allow_nan=False)  # None, not NaN, in the JSON


def test_all_pass_verdict():
    real = {"ball_detected_rate": 1.0, "av_sync_f1": 1.0, "colour_pitch_agreement": 1.0,
            "shuffled_av_sync_f1": 0.2, "shuffled_colour_pitch_agreement": 0.2}
    good = {"ball_detected_rate": 0.95, "av_sync_f1": 0.9, "colour_pitch_agreement": 0.9}
    rows = rows_from_scores({t: dict(good) for t in TASKS}, real)
    bars = check_bars(rows, gap_ratios(rows))
    assert format_table(rows, gap_ratios(rows), bars).splitlines()[-1].endswith("ALL PASS")
    with pytest.raises(ValueError, match="at least 2 real clips"):
        reference_rows({"ball_detected_rate": 1.0, "av_sync_f1": 1.0, "colour_pitch_agreement": 1.0,
                        "shuffled_av_sync_f1": None, "shuffled_colour_pitch_agreement": None})


def test_clip_band_draws_frames_waveform_and_markers():
    video = np.full((4, 3, 8, 8), -1.0, np.float32)
    video[:, 0] = 1.0  # red frames
    audio = np.zeros((1, 400), np.float32)
    audio[0, 200:210] = 0.9
    band = np.asarray(clip_band(video, audio, fps=10, audio_rate=1000, bounce_frames=[2], onset_times=[0.2],
                                scale=2))
    assert band.shape == (TITLE_HEIGHT + 16 + 48, 4 * 16, 3)
    assert tuple(band[TITLE_HEIGHT + 4, 5]) == (255, 0, 0)  # a frame pixel
    top = TITLE_HEIGHT + 16
    assert tuple(band[top + 2, 32]) == BOUNCE_COLOUR          # bounce frame 2 -> x = 2 * 16, above the centre
    assert tuple(band[top + 46, 32]) == ONSET_COLOUR          # onset 0.2 s of 0.4 s -> x = 32, below it
    with pytest.raises(ValueError, match="fps"):
        clip_band(video, audio, fps=0, audio_rate=1000)


def test_auto_condition_mode_follows_the_checkpoint_training_flags(demo):
    assert demo["doc"]["condition_mode"] == "replacement"  # the random checkpoint has no independent_t_prob
    assert "conditional tasks: replacement" in demo["log"]
    # --steps 3 given, --guidance_scale left out (no recommendation in a run's own config.json): say so
    assert demo["doc"]["sampling_source"] == {"steps": "flag", "guidance_scale": "default",
                                              "joint_guidance_scale": "default"}
    assert demo["doc"]["joint_guidance_scale"] == 1.0
    assert demo["doc"]["steps"] == 3 and demo["doc"]["guidance_scale"] == 1.0
    assert "3 steps (flag), guidance scale 1 (default), unconditional joint guidance 1 (default)" in demo["log"]


def test_guidance_without_clean_conditioning_is_refused(tmp_path):
    ckpt = write_random_checkpoint(str(tmp_path / "run" / "model000000.pt"), "tiny")
    args = demo_run.create_parser().parse_args(["--checkpoint", ckpt, "--out", str(tmp_path / "o"),
                                                "--guidance_scale", "2", "--no_progress"])
    with pytest.raises(ValueError, match="condition_mode clean"):
        demo_run.run_demo(args, log=lambda *_: None)
