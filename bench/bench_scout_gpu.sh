#!/bin/sh
# bench/bench_scout_gpu.sh — Llama 4 Scout's real shapes on one GPU (issue 8).
# For a GPU machine (nvcc, a CUDA device, >= 100 GB of host RAM for the
# int4 dummy weights made on the host); run from the repository root:
#
#   sh bench/bench_scout_gpu.sh [build-dir]        # default build-gpu
#
# 1. builds with CUDA for this GPU and runs the CUDA-vs-CPU tests
#    (test_backend_cuda, test_gpu_plan);
# 2. prints the arithmetic (bench_scout_gpu: weight bytes, KV bytes per token
#    per format, the largest context on this GPU, host RAM for 1M/3.6M/10M,
#    the 1M prefill FLOP floor) for this GPU's memory;
# 3. times prefill and decode with --load-format dummy --weights int4 on the
#    Scout config at each context of TOME_SCOUT_CTX (default 8192 131072
#    1048576): bench_model --device cuda; device KV rows f32 up to 131072
#    tokens on a GPU of >= 120 GB (65536 on smaller ones: f32 rows of 128K
#    do not fit beside the weights on 80 GB) — prefill attention on the
#    tensor-core kernel — and bf16 above
#    (TOME_CUDA_KV=bf16: half the bytes, but the prefill attention is then
#    the SIMT kernel — slow), TOME_SCOUT_DECODE decode steps (default 32),
#    micro-batch TOME_SCOUT_UBATCH (default 2048). Global layers whose K/V do
#    not fit on the GPU go to mapped pinned host memory (slow; set
#    TOME_CUDA_KV_HOST=0 to get an error instead); a run that fails prints
#    bench_model's error and the script goes on.
# Every run line goes to stdout and to $OUT/bench_scout_gpu.log when OUT is set.
set -u
B=${1:-build-gpu}
CFG=${TOME_SCOUT_CONFIG:-../shared/llama4/scout-text-config.json}
CTXS=${TOME_SCOUT_CTX:-8192 131072 1048576}
DEC=${TOME_SCOUT_DECODE:-32}
UB=${TOME_SCOUT_UBATCH:-2048}
LOG=${OUT:+$OUT/bench_scout_gpu.log}
LOG=${LOG:-/dev/null}
say() { echo "$@" | tee -a "$LOG"; }

cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DTOME_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=native >/dev/null || exit 1
cmake --build "$B" -j"$(nproc)" --target tome_cli test_backend_cuda test_gpu_plan bench_model bench_scout_gpu >/dev/null || exit 1
say "== device"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$LOG"
say "== correctness (CUDA vs CPU)"
(cd "$B" && ctest -R 'test_backend_cuda|test_gpu_plan' --output-on-failure) 2>&1 | tee -a "$LOG"
MEM_GB=$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits 2>/dev/null | head -1 | awk '{printf "%.1f", $1 * 1048576 / 1e9 * 0.97}')
say "== arithmetic (budget: 97% of ${MEM_GB:-80} GB)"
"$B"/bench/bench_scout_gpu "$CFG" --weights int4 --budget-gb "${MEM_GB:-80}" 2>&1 | tee -a "$LOG"
D=$(mktemp -d)
cp "$CFG" "$D"/config.json
for N in $CTXS; do
    KV=f32
    F32_MAX=65536
    [ "${MEM_GB%.*}" -ge 120 ] 2>/dev/null && F32_MAX=131072
    [ "$N" -gt "$F32_MAX" ] && KV=bf16
    say "== Scout int4 (dummy), context $N, ubatch $UB, $DEC decode steps, $KV device KV rows"
    /usr/bin/time -f 'wall %e s, max RSS %M KB' env TOME_CUDA_KV=$KV "$B"/bench/bench_model "$D" --dummy \
        --weights int4 --device cuda --prompt "$N" --decode "$DEC" --ubatch "$UB" --reps 1 2>&1 | tee -a "$LOG"
    nvidia-smi --query-gpu=memory.used --format=csv,noheader 2>&1 | tee -a "$LOG"
done
rm -rf "$D"
