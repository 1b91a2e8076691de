#!/usr/bin/env bash
# Render and training speed on a CUDA GPU, with autocast, in one short call (a few minutes):
# the same JSON as the CPU benchmarks, for a lent GPU machine.
#
#   bash benchmarks/gpu.sh [OUT_DIR]      # default: $OUT when set, else workspace/bench_gpu
#
# Writes OUT_DIR/gpu.txt (nvidia-smi), train.json (benchmarks/train.py: steps 1-3 of the
# debate preset in its precision and in fp32, beside a plain eager loop) and render.json
# (benchmarks/render.py --quick: floor_fps, render_fps, ratio, stage_seconds). Needs a CUDA
# build of torch in the venv (README, "GPU"); fails at once when torch sees no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-workspace/bench_gpu}}"
py="${PYTHON:-.venv/bin/python}"
mkdir -p "$out"
"$py" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 'torch sees no CUDA GPU (a CPU build, or no driver)')"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/gpu.txt" 2>&1 || true
"$py" benchmarks/train.py --device cuda --steps 20 --rounds 2 --json "$out/train.json"
"$py" benchmarks/render.py --device cuda --quick --json "$out/render.json" --workdir "$out/render"
echo "wrote $out/train.json and $out/render.json"
