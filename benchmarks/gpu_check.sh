#!/usr/bin/env bash
# GPU checks of the device policy, in one go (about 4 minutes on one H200):
#   1. every CUDA-marked test of the suite;  2. PGD vs torchattacks on the CPU and on CUDA,
#      APGD-CE per iteration against a PGD step;
#   3. GPU feature extraction, CPU-vs-GPU agreement;  4. host memory while streaming an
#      image folder (before/after, 8 readers);  5. the quick benchmark with --device cuda
#      and with --device cpu.
# Figures go to stdout. Run from the repository root: bash benchmarks/gpu_check.sh
# torchattacks joins the PGD table when importable: put a copy of the package in
# .gpu_deps/ (e.g. cp -r <venv>/site-packages/torchattacks .gpu_deps/) to add it.
# BENCH_STREAM_IMAGES (default 50000 here) sets the size of the streamed image folder.
# GPU_CHECK_CLI=1 also runs tests/test_cli.py with every command on the GPU (a few minutes).
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="src:.:.gpu_deps" TRANSFERABILITY_PROGRESS=0
PY=${PYTHON:-python}
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }

stamp "== CUDA tests"
timeout 150 "$PY" -m pytest tests -m cuda -q -p no:cacheprovider -rs 2>&1 | tail -15
if [ "${GPU_CHECK_CLI:-0}" = 1 ]; then
    stamp "== tests/test_cli.py with TRANSFERABILITY_DEVICE=cuda"
    TRANSFERABILITY_DEVICE=cuda timeout 400 "$PY" -m pytest tests/test_cli.py -q -x \
        -p no:cacheprovider 2>&1 | tail -15
fi
stamp "== PGD-10 vs torchattacks (CPU, then CUDA)"
timeout 150 "$PY" -m benchmarks attacks 2>&1
stamp "== APGD-CE per iteration / PGD per step on CUDA (cnn, batch 500)"
timeout 120 "$PY" -c "
import torch
from benchmarks.bench_autoattack import per_iteration
from transferability.models import create_model
torch.manual_seed(0)
model = create_model('cnn', num_classes=10).cuda().eval()
x, y = torch.rand(500, 1, 28, 28, device='cuda'), torch.randint(0, 10, (500,), device='cuda')
print(f'APGD-CE per iteration / PGD per step: {per_iteration(model, x, y):.2f}x (goal <= 1.1)')
" 2>&1
stamp "== GPU: agreement with the CPU, feature extraction"
timeout 300 "$PY" -m benchmarks gpu 2>&1
stamp "== host memory while streaming an image folder, 8 readers"
BENCH_STREAM_IMAGES=${BENCH_STREAM_IMAGES:-50000} BENCH_STREAM_WORKERS=8 \
    timeout 420 "$PY" -m benchmarks streaming 2>&1
for device in cuda cpu; do
    stamp "== transferability benchmark --quick --device $device (empty cache)"
    tmp=$(mktemp -d)
    t0=$(date +%s.%N)
    timeout 300 "$PY" -m transferability.cli benchmark --quick --device "$device" \
        --cache-dir "$tmp" --out "$tmp/out" > "$tmp/log" 2>&1
    rc=$?
    echo "benchmark --quick --device $device: exit $rc, $(python3 -c \
        "print(round($(date +%s.%N) - $t0, 1))") s"
    [ $rc -eq 0 ] || tail -5 "$tmp/log"
    rm -rf "$tmp"
done
stamp "done"
