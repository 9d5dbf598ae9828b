#!/usr/bin/env bash
# bench/bench_pack.sh — `tome pack` on a fresh checkout of a large public
# repository (git/git by default), against Python tiktoken tokenizing the
# same bytes.
#
#   bench/bench_pack.sh [TOME_BIN] [SRC_DIR] [RUNS]
#
#   TOME_BIN  the tome executable (default build/tome)
#   SRC_DIR   the tree to pack (default /tmp/gitgit). When it does not exist
#             and $GIT_MIRROR is a bare clone of git/git, it is extracted with
#             `git --git-dir=$GIT_MIRROR archive HEAD | tar -x -C SRC_DIR`.
#   RUNS      timed runs after one warm-up run (default 3)
#
# Reports, per run: wall time, user+sys CPU, peak RSS (/usr/bin/time -v); and
# files, tokens, bytes read, MB/s (tome pack --json). Then Python tiktoken's
# time to encode the same bytes (every regular file under 16 MiB, decoded
# as UTF-8 with replacement) with the Llama 4 ranks and pattern, single call
# and encode_ordinary_batch over files with one thread per core.
# Environment: TOME_TOKENIZER (default ../shared/llama4/tokenizer.model),
# PYTHON (default .venv/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-build/tome}
SRC=${2:-/tmp/gitgit}
RUNS=${3:-3}
TOK=${TOME_TOKENIZER:-../shared/llama4/tokenizer.model}
PY=${PYTHON:-.venv/bin/python3}
OUT=$(mktemp -d /tmp/bench_pack.XXXXXX)
trap 'rm -rf "$OUT"' EXIT

if [ ! -d "$SRC" ]; then
  if [ -n "${GIT_MIRROR:-}" ]; then
    mkdir -p "$SRC"
    git --git-dir="$GIT_MIRROR" archive HEAD | tar -x -C "$SRC"
  else
    echo "bench_pack: $SRC does not exist (set GIT_MIRROR to a bare clone of git/git)" >&2
    exit 2
  fi
fi

echo "# tome pack $SRC ($(find "$SRC" -type f | wc -l) files, $(du -sh --apparent-size "$SRC" | cut -f1)), $(nproc) cores, $(date -u +%F)"
"$BIN" pack "$SRC" -o "$OUT/warm.tpk" -t "$TOK" -q   # warm the page cache
for i in $(seq 1 "$RUNS"); do
  /usr/bin/time -v "$BIN" pack "$SRC" -o "$OUT/p.tpk" -t "$TOK" -q --json >"$OUT/s.json" 2>"$OUT/time.txt"
  wall=$(grep "Elapsed (wall clock)" "$OUT/time.txt" | awk '{print $NF}')
  user=$(grep "User time" "$OUT/time.txt" | awk '{print $NF}')
  sys=$(grep "System time" "$OUT/time.txt" | awk '{print $NF}')
  rss=$(grep "Maximum resident" "$OUT/time.txt" | awk '{print $NF}')
  "$PY" - "$OUT/s.json" "$wall" "$user" "$sys" "$rss" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
wall, user, sys_, rss = sys.argv[2:]
print(f"tome pack: wall {wall}  cpu {float(user) + float(sys_):.2f} s  peak RSS {int(rss) / 1024:.0f} MB  "
      f"files {s['files']} (full {s['full']}, outline {s['outline']}, listed {s['listed']}, "
      f"aliases {s['aliases']}, skipped {s['skipped_count']})  tokens {s['tokens']}  "
      f"read {s['bytes_read'] / 1e6:.1f} MB  {s['mb_per_s']:.1f} MB/s (internal {s['seconds']:.2f} s)  "
      f"pack {s['pack_bytes'] / 1e6:.1f} MB  phases " +
      " ".join(f"{k} {v:.2f}" for k, v in s.get('phase_seconds', {}).items()))
EOF
done

"$PY" - "$SRC" "$TOK" <<'EOF'
import base64, os, sys, time
import tiktoken
src, model = sys.argv[1], sys.argv[2]
PATTERN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
           r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
           r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")
ranks = {}
with open(model, "rb") as f:
    for line in f:
        if line.strip():
            t, r = line.split()
            ranks[base64.b64decode(t)] = int(r)
enc = tiktoken.Encoding("llama4", pat_str=PATTERN, mergeable_ranks=ranks, special_tokens={})
texts = []
for root, dirs, files in os.walk(src):
    dirs.sort()
    for name in sorted(files):
        p = os.path.join(root, name)
        if os.path.isfile(p) and not os.path.islink(p) and os.path.getsize(p) < (16 << 20):
            texts.append(open(p, "rb").read().decode("utf-8", errors="replace"))
nbytes = sum(len(t.encode()) for t in texts)
whole = "".join(texts)
t0 = time.perf_counter()
n1 = len(enc.encode_ordinary(whole))
t1 = time.perf_counter()
n2 = sum(len(x) for x in enc.encode_ordinary_batch(texts, num_threads=os.cpu_count()))
t2 = time.perf_counter()
print(f"tiktoken {tiktoken.__version__}: {nbytes / 1e6:.1f} MB, {n1} tokens: one call {t1 - t0:.2f} s "
      f"({nbytes / 1e6 / (t1 - t0):.1f} MB/s); per-file batch on {os.cpu_count()} threads {t2 - t1:.2f} s "
      f"({n2} tokens)")
EOF
