#!/usr/bin/env bash
# bench/fuzz_tokenizer.sh [SECONDS] — build the tokenizer fuzz target with
# clang and libFuzzer (tests/fuzz/fuzz_tokenizer.c) and run it for SECONDS
# (default 180) from a seed corpus made of the golden tokenizer texts.
#   BUILD=build-fuzz    build directory (default)
#   TOME_TOKENIZER=...  tokenizer (default ../shared/llama4/tokenizer.model)
# Crashes land in $BUILD/fuzz_artifacts/; the grown corpus in
# $BUILD/fuzz_tokenizer_corpus/ (kept between runs). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-180}
build=${BUILD:-build-fuzz}
export TOME_TOKENIZER=${TOME_TOKENIZER:-$(cd .. && pwd)/shared/llama4/tokenizer.model}

CC=clang cmake -S . -B "$build" -DTOME_FUZZ=ON -DTOME_CUDA=OFF -DTOME_BUILD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target fuzz_tokenizer >/dev/null

seeds="$build/fuzz_tokenizer_seeds"
corpus="$build/fuzz_tokenizer_corpus"
artifacts="$build/fuzz_artifacts"
rm -rf "$seeds"
mkdir -p "$seeds" "$corpus" "$artifacts"
cp tests/golden/tokenizer/*.txt tests/golden/tokenizer/*.c tests/golden/tokenizer/*.py "$seeds/"
printf 'T! a\n/b\n  c\r\n' >"$seeds/threads.txt"
printf 'abc\xe4\xbd' >"$seeds/cut.txt"
printf '\xff\xfe \xc0\xaf\xed\xa0\x80 x' >"$seeds/invalid.txt"
echo "fuzz_tokenizer: $(ls "$seeds" | wc -l) seeds, running ${secs}s"
"$build/tests/fuzz_tokenizer" -max_total_time="$secs" -max_len=4096 -timeout=30 -rss_limit_mb=2560 \
  -artifact_prefix="$artifacts/" -print_final_stats=1 "$corpus" "$seeds"
