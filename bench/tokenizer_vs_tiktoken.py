#!/usr/bin/env python3
"""Tokenizer throughput, tome vs Python tiktoken, on the same text in one run.

  .venv/bin/python3 bench/tokenizer_vs_tiktoken.py [--build-dir build] [--mb 24]
        [--threads N] [--tokenizer ../shared/llama4/tokenizer.model]

Builds --mb MB of mixed text from files any Debian system has (C headers from
/usr/include, man pages and docs from /usr/share/man and /usr/share/doc,
license texts), written as UTF-8 to a temp file (not kept), then measures:
  tiktoken: load (ranks file -> Encoding), single-thread encode_ordinary,
            encode_ordinary_batch over line chunks with N threads;
  tome:     bench/bench_tokenizer (load, 1 thread, N threads, decode),
and checks that both produce the same number of tokens (and tome's ids equal
tiktoken's on the whole text). Numbers go to BENCHMARKS.md by hand.
"""
import argparse
import base64
import gzip
import os
import subprocess
import sys
import tempfile
import time

import tiktoken

PATTERN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
           r"|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
           r"|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def gather(limit):
    roots = ["/usr/share/common-licenses", "/usr/include", "/usr/share/man", "/usr/share/doc",
             "/usr/share/perl5", "/usr/lib/python3"]
    parts, total = [], 0
    per_root = limit // 3
    for root in roots:
        got = 0
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for fn in sorted(filenames):
                p = os.path.join(dirpath, fn)
                try:
                    if os.path.islink(p) or os.path.getsize(p) > 4 << 20:
                        continue
                    raw = gzip.open(p).read() if fn.endswith(".gz") else open(p, "rb").read()
                except (OSError, EOFError, gzip.BadGzipFile):
                    continue
                if b"\0" in raw[:4096]:
                    continue
                text = raw.decode("utf-8", "replace")
                parts.append(text)
                got += len(raw)
                total += len(raw)
                if got >= per_root or total >= limit:
                    break
            if got >= per_root or total >= limit:
                break
        if total >= limit:
            break
    return "".join(parts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--mb", type=float, default=24)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--tokenizer", default=os.path.join(here, "..", "..", "shared", "llama4", "tokenizer.model"))
    a = ap.parse_args()

    text = gather(int(a.mb * 1e6))
    data = text.encode("utf-8")
    mb = len(data) / 1e6
    print("text: %.1f MB of mixed text (%d lines), %d CPUs, load average %s" %
          (mb, text.count("\n"), os.cpu_count(), open("/proc/loadavg").read().split()[0]))

    t0 = time.perf_counter()
    ranks = {}
    with open(a.tokenizer, "rb") as f:
        for line in f:
            if line.strip():
                tok, rank = line.split()
                ranks[base64.b64decode(tok)] = int(rank)
    enc = tiktoken.Encoding("llama4", pat_str=PATTERN, mergeable_ranks=ranks, special_tokens={})
    t_load = time.perf_counter() - t0
    print("tiktoken %s load          %8.1f ms" % (tiktoken.__version__, t_load * 1e3))

    best = best_cpu = 1e9
    for _ in range(2):
        t0, c0 = time.perf_counter(), time.thread_time()
        ids = enc.encode_ordinary(text)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.thread_time() - c0)
    tk_1t, tk_cpu = mb / best, mb / best_cpu
    print("tiktoken encode 1 thread       %8.2f MB/s  (%d tokens; %.2f MB per CPU-second)" % (tk_1t, len(ids), tk_cpu))

    lines = text.splitlines(keepends=True)
    chunks, cur, size = [], [], 0
    for ln in lines:  # ~64 KB chunks of whole lines
        cur.append(ln)
        size += len(ln)
        if size > 65536:
            chunks.append("".join(cur))
            cur, size = [], 0
    if cur:
        chunks.append("".join(cur))
    t0 = time.perf_counter()
    batch = enc.encode_ordinary_batch(chunks, num_threads=a.threads)
    dt = time.perf_counter() - t0
    print("tiktoken encode batch %2d thr    %8.2f MB/s  (%d tokens; per-chunk, ids may differ at chunk edges)"
          % (a.threads, mb / dt, sum(len(b) for b in batch)))

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mixed.txt")
        with open(path, "wb") as f:
            f.write(data)
        exe = os.path.join(a.build_dir, "bench", "bench_tokenizer")
        res = subprocess.run([exe, a.tokenizer, path, str(a.threads)], capture_output=True, text=True)
        sys.stdout.write(res.stdout.replace("\n", "\n").replace("load ", "tome load ").replace("encode", "tome encode")
                         .replace("decode", "tome decode"))
        if res.returncode != 0:
            sys.stdout.write(res.stderr)
            return 1
        helper = os.path.join(a.build_dir, "tests", "test_tokenizer")
        if os.path.exists(helper):
            out = subprocess.run([helper, "--encode-hex", a.tokenizer], input=("o " + data.hex() + "\n").encode(),
                                 capture_output=True).stdout.decode().split()
            same = [int(x) for x in out] == ids
            print("tome ids == tiktoken ids on the whole text: %s" % ("yes" if same else "NO"))
        for line in res.stdout.splitlines():
            if line.startswith("encode 1T unseen text"):
                tome_1t = float(line.split()[4])
                tome_cpu = float(line.split("; ")[1].split()[0])
                print("tome/tiktoken single-thread speedup, tome on unseen text (cache warmed on other text): "
                      "%.1fx wall clock, %.1fx per CPU-second" % (tome_1t / tk_1t, tome_cpu / tk_cpu))
            elif line.startswith("encode 1T first run"):
                tome_1t = float(line.split()[4])
                tome_cpu = float(line.split("; ")[1].split()[0])
                print("tome/tiktoken single-thread speedup, tome's first run (cold cache): %.1fx wall clock, "
                      "%.1fx per CPU-second" % (tome_1t / tk_1t, tome_cpu / tk_cpu))
            elif line.startswith("encode 1T"):
                tome_1t = float(line.split()[2])
                tome_cpu = float(line.split("; ")[1].split()[0])
                print("tome/tiktoken single-thread speedup: %.1fx wall clock, %.1fx per CPU-second"
                      % (tome_1t / tk_1t, tome_cpu / tk_cpu))
    return 0


if __name__ == "__main__":
    sys.exit(main())
