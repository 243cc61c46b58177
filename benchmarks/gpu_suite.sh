#!/usr/bin/env bash
# The GPU benchmark suite in one command (benchmarks/gpu_suite.py has the details): on the lent GPU machine,
#   bash benchmarks/gpu_suite.sh            # results in $OUT (or benchmarks/out/gpu): gpu_suite.json, gpu_suite.md
#   bash benchmarks/gpu_suite.sh --dry_run  # CPU, tiny configs: checks that every section runs
# Installs the package first if it is missing (torch must already be there: the GPU machine has its own CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import mm_diffusion" >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-deps -e . && "$PY" -m pip install -q av tqdm safetensors einops || true
fi
exec "$PY" benchmarks/gpu_suite.py "$@"
