#!/usr/bin/env bash
# scripts/demo.sh TOME_BINARY — the README's main job on the bundled samples:
#   1. generate the sample contract archive (PDF + DOCX + policy, nested tar.gz)
#   2. tome pack the sample repository + the contract archive into one prompt
#   3. show the way back from tokens to sources: inspect, locate, cite
#   4. tome tokenize on a sample file
#   5. tome niah --model synthetic over 64K-1M tokens: the grid and an SVG heatmap
# The tokenizer comes from $TOME_TOKENIZER, else ../shared/llama4/tokenizer.model.
set -euo pipefail
cd "$(dirname "$0")/.."
TOME=${1:-build/tome}
OUT=${TOME_DEMO_DIR:-build/demo}
TOK=${TOME_TOKENIZER:-../shared/llama4/tokenizer.model}
if [ ! -f "$TOK" ] && [ ! -d "$TOK" ]; then
  echo "demo: no Llama 4 tokenizer at '$TOK'; set TOME_TOKENIZER to a tokenizer.model," >&2
  echo "      a tokenizer.json or a model directory holding one" >&2
  exit 4
fi
mkdir -p "$OUT"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "samples: generating $OUT/contracts.zip (a PDF, a DOCX and a policy, written by scripts/make_samples.py)"
python3 scripts/make_samples.py "$OUT"

step "tome pack samples/repo $OUT/contracts.zip -o $OUT/samples.tpk"
"$TOME" pack samples/repo "$OUT/contracts.zip" -o "$OUT/samples.tpk" -t "$TOK" \
    --format markdown --render "$OUT/samples.md"
echo "rendering for other tools: $OUT/samples.md ($(wc -c <"$OUT/samples.md") bytes)"

step "tome inspect $OUT/samples.tpk (first lines)"
"$TOME" inspect "$OUT/samples.tpk" | head -n 20

step "from a token back to its source: tome locate"
total=$("$TOME" inspect "$OUT/samples.tpk" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens"])')
for t in $((total / 3)) $((total / 2)) $((total - 10)); do
  printf 'token %7d -> %s\n' "$t" "$("$TOME" locate "$OUT/samples.tpk" "$t")"
done

step "checking citations: tome cite"
"$TOME" cite "$OUT/samples.tpk" "repo/src/ledger.c:1-6"
if "$TOME" cite "$OUT/samples.tpk" "repo/src/ledger.c:99999" >/dev/null 2>&1; then
  echo "demo: a citation past the end of the file was accepted" >&2; exit 1
else
  echo "(repo/src/ledger.c:99999 does not exist: tome cite exits $?)"
fi

step "tome tokenize --count samples/repo/README.md"
"$TOME" tokenize -t "$TOK" --count samples/repo/README.md
printf 'Hello, Llama 4! 你好 🦙\n' | "$TOME" tokenize -t "$TOK" - | paste -sd' '

step "tome niah --model synthetic: needle in a haystack, 64K to 1M tokens (docs/synthetic-model.md)"
# the hand-set retrieval model runs through the real loader, forward pass,
# KV cache (int8 here) and attention; every cell should read 1.00
"$TOME" niah --model synthetic -t "$TOK" --lengths 64K,256K,1M --depths 0,50,100 --kv int8 -o "$OUT/niah"
echo "heatmap: $OUT/niah/niah.svg (open it in a browser); grid: $OUT/niah/niah.json, $OUT/niah/niah.csv"

step "done: $OUT/samples.tpk, $OUT/samples.md, $OUT/niah/niah.svg"
