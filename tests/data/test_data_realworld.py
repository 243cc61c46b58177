"""Real-world containers and codecs (issue 15), each with a tiny file written here with PyAV.

Click timing, measured with these files (window at 0 s and a window after a seek; 16 kHz output, so
one output sample is 0.0625 ms):
    AAC in mp4      0.0 ms      (edit list; was 0.0 before)
    MP3 in AVI      0.0 ms      (was +25.1 ms: LAME + decoder priming, 1105 samples, now removed)
    AAC in AVI      0.0 ms      (no edit list in AVI: the 1024-sample priming is removed)
    PCM in AVI/MOV  0.0 ms
    Vorbis in mkv   0.0 ms      (chunks laid end to end; placing each at its 1 ms-rounded time
                                 smeared the tone: residual 0.27 against 0.005-0.009 now)
    Opus in webm    0.5 ms      (the muxer rounds every packet time after the 312-sample pre-skip by
                                 +0.5 ms; the reader cannot see the true times; inside the 2 ms bar)
"""
import os
import warnings

import numpy as np
import pytest

from mm_diffusion.data import media, media_checks
from mm_diffusion.data.dataset import ClipDataset, collate_av
from mm_diffusion.data.media import probe_video, read_av_window

from .av_files import KINDS, click_times, click_track, write_av, write_kind

FPS, RATE = 10, 16000
TOLERANCE_S = 0.002  # the bar for every codec
CLICKS = [3, 8, 13, 18]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_click_written_at_frame_k_reads_back_within_2ms(tmp_path, kind):
    path = write_kind(str(tmp_path), kind, seconds=2.2)
    _, audio = read_av_window(path, 0.0, 22, FPS, RATE)
    expected = np.array(CLICKS) / FPS
    offsets = click_times(audio, RATE, expected) - expected
    assert np.all(np.abs(offsets) <= TOLERANCE_S), (kind, offsets * 1000)
    # a window after a seek: clicks at frames 13 and 18 are 0.3 s and 0.8 s into it
    _, late = read_av_window(path, 1.0, 10, FPS, RATE)
    offsets = click_times(late, RATE, [0.3, 0.8]) - np.array([0.3, 0.8])
    assert np.all(np.abs(offsets) <= TOLERANCE_S), (kind, offsets * 1000)


def test_mp3_in_avi_priming_is_recorded_in_the_probe(tmp_path):
    info = probe_video(write_kind(str(tmp_path), "avi_mp3"))
    assert info["audio_priming"] == 1105 and info["audio_rate"] == 44100
    assert probe_video(write_kind(str(tmp_path), "avi_aac"))["audio_priming"] == 1024
    assert probe_video(write_kind(str(tmp_path), "mp4_aac"))["audio_priming"] == 0  # the edit list does it


def _best_lag_residual(audio, ref, body, max_lag=16):  # under half a period of 440 Hz at 16 kHz
    return min((np.sqrt(np.mean((audio[body] - np.roll(ref, lag)[body]) ** 2)), lag)
               for lag in range(-max_lag, max_lag + 1))


@pytest.mark.parametrize("kind", ["mkv_vorbis", "webm_opus"])
@pytest.mark.parametrize("start", [0.0, 0.7])
def test_matroska_tone_keeps_its_level_and_has_no_gaps(tmp_path, kind, start):
    rate = KINDS[kind][3]
    tone = click_track(2.0, rate, FPS, [], tone=0.5, tone_hz=440)
    path = write_kind(str(tmp_path), kind, audio=tone)
    _, audio = read_av_window(path, start, 10, FPS, RATE)
    ref = 0.5 * np.sin(2 * np.pi * 440 * (start + np.arange(len(audio)) / RATE))
    body = slice(800, 15200)
    assert np.sqrt(2 * np.mean(audio[body] ** 2)) == pytest.approx(0.5, rel=0.03)
    residual, lag = _best_lag_residual(audio, ref, body)
    assert residual < 0.03 and abs(lag) <= 0.001 * RATE, (residual, lag)  # measured 0.002-0.009, lag <= 8


def test_chunks_with_rounded_timestamps_are_laid_end_to_end():
    rate, block = 44100, 128
    signal = np.sin(2 * np.pi * 300 * np.arange(40 * block) / rate).astype(np.float32)
    chunks = [(round(i * block / rate, 3), rate, signal[i * block:(i + 1) * block], 0.001) for i in range(40)]
    got = media._assemble_audio(chunks, 0.0, 40 * block / rate, rate)
    assert np.abs(got - signal).max() < 1e-5
    # a real gap (20 ms missing) re-syncs on the chunk's own time and stays zero in between
    gap = chunks[:10] + [(c[0] + 0.02, *c[1:]) for c in chunks[10:]]
    got = media._assemble_audio(gap, 0.0, 40 * block / rate + 0.02, rate)
    hole = slice(10 * block + 20, 10 * block + int(0.02 * rate) - 20)
    assert np.all(got[hole] == 0)
    assert np.abs(got[int(0.02 * rate) + 10 * block:][:29 * block] - signal[10 * block:39 * block]).max() < 1e-5


@pytest.mark.parametrize("ext,vcodec", [(".mp4", "libx264"), (".mov", "libx264"), (".webm", "libvpx-vp9")])
@pytest.mark.parametrize("rotation", [90, 180, 270, -90])
def test_display_matrix_rotation_is_applied(tmp_path, ext, vcodec, rotation):
    path = write_av(str(tmp_path / f"phone{ext}"), vcodec, None, seconds=0.5, rotation=rotation)
    info = probe_video(path)
    turned = rotation % 360 in (90, 270)
    assert info["rotation"] == rotation % 360
    assert (info["height"], info["width"]) == ((32, 24) if turned else (24, 32))
    frames, _ = read_av_window(path, 0.0, 2, FPS, RATE)
    assert frames.shape == (2, info["height"], info["width"], 3)
    corner = {0: (0, 0), 90: (-1, 0), 180: (-1, -1), 270: (0, -1)}[rotation % 360]  # where the bright corner goes
    h, w = frames.shape[1:3]
    y = 2 if corner[0] == 0 else h - 3
    x = 2 if corner[1] == 0 else w - 3
    assert frames[0, y, x].mean() > 200 and frames[0, h - 1 - y, w - 1 - x].mean() < 100


def test_mono_weights_follow_bs775():
    g = 0.5 ** 0.5
    w = media_checks.mono_weights(["FL", "FR", "FC", "LFE", "BL", "BR"])
    assert w[3] == 0 and np.isclose(w.sum(), 1.0)
    assert np.allclose(w / w[0], [1, 1, 2 * g, 0, g, g])
    assert np.allclose(media_checks.mono_weights(["FL", "FR"]), [0.5, 0.5])
    assert np.allclose(media_checks.mono_weights(["FC"]), [1.0])


def test_surround_downmix_keeps_the_centre_voice_and_drops_the_lfe(tmp_path):
    n = 32000
    voice = 0.5 * np.sin(2 * np.pi * 440 * np.arange(n) / RATE)
    rumble = 0.8 * np.sin(2 * np.pi * 50 * np.arange(n) / RATE)
    audio = np.zeros((6, n))
    audio[2], audio[3] = voice, rumble  # FL FR FC LFE BL BR
    path = write_av(str(tmp_path / "surround.mov"), "libx264", "pcm_s16le", RATE, seconds=2.0, audio=audio,
                    layout="5.1")
    _, mono = read_av_window(path, 0.0, 20, FPS, RATE)
    centre = 2 * 0.5 ** 0.5 / (2 + 4 * 0.5 ** 0.5)  # 0.293, not the 1/6 of a plain average
    expected = centre * voice
    assert np.sqrt(np.mean((mono[1600:30000] - expected[1600:30000]) ** 2)) < 2e-3  # no 50 Hz LFE left
    full = write_av(str(tmp_path / "loud.mov"), "libx264", "pcm_s16le", RATE, seconds=1.0,
                    audio=np.full((6, 16000), 0.99), layout="5.1")
    _, loud = read_av_window(full, 0.0, 10, FPS, RATE)
    assert np.abs(loud[800:15000]).max() <= 1.0 and loud[800:15000].mean() == pytest.approx(0.99, abs=0.01)


def write_truncated(folder, name="cut.mp4", faststart=True, keep=0.5, seconds=4.0, whole_dir=None):
    """An mp4 cut at ``keep`` of its media data (index in front with ``faststart``, else at the end); the
    whole file stays in ``whole_dir`` (default ``<folder>_whole``)."""
    src = write_av(os.path.join(whole_dir or folder + "_whole", name), "libx264", "aac", seconds=seconds, width=64, height=48,
                   options={"movflags": "faststart"} if faststart else None)
    data = open(src, "rb").read()
    mdat = data.find(b"mdat") - 4
    cut = os.path.join(folder, name)
    os.makedirs(folder, exist_ok=True)
    with open(cut, "wb") as fh:
        fh.write(data[:mdat + int((len(data) - mdat) * keep)] if faststart else data[:int(len(data) * keep)])
    return cut


def test_truncated_faststart_mp4_is_indexed_to_where_its_data_ends(tmp_path):
    path = write_truncated(str(tmp_path / "d"))
    info = probe_video(path)
    assert info["warning"].startswith("truncated: indexed to")
    assert 0.5 < info["video_end"] < 3.5  # not the 4 s the index declares
    # the last clip the index allows decodes for real (no silent substitution)
    last = int(info["video_end"] * FPS) - 4
    frames, _ = read_av_window(path, last / FPS, 4, FPS, RATE, probe=info)
    whole, _ = read_av_window(str(tmp_path / "d_whole" / "cut.mp4"), last / FPS, 4, FPS, RATE)
    assert np.array_equal(frames, whole)


def test_zero_filled_tail_is_indexed_to_the_last_frame_that_decodes(tmp_path):
    """A pre-allocated partial download: the index and file size are complete, the tail is zeros."""
    cut = write_truncated(str(tmp_path / "d"))
    whole = (tmp_path / "d_whole" / "cut.mp4").read_bytes()
    data = open(cut, "rb").read()
    zero = tmp_path / "zero.mp4"
    zero.write_bytes(data + b"\0" * (len(whole) - len(data)))
    info = probe_video(str(zero))
    assert info["warning"].startswith("truncated") and info["video_end"] <= probe_video(cut)["video_end"] + 0.11
    read_av_window(str(zero), info["video_end"] - 0.4, 4, FPS, RATE, probe=info)  # the last clip reads


@pytest.mark.parametrize("name,content,reason", [
    ("empty.mp4", b"", "empty file"),
    ("notes.mp4", b"just some text, not a video\n" * 40, "not a media file"),
])
def test_unopenable_files_say_why(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=reason) as err:
        probe_video(str(path))
    assert str(tmp_path) not in str(err.value)


def test_truncated_mp4_without_index_says_so(tmp_path):
    path = write_truncated(str(tmp_path / "d"), "noindex.mp4", faststart=False, keep=0.6)
    with pytest.raises(ValueError, match="truncated: no index"):
        probe_video(path)


def test_short_audio_is_counted_warned_once_and_droppable(tmp_path):
    root = tmp_path / "data"
    write_av(str(root / "short.mp4"), seconds=2.0, audio_seconds=1.0)  # audio stops at 1.0 s
    write_av(str(root / "full.mp4"), seconds=2.0)
    kw = dict(video_size=(4, 3, 16, 16), audio_size=(1, 6400), video_fps=FPS, audio_fps=RATE, progress=False)
    with pytest.warns(UserWarning, match="does not cover") as record:
        ds = ClipDataset(str(root), **kw)
    assert sum("short.mp4" in str(w.message) for w in record) == 1
    assert ds.report["short_audio_clips"] == {"short.mp4": 3} and len(ds) == 10  # clips from 0.8 s on
    with pytest.warns(UserWarning, match="dropped"):
        dropped = ClipDataset(str(root), drop_short_audio=True, **kw)
    assert len(dropped) == 7 and dropped.report["short_audio_dropped"] == 3
    starts = sorted(it["start"] for it in (dropped[i] for i in range(len(dropped))) if it["path"].endswith("short.mp4"))
    assert starts == [0, 4]


def test_class_folders_give_labels(tmp_path):
    root = tmp_path / "ucf"
    for cls, n in [("Zebra", 1), ("apple", 2), ("Mango", 1)]:
        for i in range(n):
            write_av(str(root / cls / f"v{i}.mp4"), seconds=0.8)
    kw = dict(video_size=(4, 3, 16, 16), audio_size=(1, 6400), video_fps=FPS, audio_fps=RATE, progress=False)
    ds = ClipDataset(str(root), class_cond=True, **kw)
    assert ds.classes == ["Mango", "Zebra", "apple"]  # sorted names -> ids 0, 1, 2
    items = [ds[i] for i in range(len(ds))]
    assert {os.path.basename(os.path.dirname(it["path"])): it["label"] for it in items} == \
        {"Mango": 0, "Zebra": 1, "apple": 2}
    batch = collate_av(items)
    assert batch["label"].dtype.is_floating_point is False and batch["label"].shape == (len(items),)
    assert "label" not in ClipDataset(str(root), **kw)[0]  # unconditional: no label key
    import json
    from mm_diffusion.data.clip_index import INDEX_NAME
    assert json.load(open(root / INDEX_NAME))["classes"] == ["Mango", "Zebra", "apple"]
    write_av(str(root / "loose.mp4"), seconds=0.8)
    with pytest.raises(ValueError, match="outside a class folder.*loose.mp4"):
        ClipDataset(str(root), class_cond=True, **kw)


def test_whole_folder_report_lists_exactly_the_broken_files(tmp_path):
    root = tmp_path / "mixed"
    for kind in sorted(KINDS):
        write_kind(str(root / "good"), kind, seconds=1.2)
    write_av(str(root / "good" / "phone.mp4"), seconds=1.2, rotation=90)
    (root / "bad").mkdir()
    (root / "bad" / "empty.mp4").write_bytes(b"")
    (root / "bad" / "readme.mp4").write_text("this is a text file with a video extension\n" * 10)
    sources = str(tmp_path / "sources")  # the uncut files, outside the data dir
    write_truncated(str(root / "bad"), "noindex.mp4", faststart=False, keep=0.6, whole_dir=sources)
    write_truncated(str(root / "bad"), "cut.mp4", faststart=True, keep=0.5, whole_dir=sources)
    kw = dict(video_size=(4, 3, 16, 16), audio_size=(1, 6400), video_fps=FPS, audio_fps=RATE, progress=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds = ClipDataset(str(root), **kw)
    rep = ds.report
    assert set(rep["excluded"]) == {"bad/empty.mp4", "bad/readme.mp4", "bad/noindex.mp4"}
    assert "empty file" in rep["excluded"]["bad/empty.mp4"]
    assert "not a media file" in rep["excluded"]["bad/readme.mp4"]
    assert "truncated: no index" in rep["excluded"]["bad/noindex.mp4"]
    assert set(rep["partial"]) == {"bad/cut.mp4"} and rep["partial"]["bad/cut.mp4"].startswith("truncated")
    assert rep["no_audio"] == [] and rep["too_short"] == []
    assert set(rep["short_audio_clips"]) <= {"bad/cut.mp4"}  # its audio may stop a little before its frames
    text = "\n".join(str(w.message) for w in record)
    assert str(root) not in text  # paths relative to the data dir
    excluded = next(str(w.message) for w in record if "failed to decode" in str(w.message))
    partial = next(str(w.message) for w in record if "indexed in part" in str(w.message))
    for name in ("bad/empty.mp4", "bad/readme.mp4", "bad/noindex.mp4"):
        assert excluded.count(name) == 1 and partial.count(name) == 0, name
    assert partial.count("bad/cut.mp4") == 1 and excluded.count("bad/cut.mp4") == 0
    good = {os.path.relpath(p, root) for p, _ in ds.files}
    assert good == {f"good/{k}{KINDS[k][0]}" for k in KINDS} | {"good/phone.mp4", "bad/cut.mp4"}
    assert len(ds) == (len(KINDS) + 1) * 3 + int(probe_video(str(root / "bad" / "cut.mp4"))["video_end"] * FPS) // 4
    for i in range(len(ds)):  # every indexed clip decodes: nothing substituted
        assert ds[i]["video"].shape == (4, 3, 16, 16)
    assert ds._bad_files == {}
