#!/bin/sh
# bench/attention_gpu.sh — build tome with CUDA, check the kernels against
# the CPU attention, then time them next to PyTorch's SDPA on the same
# shapes. For a GPU machine (nvcc, a CUDA device, PyTorch with CUDA for the
# SDPA side); run from the repository root:
#
#   sh bench/attention_gpu.sh [build-dir]     # default build-gpu
#
# Prints: test_attention_cuda's per-case errors, bench_attention_cuda's
# TFLOP/s (prefill 8K/64K/256K/1M, causal and chunked 8192) and decode GB/s
# per format (128K, 1M), then attention_sdpa.py's copy bandwidth and SDPA
# (flash, cuDNN) TFLOP/s. Override sizes with TOME_ATTN_PREFILL /
# TOME_ATTN_DECODE (comma lists).
set -eu
B=${1:-build-gpu}
PREFILL=${TOME_ATTN_PREFILL:-8192,65536,262144,1048576}
DECODE=${TOME_ATTN_DECODE:-131072,1048576}
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DTOME_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=native >/dev/null
cmake --build "$B" -j"$(nproc)" --target test_attention test_attention_cuda bench_attention_cuda
"$B"/tests/test_attention_cuda
"$B"/tests/test_attention | tail -1
"$B"/bench/bench_attention_cuda --prefill "$PREFILL" --decode "$DECODE"
PY=${PYTHON:-python3}
if "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    "$PY" bench/attention_sdpa.py --prefill "$PREFILL"
else
    echo "attention_gpu.sh: no PyTorch with CUDA: SDPA comparison skipped"
fi
