"""The demo's bootstrap standard errors of the gap ratios, and how the table shows them."""
import pytest

from mm_diffusion.demo.report import check_bars, format_table, gap_ratios, narrow_passes, rows_from_scores
from mm_diffusion.demo.uncertainty import gap_standard_errors

REAL = {"ball_detected_rate": 1.0, "av_sync_f1": 1.0, "colour_pitch_agreement": 1.0,
        "shuffled_av_sync_f1": 0.2, "shuffled_colour_pitch_agreement": 0.2}


def _clip(right_pitch: bool, onsets=(3,)):
    """A hand-made analysis: a red ball bouncing on frame 3; the tone's onsets and pitch as given."""
    return {"video": {"detected": [True] * 8, "bounce_frames": [3], "colour_index": 0},
            "audio": {"onset_frames": list(onsets), "pitch_index": 0 if right_pitch else 2}}


def _rows(cp=0.9):
    good = {"ball_detected_rate": 1.0, "av_sync_f1": 1.0, "colour_pitch_agreement": cp}
    return rows_from_scores({"unconditional": dict(good), "video2audio": dict(good)}, REAL)


def test_identical_clips_have_no_error_and_coin_tosses_the_binomial_one():
    half = [_clip(i % 2 == 0) for i in range(32)]
    errors = gap_standard_errors({"unconditional": [_clip(True)] * 32, "video2audio": half}, _rows(), resamples=400)
    assert errors["unconditional"] == {"av_sync_f1": 0.0, "colour_pitch_agreement": 0.0}
    # agreement 0.5 on 32 clips: sqrt(0.25 / 32) = 0.088, over R - S = 0.8 -> 0.110
    assert errors["video2audio"]["colour_pitch_agreement"] == pytest.approx(0.110, abs=0.015)
    assert errors["video2audio"]["av_sync_f1"] == 0.0  # every clip in sync


def test_deterministic_for_a_seed_and_sensitive_to_it():
    clips = {"video2audio": [_clip(i % 3 == 0, onsets=(3,) if i % 2 else (4,)) for i in range(20)]}
    a = gap_standard_errors(clips, _rows(), resamples=50, seed=1)
    assert a == gap_standard_errors(clips, _rows(), resamples=50, seed=1)
    assert a != gap_standard_errors(clips, _rows(), resamples=50, seed=2)
    assert a["video2audio"]["av_sync_f1"] > 0.0


def test_undefined_ratios_and_too_few_clips_give_none():
    rows = rows_from_scores({"video2audio": {"ball_detected_rate": 1.0, "av_sync_f1": 1.0, "colour_pitch_agreement": 1.0}},
                            dict(REAL, colour_pitch_agreement=0.2))  # R == S for colour-pitch
    errors = gap_standard_errors({"video2audio": [_clip(True), _clip(False)]}, rows, resamples=10)
    assert errors["video2audio"]["colour_pitch_agreement"] is None
    assert gap_standard_errors({"video2audio": [_clip(True)]}, _rows(), resamples=10)["video2audio"] == {
        "av_sync_f1": None, "colour_pitch_agreement": None}
    with pytest.raises(ValueError, match="at least 2 bootstrap resamples"):
        gap_standard_errors({"video2audio": [_clip(True)] * 3}, _rows(), resamples=1)


def test_table_shows_the_errors_and_names_the_narrow_passes():
    rows = _rows(cp=0.7)  # gap colour-pitch (0.7 - 0.2) / 0.8 = 0.625: a pass
    gaps = gap_ratios(rows)
    bars = check_bars(rows, gaps)
    errors = {"unconditional": {"av_sync_f1": 0.0, "colour_pitch_agreement": 0.1},
              "video2audio": {"av_sync_f1": 0.01, "colour_pitch_agreement": 0.02}}
    assert narrow_passes(bars, errors) == ["unconditional col-pitch (0.625 +- 0.10)"]
    table = format_table(rows, gaps, bars, errors=errors)
    uncond = next(line for line in table.splitlines() if line.startswith("unconditional"))
    assert "1.000 +-0.00 pass" in uncond and "0.625 +-0.10 pass" in uncond
    assert table.splitlines()[-2].endswith("ALL PASS")
    assert table.splitlines()[-1].endswith("passes within one error of the bar: unconditional col-pitch (0.625 +- 0.10)")
    far = {t: {f: 0.01 for f in e} for t, e in errors.items()}
    assert format_table(rows, gaps, bars, errors=far).splitlines()[-1].endswith("of the bar: none")
    assert "+-" not in format_table(rows, gaps, bars)  # no errors given: the table as before
