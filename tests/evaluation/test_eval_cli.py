"""Feature extraction, the reference cache and ``python -m mm_diffusion.evaluate`` end to end.

Unit tests use a tiny in-memory dataset and stand-in encoders; the end-to-end tests write small
synthetic mp4 folders and random-weight I3D / VGGish / AudioCLIP files.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mm_diffusion.evaluation import job as evaluate
from mm_diffusion.evaluation import features as feat

from .small_i3d import python_shim, small_i3d

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------
# stand-ins with the encoders' interface
# ---------------------------------------------------------------------------------------------
class StatsVideoEncoder:
    """video [N, F, C, H, W] -> per-channel mean and std [N, 6]."""

    name = "stats_video"
    feature_dim = 6

    def __init__(self):
        self.calls = 0

    def __call__(self, video):
        self.calls += 1
        assert video.dim() == 5 and video.shape[2] == 3
        return torch.cat([video.mean(dim=(1, 3, 4)), video.std(dim=(1, 3, 4))], dim=1)


class StatsAudioEncoder:
    """audio [N, 1, L] -> mean, std, rate/1e4 [N, 3]."""

    name = "stats_audio"
    feature_dim = 3
    sample_rate = 16000
    fad_scale = 1.0

    def __init__(self):
        self.rates = []

    def __call__(self, audio, sample_rate):
        self.rates.append(sample_rate)
        assert audio.dim() == 3 and audio.shape[1] == 1
        n = audio.shape[0]
        return torch.stack([audio.mean(dim=(1, 2)), audio.std(dim=(1, 2)), torch.full((n,), sample_rate / 1e4)], 1)


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, n, frames=4, size=8, length=64, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.items = [
            {
                "video": torch.rand(frames, 3, size, size, generator=g) * 2 - 1,
                "audio": torch.rand(1, length, generator=g) * 2 - 1,
                "path": f"clip{i:03d}.mp4",
                "start": 0,
            }
            for i in range(n)
        ]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


# ---------------------------------------------------------------------------------------------
# features.py units
# ---------------------------------------------------------------------------------------------
def test_extract_features_order_count_and_values():
    ds = ListDataset(11)
    venc, aenc = StatsVideoEncoder(), StatsAudioEncoder()
    out = feat.extract_features(ds, 7, venc, aenc, audio_rate=16000, batch_size=3, progress=False)
    assert out.video.shape == (7, 6) and out.audio.shape == (7, 3)
    assert out.video.dtype == np.float64
    assert out.paths == [f"clip{i:03d}.mp4" for i in range(7)]
    assert venc.calls == 3  # batches of 3, 3, 1
    assert aenc.rates == [16000] * 3
    expected = torch.stack([ds[i]["video"].mean(dim=(0, 2, 3)) for i in range(7)]).double().numpy()
    np.testing.assert_allclose(out.video[:, :3], expected, rtol=1e-5, atol=1e-6)
    # batch size does not change the numbers
    other = feat.extract_features(ds, 7, StatsVideoEncoder(), StatsAudioEncoder(), batch_size=5, progress=False)
    np.testing.assert_allclose(other.video, out.video, rtol=1e-6)
    with pytest.raises(ValueError, match="asked for 12"):
        feat.extract_features(ds, 12, venc, None, progress=False)


def test_evaluation_order_spreads_over_files():
    class Clips:
        # file 0 has 3 clips, file 1 has 1, file 2 has 2 (as ClipDataset.clips: (file_idx, start))
        clips = [(0, 0), (0, 16), (0, 32), (1, 0), (2, 0), (2, 16)]

        def __len__(self):
            return len(self.clips)

    order = feat.evaluation_order(Clips())
    assert order == [0, 3, 4, 1, 5, 2]  # first clip of every file, then second clips, ...
    assert sorted(order) == list(range(6))
    assert feat.evaluation_order(ListDataset(3)) == [0, 1, 2]  # no clip list: own order


def test_package_exports_resolve():
    import mm_diffusion.evaluation as ev

    for name in ev.__all__:
        assert getattr(ev, name) is not None, name
    with pytest.raises(AttributeError):
        ev.no_such_name


def test_count_to_use():
    assert feat.count_to_use(10, 4, False, "x") == 4
    assert feat.count_to_use(10, 0, False, "x") == 10
    assert feat.count_to_use(3, 8, True, "x") == 3
    with pytest.raises(ValueError, match=r"only 3 clips but --sample_num is 8.*--allow_fewer"):
        feat.count_to_use(3, 8, False, "--fake_dir 'f'")
    with pytest.raises(ValueError, match="at least 2"):
        feat.count_to_use(1, 8, True, "x")


def test_feature_settings():
    s = feat.FeatureSettings(video_size=(16, 3, 64, 64), video_fps=10, audio_fps=44100)
    assert s.audio_size == (1, 70560)  # 1.6 s at 44.1 kHz, as AudioCLIP's evaluation reads it
    assert feat.FeatureSettings(audio_fps=16000).audio_size == (1, 25600)
    with pytest.raises(ValueError, match="video_size"):
        feat.FeatureSettings(video_size=(16, 1, 64, 64))


def _fake_folder(root, n):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"v{i}.mp4").write_bytes(b"x" * (i + 1))
    return root


def test_reference_cache_hit_miss_and_no_pickle(tmp_path, monkeypatch):
    folder = _fake_folder(tmp_path / "ref", 6)
    ds = ListDataset(6)
    opened = []

    def fake_open(data_dir, settings, index_cache_dir=None, what="folder", **kwargs):
        opened.append(data_dir)
        return ds

    monkeypatch.setattr(feat, "open_clip_dataset", fake_open)
    settings = feat.FeatureSettings(video_size=(4, 3, 8, 8), audio_fps=16000)
    cache = tmp_path / "cache"
    kwargs = dict(sample_num=5, batch_size=2, cache_dir=str(cache), progress=False)

    a, info_a = feat.cached_folder_features(str(folder), settings, StatsVideoEncoder(), StatsAudioEncoder(), **kwargs)
    assert info_a["cache"] == "miss" and len(opened) == 1
    npz = Path(info_a["cache_file"])
    assert npz.exists() and npz.with_suffix(".json").exists()
    assert not [p for p in cache.iterdir() if "tmp" in p.name]
    with np.load(npz, allow_pickle=False) as data:  # plain arrays only
        np.testing.assert_array_equal(data["video"], a.video)
    meta = json.loads(npz.with_suffix(".json").read_text())
    assert meta["folder"]["num_files"] == 6 and meta["sample_num"] == 5

    venc = StatsVideoEncoder()
    b, info_b = feat.cached_folder_features(str(folder), settings, venc, StatsAudioEncoder(), **kwargs)
    assert info_b["cache"] == "hit" and venc.calls == 0 and len(opened) == 1
    np.testing.assert_array_equal(a.video, b.video)
    np.testing.assert_array_equal(a.audio, b.audio)
    assert a.paths == b.paths

    # other settings -> other key
    _, info_c = feat.cached_folder_features(str(folder), settings, StatsVideoEncoder(), None, **kwargs)
    assert info_c["cache"] == "miss" and info_c["key"] != info_a["key"]
    # touching a file (new mtime) -> miss
    st = os.stat(folder / "v0.mp4")
    os.utime(folder / "v0.mp4", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    _, info_d = feat.cached_folder_features(str(folder), settings, StatsVideoEncoder(), StatsAudioEncoder(), **kwargs)
    assert info_d["cache"] == "miss" and info_d["key"] != info_a["key"]
    # a corrupt cache file is recomputed, not trusted
    Path(info_d["cache_file"]).write_bytes(b"not an npz")
    _, info_e = feat.cached_folder_features(str(folder), settings, StatsVideoEncoder(), StatsAudioEncoder(), **kwargs)
    assert info_e["cache"] == "miss"


def test_folder_fingerprint_independent_of_location(tmp_path):
    a = _fake_folder(tmp_path / "a", 3)
    b = tmp_path / "b"
    shutil.copytree(a, b, copy_function=shutil.copy2)
    fa, fb = feat.folder_fingerprint(str(a)), feat.folder_fingerprint(str(b))
    assert fa["sha256"] == fb["sha256"] and fa["num_files"] == 3
    (b / "v9.mp4").write_bytes(b"new")
    assert feat.folder_fingerprint(str(b))["sha256"] != fa["sha256"]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        feat.folder_fingerprint(str(tmp_path / "missing"))


# ---------------------------------------------------------------------------------------------
# CLI surface
# ---------------------------------------------------------------------------------------------
def test_help_documents_every_flag(capsys):
    parser = evaluate.create_argparser()
    text = parser.format_help()
    for name in evaluate.evaluate_defaults():
        assert f"--{name}" in text
        assert evaluate.FLAG_HELP[name].strip()
    for original in ("--ref_dir", "--fake_dir", "--output_dir", "--sample_num", "--batch_size", "--devices",
                     "--i3d_path", "--audio_encoder", "--audio_encoder_path", "--cache_dir", "--allow_fewer"):
        assert original in text
    with pytest.raises(SystemExit):
        parser.parse_args(["--audio_encoder", "clap"])


def test_parse_audio_options():
    assert evaluate.parse_options("") == {}
    assert evaluate.parse_options("waveform_scale=1.0, pca=true,examples=mean") == {
        "waveform_scale": 1.0, "pca": True, "examples": "mean"}
    with pytest.raises(ValueError, match="key=value"):
        evaluate.parse_options("pca")


def test_table_states_fad_scale():
    result = {
        "metrics": {"fvd": 12.5, "kvd": 0.25, "fad": 3.0, "fad_raw": 3e-4},
        "video_encoder": {"name": "i3d", "features": "logits", "feature_dim": 400},
        "audio_encoder": {"name": "audioclip", "feature_dim": 1024, "fad_scale": 1e4},
        "num_ref": 4, "num_fake": 4, "ref_dir": "r", "fake_dir": "f", "kvd_subsets": 0,
        "synthetic": {"av_sync_f1": 0.5, "shuffled_av_sync_f1": 0.125, "note": "text"},
    }
    table = evaluate.format_table(result)
    assert "FVD" in table and "12.5000" in table and "KVD" in table
    assert "x 10000" in table and "0.0003" in table
    assert "synthetic av_sync_f1" in table and "0.5000" in table
    assert "shuffled" not in table  # secondary analyser figures stay in metrics.json


# ---------------------------------------------------------------------------------------------
# end to end on small mp4 folders with random-weight encoders
# ---------------------------------------------------------------------------------------------
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "PMI_RANK", "PMI_SIZE",
               "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALRANKID")


def _write_folder(root, n, kind, seed, frames=16, size=32, rate=16000):
    from mm_diffusion.data.media import write_video

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(frames / 10 * rate)) / rate
    for i in range(n):
        if kind == "smooth":  # a flat colour with a gentle ramp that brightens, and a pure tone
            colour = rng.uniform(-0.8, 0.8, size=(3, 1, 1))
            ramp = np.linspace(-0.2, 0.2, size)[None, None, :]
            video = np.stack([np.clip(colour + ramp + 0.02 * f, -1, 1) * np.ones((3, size, size))
                              for f in range(frames)])
            audio = 0.5 * np.sin(2 * np.pi * rng.uniform(200, 800) * t)[None]
        else:  # visibly different: uniform noise frames, white-noise audio
            video = rng.uniform(-1, 1, size=(frames, 3, size, size))
            audio = rng.uniform(-0.9, 0.9, size=(1, t.size))
        write_video(str(root / f"clip{i:03d}.mp4"), video.astype(np.float32), audio.astype(np.float32),
                    fps=10, audio_rate=rate)
    return root


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    from mm_diffusion.testing.encoders import make_random_i3d_file, make_random_vggish_file

    from mm_diffusion.data.synthetic import write_dataset

    root = tmp_path_factory.mktemp("eval_e2e")
    # the reference is a synthetic folder (mp4 + JSON sidecars): the analyser's figures are reported
    write_dataset(str(root / "ref"), 4, video_size=(16, 3, 32, 32), audio_size=(1, 25600), fps=10,
                  audio_rate=16000, seed=0, progress=False)
    return {
        "root": root,
        "ref": root / "ref",
        "noise": _write_folder(root / "noise", 4, "noise", 1),
        "i3d": str(make_random_i3d_file(root / "i3d_pretrained_400.pt")),
        "vggish": str(make_random_vggish_file(root / "vggish-10086976.pth")),
    }


def _argv(assets, ref, fake, out, cache="none", sample_num=4, encoder="vggish", audio_path=None, extra=()):
    return [
        "--ref_dir", str(ref), "--fake_dir", str(fake), "--output_dir", str(out),
        "--sample_num", str(sample_num), "--batch_size", "2", "--i3d_path", assets["i3d"],
        "--audio_encoder", encoder, "--audio_encoder_path", str(audio_path or assets["vggish"]),
        "--cache_dir", str(cache), "--video_size", "16,3,32,32",
        "--num_workers", "0", "--no_progress", *extra,
    ]


def _run_main(argv):
    from mm_diffusion.runs import dist

    dist.cleanup()
    with small_i3d():
        code = evaluate.main(argv)
    assert not torch.distributed.is_initialized()
    return code


@pytest.fixture(scope="module")
def single_rank_runs(assets):
    """Folder against itself (reference cache miss), then against noise (cache hit)."""
    root, cache = assets["root"], assets["root"] / "cache"
    out_self, out_diff = root / "out_self", root / "out_diff"
    assert _run_main(_argv(assets, assets["ref"], assets["ref"], out_self, cache)) == 0
    assert _run_main(_argv(assets, assets["ref"], assets["noise"], out_diff, cache)) == 0
    return (json.loads((out_self / "metrics.json").read_text()),
            json.loads((out_diff / "metrics.json").read_text()))


@pytest.mark.slow
def test_end_to_end_self_is_zero_and_different_is_larger(single_rank_runs, capsys):
    same, diff = single_rank_runs
    for result in (same, diff):
        assert result["num_ref"] == 4 and result["num_fake"] == 4
        assert result["video_encoder"]["feature_dim"] == 400
        assert result["audio_encoder"]["name"] == "vggish" and result["fad_scale"] == 1.0
        assert result["settings"]["audio_size"] == [1, 25600]  # 1.6 s at VGGish's 16 kHz
    assert same["metrics"]["fvd"] == pytest.approx(0.0, abs=1e-6)
    assert same["metrics"]["fad"] == pytest.approx(0.0, abs=1e-6)
    assert diff["metrics"]["fvd"] > 1.0
    assert diff["metrics"]["fad"] > 1.0
    # KVD from 4 clips is a noisy unbiased estimate (it can be < 0); only its order is checked here
    assert diff["metrics"]["kvd"] > same["metrics"]["kvd"]
    assert same["reference_cache"]["cache"] == "miss"
    assert diff["reference_cache"]["cache"] == "hit"
    assert same["reference_cache"]["key"] == diff["reference_cache"]["key"]
    assert Path(diff["reference_cache"]["cache_file"]).exists()
    # synthetic reference: the analyser ran on the generated folder; matched clips sync, noise does not
    assert same["synthetic"]["num_clips"] == 4 and diff["synthetic"]["num_clips"] == 4
    assert same["synthetic"]["av_sync_f1"] == pytest.approx(1.0)
    assert same["synthetic"]["colour_pitch_agreement"] == pytest.approx(1.0)
    assert (diff["synthetic"]["av_sync_f1"] or 0.0) < 0.5


@pytest.mark.slow
def test_two_ranks_give_the_same_numbers_as_one(assets, single_rank_runs, tmp_path):
    _, one = single_rank_runs
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env.update(PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""), OMP_NUM_THREADS="1",
               CUDA_VISIBLE_DEVICES="")
    torchrun = shutil.which("torchrun")
    launcher = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
    out = tmp_path / "two"
    cmd = launcher + ["--standalone", "--nproc_per_node", "2", "-m", "tests.evaluation.small_i3d",
                      *_argv(assets, assets["ref"], assets["noise"], out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    two = json.loads((out / "metrics.json").read_text())
    assert two["world_size"] == 2 and two["num_ref"] == 4 and two["num_fake"] == 4
    for key in ("fvd", "kvd", "fad"):
        assert two["metrics"][key] == pytest.approx(one["metrics"][key], rel=1e-5, abs=1e-8), key
    assert "FVD" in proc.stdout and "synthetic av_sync_f1" in proc.stdout  # only rank 0 prints the table
    assert proc.stdout.count("wrote") == 1


@pytest.mark.slow
def test_audioclip_fad_scale_and_allow_fewer(assets, tmp_path, capsys):
    from mm_diffusion.testing.encoders import make_random_audioclip_file

    ref = _write_folder(tmp_path / "ref2", 2, "smooth", 2)
    fake = _write_folder(tmp_path / "fake3", 3, "noise", 3)
    weights = make_random_audioclip_file(tmp_path / "AudioCLIP-Full-Training.pt")
    out = tmp_path / "out"
    # eigh: the same Fréchet distance as sqrtm (test_eval_metrics), 4x faster on 1024-d embeddings
    argv = _argv(assets, ref, fake, out, sample_num=10, encoder="audioclip", audio_path=weights,
                 extra=("--fd_method", "eigh", "--audio_options", "waveform_scale=1.0"))
    assert _run_main(argv) == 2  # 2 clips < --sample_num 10
    err = capsys.readouterr().err
    assert "only 2 clips but --sample_num is 10" in err and "--allow_fewer" in err
    assert _run_main(argv + ["--allow_fewer"]) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "metrics.json").read_text())
    assert result["num_ref"] == 2 and result["num_fake"] == 3 and result["fd_method"] == "eigh"
    assert result["audio_encoder"]["name"] == "audioclip" and result["fad_scale"] == 1e4
    assert result["settings"]["audio_size"] == [1, 70560]  # read at AudioCLIP's 44.1 kHz
    assert result["audio_encoder"]["settings"]["waveform_scale"] == 1.0  # --audio_options reached the loader
    m = result["metrics"]
    assert m["fad"] == pytest.approx(m["fad_raw"] * 1e4, rel=1e-12) and m["fad"] > 0
    assert "x 10000" in printed


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
def test_missing_folders(assets, tmp_path, capsys):
    argv = _argv(assets, tmp_path / "nope", assets["ref"], tmp_path / "o")
    assert _run_main(argv) == 2
    assert "--ref_dir" in capsys.readouterr().err
    argv = _argv(assets, assets["ref"], tmp_path / "nope2", tmp_path / "o")
    assert _run_main(argv) == 2
    err = capsys.readouterr().err
    assert "--fake_dir" in err and "nope2" in err
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_missing_weight_files(assets, tmp_path, capsys):
    argv = _argv(assets, assets["ref"], assets["noise"], tmp_path / "o")
    i = argv.index("--i3d_path")
    bad = argv[: i + 1] + [str(tmp_path / "i3d_missing.pt")] + argv[i + 2:]
    assert _run_main(bad) == 2
    err = capsys.readouterr().err
    assert "--i3d_path" in err and "i3d_pretrained_400.pt" in err and "1mQK8KD8G6UWRa5t87SRMm5PVXtlpneJT" in err
    j = argv.index("--audio_encoder")
    bad = argv[:j] + ["--audio_encoder", "audioclip", "--audio_encoder_path", str(tmp_path / "x.pt")] + argv[j + 4:]
    assert _run_main(bad) == 2
    err = capsys.readouterr().err
    assert "--audio_encoder_path" in err and "AudioCLIP-Full-Training.pt" in err
    assert "github.com/AndreyGuzhov/AudioCLIP" in err
    no_path = [a for a in argv if a != "--i3d_path" and a != assets["i3d"]]
    assert _run_main(no_path) == 2
    assert "--i3d_path" in capsys.readouterr().err
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_fewer_videos_than_sample_num(assets, tmp_path, capsys):
    argv = _argv(assets, assets["ref"], assets["noise"], tmp_path / "o", sample_num=7)
    assert _run_main(argv) == 2
    err = capsys.readouterr().err
    assert "only 4 clips but --sample_num is 7" in err and "--allow_fewer" in err
    with pytest.raises(SystemExit):
        evaluate.create_argparser().parse_args(["--sample_num", "many"])


@pytest.mark.slow
@pytest.mark.mpi
def test_multimodal_eval_script(assets, single_rank_runs, tmp_path):
    """ssh_scripts/multimodal_eval.sh: paths from the environment, mpiexec launcher, extra flags passed on."""
    if shutil.which("mpiexec") is None:
        pytest.skip("mpiexec is not on PATH")
    _, one = single_rank_runs
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env.update(PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""), OMP_NUM_THREADS="2",
               CUDA_VISIBLE_DEVICES="", REF_DIR=str(assets["ref"]), FAKE_DIR=str(assets["noise"]),
               OUTPUT_DIR=str(tmp_path / "out"), I3D_PATH=assets["i3d"], AUDIO_ENCODER="vggish",
               AUDIO_ENCODER_PATH=assets["vggish"], CACHE_DIR="none", SAMPLE_NUM="4", NUM_GPUS="1",
               LAUNCHER="mpiexec")
    env["PATH"] = python_shim(tmp_path / "bin") + os.pathsep + env["PATH"]  # python -m mm_diffusion.evaluate: I3D at 32 px
    script = str(REPO / "ssh_scripts" / "multimodal_eval.sh")
    extra = ["--video_size", "16,3,32,32", "--num_workers", "0", "--no_progress"]
    proc = subprocess.run(["bash", script, *extra], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert result["metrics"]["fvd"] == pytest.approx(one["metrics"]["fvd"], rel=1e-5)
    assert result["sample_num"] == 4
    # a missing variable is a clear error
    env.pop("REF_DIR")
    proc = subprocess.run(["bash", script], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "REF_DIR" in proc.stderr


@pytest.mark.slow
def test_metrics_json_states_protocol_weights_and_av_align(assets, single_rank_runs, tmp_path):
    import hashlib

    same, diff = single_rank_runs
    i3d_sha = hashlib.sha256(Path(assets["i3d"]).read_bytes()).hexdigest()
    vggish_sha = hashlib.sha256(Path(assets["vggish"]).read_bytes()).hexdigest()
    for result in (same, diff):
        assert result["protocol"]["name"] == "mmdiffusion" and result["protocol"]["bn_eps"] == 1e-5
        assert result["video_encoder"]["weights_sha256"] == i3d_sha
        assert result["audio_encoder"]["weights_sha256"] == vggish_sha
        m = result["metrics"]
        for key in ("av_align", "av_align_ref", "av_align_flow", "av_align_flow_ref"):
            assert 0.0 <= m[key] <= 1.0
        assert result["av_align"]["fake"]["num_clips"] == 4
    # the same folder on both sides: the same AV-Align; synthetic clips read back from mp4 sync well
    assert same["metrics"]["av_align"] == same["metrics"]["av_align_ref"] >= 0.75
    # the TensorFlow convention, without AV-Align
    out = tmp_path / "tf"
    argv = _argv(assets, assets["ref"], assets["noise"], out, extra=("--protocol", "tf", "--av_align", "false"))
    assert _run_main(argv) == 0
    tf = json.loads((out / "metrics.json").read_text())
    assert tf["protocol"]["name"] == "tf" and tf["video_encoder"]["settings"]["bn_eps"] == 1e-3
    assert "av_align" not in tf["metrics"] and tf["av_align"] is None
    assert tf["metrics"]["fvd"] != pytest.approx(diff["metrics"]["fvd"], rel=1e-6)
