"""benchmarks/gpu_suite.py --dry_run: every section starts and writes its rows (CPU, tiny configs)."""
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_suite_dry_run_writes_every_section(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_suite.py"), "--dry_run", "--out", str(tmp_path),
                           "--section_timeout", "200"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "gpu_suite.json").read_text())
    rows = doc["rows"]
    assert not [r for r in rows if "error" in r]
    assert {r["section"] for r in rows} == {"train", "sdpa", "sample", "compile", "ddp"}
    train = [r for r in rows if r["section"] == "train"]
    assert {r["precision"] for r in train} == {"fp32", "bf16"}
    assert all(r["step_s"] > 0 and r["flop_per_step"] > 1e9 for r in train)   # tiny config: ~2.4 GFLOP a step
    assert sum(r["calls"] for r in rows if r["section"] == "sdpa") == 30        # every attention call of tiny
    assert [r["compiled"] for r in rows if r["section"] == "compile"] == ["no", "eager"]
    assert [r["finite"] for r in rows if r["section"] == "ddp"] == [True]
    md = (tmp_path / "gpu_suite.md").read_text()
    assert "## train" in md and "## ddp" in md
