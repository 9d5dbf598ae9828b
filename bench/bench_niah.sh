#!/usr/bin/env bash
# bench/bench_niah.sh TOME_BINARY [OUT_DIR] — the synthetic retrieval model at
# long context (issue 7 targets), recorded in BENCHMARKS.md:
#   1. 1M tokens × 5 depths with bf16, int8 and int4 KV ($KVS to pick) (target: 100 % retrieval,
#      ≤ 2 minutes in total on the 2-core VM)
#   2. 10M tokens × 3 depths, int4 KV with a 256 MiB RAM budget for sealed pages,
#      the rest on the disk tier (target: peak RSS ≤ 16 GB)
# Prints wall time, CPU time (user+sys) and peak RSS of every run (/usr/bin/time).
# Set TOME_TOKENIZER to a Llama 4 tokenizer.model (default ../shared/llama4).
set -euo pipefail
cd "$(dirname "$0")/.."
TOME=${1:-build/tome}
OUT=${2:-build/bench-niah}
export TOME_TOKENIZER=${TOME_TOKENIZER:-../shared/llama4/tokenizer.model}
mkdir -p "$OUT"
run() {
  local name=$1; shift
  echo "== $name: tome niah $*"
  /usr/bin/time -f "$name: %e s wall, %U s user, %S s sys, peak RSS %M KB" \
    "$TOME" niah --model synthetic -o "$OUT/$name" "$@" 2>&1 | grep -v '^wrote'
}
if [ "${SKIP_1M:-0}" != 1 ]; then
  for kv in ${KVS:-bf16 int8 int4}; do
    run "1M-$kv" --lengths 1M --depths 0,25,50,75,100 --kv "$kv"
  done
fi
if [ "${SKIP_10M:-0}" != 1 ]; then
  mkdir -p "$OUT/spill"
  run "10M-int4" --lengths 10M --depths 0,50,100 --kv int4 --kv-ram 256M --kv-disk "$OUT/spill"
fi
