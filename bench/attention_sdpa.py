#!/usr/bin/env python3
"""bench/attention_sdpa.py — PyTorch's scaled_dot_product_attention on the
shapes bench_attention_cuda uses (Scout: 40 query heads over 8 KV heads of
dim 128, bf16), for the comparison in bench/attention_gpu.sh; and the
device's copy bandwidth (the decode ceiling).

prefill: causal over N tokens; chunked-causal as N/C independent causal
blocks of C tokens (the same visible pairs as tome's chunked mask).
K/V are expanded to 40 heads (enable_gqa where the backend takes it).
TFLOP/s counts 4 * head_dim flops per visible (query head, key) pair, as
bench_attention_cuda does. Times: CUDA events, median of repeats.

usage: attention_sdpa.py [--prefill 8192,65536,...] [--chunk 8192] [--reps 5]
"""
import argparse
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

NH, NKV, HD = 40, 8, 128


def timed(fn, reps):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b) / 1e3)
    times.sort()
    return times[len(times) // 2]


def pairs(n, c):
    if c <= 0:
        return n * (n + 1) / 2
    full, rest = divmod(n, c)
    return full * c * (c + 1) / 2 + rest * (rest + 1) / 2


def prefill(n, chunk, backend, reps):
    dev = "cuda"
    q = torch.randn(1, NH, n, HD, device=dev, dtype=torch.bfloat16)
    k = torch.randn(1, NKV, n, HD, device=dev, dtype=torch.bfloat16)
    v = torch.randn(1, NKV, n, HD, device=dev, dtype=torch.bfloat16)
    k = k.repeat_interleave(NH // NKV, dim=1)
    v = v.repeat_interleave(NH // NKV, dim=1)
    if chunk > 0 and n % chunk == 0 and n > chunk:
        b = n // chunk
        q = q.view(NH, b, chunk, HD).transpose(0, 1)
        k = k.reshape(NH, b, chunk, HD).transpose(0, 1)
        v = v.reshape(NH, b, chunk, HD).transpose(0, 1)
    with sdpa_kernel([backend]):
        t = timed(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), reps)
    return t, pairs(n, chunk) * NH * HD * 4 / t / 1e12


def copy_bandwidth():
    x = torch.empty(2 << 30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    t = timed(lambda: y.copy_(x), 10)
    return 2 * x.numel() / t / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefill", default="8192,65536,262144,1048576")
    ap.add_argument("--chunk", type=int, default=8192)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("attention_sdpa: no CUDA device")
        return 0
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
    print(f"copy bandwidth (read + write) {copy_bandwidth():8.1f} GB/s")
    for n in [int(x) for x in a.prefill.split(",") if x]:
        for chunk in (0, a.chunk):
            for name, be in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
                reps = 1 if n >= 262144 else a.reps
                try:
                    t, tf = prefill(n, chunk, be, reps)
                    print(f"sdpa {name:5s} prefill {'chunked' if chunk else 'causal':7s} N={n:<8d} {t*1e3:10.2f} ms {tf:8.1f} TFLOP/s")
                except Exception as e:  # a backend may refuse a shape or run out of memory
                    print(f"sdpa {name:5s} prefill {'chunked' if chunk else 'causal':7s} N={n:<8d} failed: {str(e).splitlines()[0][:100]}")
                torch.cuda.empty_cache()
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
