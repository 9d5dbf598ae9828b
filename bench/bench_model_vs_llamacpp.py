#!/usr/bin/env python3
"""Prefill and decode tokens/s of tome and llama.cpp side by side, in one run,
on the same weights (a ~100M-parameter Scout-shaped checkpoint).

    .venv/bin/pip install -r scripts/requirements-bench.txt      # builds llama.cpp (minutes)
    .venv/bin/pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36 -d /tmp/llsrc
    tar xzf /tmp/llsrc/llama_cpp_python-0.3.36.tar.gz -C /tmp/llsrc
    .venv/bin/python3 bench/bench_model_vs_llamacpp.py \
        --llama-src /tmp/llsrc/llama_cpp_python-0.3.36/vendor/llama.cpp \
        --bench build-rel/bench/bench_model --tome build-rel/tome

Steps: `tome mkmodel --preset small` writes the checkpoint (bf16); llama.cpp's
own converter (convert_hf_to_gguf.py, Llama4Model) turns it into a bf16 GGUF.
The checkpoint has no tokenizer, so the converter's vocabulary step is
replaced by a synthetic byte-level vocabulary of the right size (ids are fed
directly; no text is tokenized). The `small` preset uses the Scout values
llama.cpp hard-codes for llama4 (NoPE every 4th layer, chunk 8192,
temperature tuning 0.1 / 8192, QK-norm), so both engines compute the same
function; the script checks that on the first positions' logits.
Both engines run with the same thread count, prompt length and number of
decoded tokens; they take turns (one repetition each) and the best of --reps
repetitions is reported, with the load average before and after.
"""
import argparse, os, re, shutil, subprocess, sys, tempfile, time

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--llama-src", required=True, help="llama.cpp source tree (has convert_hf_to_gguf.py)")
ap.add_argument("--bench", required=True, help="tome's bench_model executable")
ap.add_argument("--tome", required=True, help="tome executable (for mkmodel / score)")
ap.add_argument("--model", default=None, help="existing checkpoint dir (default: mkmodel --preset small)")
ap.add_argument("--prompt", type=int, default=512)
ap.add_argument("--decode", type=int, default=64)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--reps", type=int, default=3)
args = ap.parse_args()

work = tempfile.mkdtemp(prefix="tome_vs_llamacpp_")
model = args.model or os.path.join(work, "small")
if not args.model:
    subprocess.run([args.tome, "mkmodel", "--preset", "small", "--seed", "1", "-o", model], check=True)
gguf_path = os.path.join(work, "small-bf16.gguf")

CONVERT = r'''
import sys
src = sys.argv[1]
sys.path.insert(0, src); sys.path.insert(1, src + "/gguf-py")
import convert_hf_to_gguf as conv
from conversion.llama import Llama4Model

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b); cs.append(256 + n); n += 1
    return [chr(c) for c in cs]

def set_vocab(self):
    n = self.hparams["vocab_size"]
    toks = bytes_to_unicode() + [f"<t{i}>" for i in range(256, n)]
    self.gguf_writer.add_tokenizer_model("gpt2")
    self.gguf_writer.add_tokenizer_pre("default")
    self.gguf_writer.add_token_list(toks)
    self.gguf_writer.add_token_types([1] * n)
    self.gguf_writer.add_token_merges(["\u0120 \u0120"])
    self.gguf_writer.add_bos_token_id(1)
    self.gguf_writer.add_eos_token_id(2)

Llama4Model.set_vocab = set_vocab
sys.argv = ["convert_hf_to_gguf.py", sys.argv[2], "--outtype", "bf16", "--outfile", sys.argv[3]]
conv.main()
'''
subprocess.run([sys.executable, "-c", CONVERT, args.llama_src, model, gguf_path], check=True,
               stdout=subprocess.DEVNULL)

from llama_cpp import Llama  # noqa: E402

rng = np.random.default_rng(1)
# tome's bench_model uses its own LCG ids; both get random ids in [0, vocab)
ids = [int(x) for x in rng.integers(3, 32000, args.prompt)]

llm = Llama(model_path=gguf_path, n_ctx=args.prompt + args.decode + 16, n_batch=512, n_ubatch=512,
            n_threads=args.threads, n_threads_batch=args.threads, logits_all=True, verbose=False)
# fidelity check: logits of the first 8 positions against tome score
llm.reset()
llm.eval(ids[:8])
ll = np.array(llm.scores[:8], dtype=np.float32)
out = os.path.join(work, "tome8.npy")
subprocess.run([args.tome, "score", "--model", model, "--ids", ",".join(map(str, ids[:8])), "--logits-out", out,
                "--threads", str(args.threads)], check=True, stderr=subprocess.DEVNULL)
tl = np.load(out)
rel = float(np.abs(ll - tl).max() / np.abs(tl).max())
agree = float((ll.argmax(1) == tl.argmax(1)).mean())
del llm

llm = Llama(model_path=gguf_path, n_ctx=args.prompt + args.decode + 16, n_batch=512, n_ubatch=512,
            n_threads=args.threads, n_threads_batch=args.threads, logits_all=False, verbose=False)
n_vocab = llm.n_vocab()


def last_logits():
    # logits_all=False: llama-cpp-python no longer copies them; read llama.cpp's buffer
    return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,))


def llama_run():
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(ids)
    t1 = time.perf_counter()
    tok = int(np.argmax(last_logits()))
    for _ in range(args.decode):
        llm.eval([tok])
        tok = int(np.argmax(last_logits()))
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1


def tome_run():
    r = subprocess.run([args.bench, model, "--prompt", str(args.prompt), "--decode", str(args.decode),
                        "--threads", str(args.threads), "--reps", "1", "--warmup", "1"], check=True, capture_output=True, text=True)
    pf = float(re.search(r"prefill .*: ([0-9.]+) s, [0-9.]+ tokens/s", r.stdout).group(1))
    dec = float(re.search(r"decode .*: ([0-9.]+) s, [0-9.]+ tokens/s", r.stdout).group(1))
    return pf, dec


# the engines take turns, one repetition each, so that a change in the load of
# a shared machine falls on both; the best repetition of each is reported
load0 = os.getloadavg()[0]
best = {"llama.cpp": [1e30, 1e30], "tome": [1e30, 1e30]}
for _ in range(args.reps):
    for name, fn in (("llama.cpp", llama_run), ("tome", tome_run)):
        pf, dec = fn()
        best[name][0], best[name][1] = min(best[name][0], pf), min(best[name][1], dec)
load1 = os.getloadavg()[0]

import llama_cpp  # noqa: E402

cpu = "?"
try:
    with open("/proc/cpuinfo") as f:
        cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
except (OSError, StopIteration):
    pass
print(f"model: {model} (bf16), prompt {args.prompt}, decode {args.decode}, threads {args.threads}, best of {args.reps}")
print(f"llama.cpp: llama-cpp-python {llama_cpp.__version__}; CPU: {cpu}, {os.cpu_count()} logical CPUs; "
      f"load average {load0:.2f} before, {load1:.2f} after")
print(f"llama.cpp vs tome logits (8 positions): max diff / max|logit| {rel:.2e}, argmax agreement {agree:.2f}")
print(f"{'engine':<12}{'prefill tok/s':>16}{'decode tok/s':>16}")
for name in ("llama.cpp", "tome"):
    print(f"{name:<12}{args.prompt / best[name][0]:>16.1f}{args.decode / best[name][1]:>16.2f}")
print(f"tome / llama.cpp: prefill {best['llama.cpp'][0] / best['tome'][0]:.2f}x, "
      f"decode {best['llama.cpp'][1] / best['tome'][1]:.2f}x")
del llm
shutil.rmtree(work, ignore_errors=True)  # the GGUF copy (~180 MB)
