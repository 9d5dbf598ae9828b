#!/usr/bin/env python3
"""tests/test_kvcache_cli.py — `tome prefill` end to end on a tiny model with
the full Llama 4 vocabulary (dummy weights) over a real pack of the sample
repository: snapshot written; the same run with a RAM budget and a disk tier
gives the same file; a run SIGKILLed after a checkpoint (and one killed from
outside at an arbitrary moment) resumes to the same bytes as an uninterrupted
run; mismatched model / format refused (exit 6); corrupt and truncated
snapshots refused (exit 3); a full disk (RLIMIT_FSIZE) fails with exit 5 and
leaves the previous checkpoint intact; a RAM budget below one chunk is refused.
"""
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TOME = os.environ["TOME_BIN"]
SRC = os.environ["TOME_SOURCE_DIR"]
SHARED = os.environ.get("TOME_SHARED_DIR") or os.path.join(SRC, "..", "shared")
TOKENIZER = os.path.join(SHARED, "llama4", "tokenizer.model")

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("  FAIL:", what)


def run(args, env=None, preexec=None, check_rc=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.run([TOME] + args, capture_output=True, text=True, env=e, preexec_fn=preexec)
    if check_rc is not None and p.returncode != check_rc:
        failures.append("%s: rc %d, want %d: %s" % (" ".join(args[:1]), p.returncode, check_rc, p.stderr.strip()))
        print("  FAIL:", args, p.returncode, p.stderr)
    return p


def same(a, b):
    with open(a, "rb") as f, open(b, "rb") as g:
        return f.read() == g.read()


def main():
    if not os.path.exists(TOKENIZER):
        print("skip: no tokenizer at", TOKENIZER)
        return 0
    tmp = tempfile.mkdtemp(prefix="tome-kvcli-")
    try:
        model = os.path.join(tmp, "tiny")
        run(["mkmodel", "--preset", "tiny", "--config-only", "-o", model], check_rc=0)
        cfg_path = os.path.join(model, "config.json")
        cfg = json.load(open(cfg_path))
        cfg["vocab_size"] = 202048  # the pack's ids are Llama 4 ids
        json.dump(cfg, open(cfg_path, "w"))
        pack = os.path.join(tmp, "src.tpk")
        run(["pack", os.path.join(SRC, "samples", "repo", "src"), "-t", TOKENIZER, "-o", pack], check_rc=0)
        base = ["prefill", "--model", model, "--load-format", "dummy", "--pack", pack, "--kv", "int4",
                "--page-tokens", "16", "--checkpoint-every", "256", "--threads", "2"]
        full = os.path.join(tmp, "full.tkv")
        p = run(base + ["-o", full], check_rc=0)
        check(os.path.exists(full) and os.path.getsize(full) > 4096, "snapshot written")
        if failures:
            return 1
        check("tokens" in p.stderr, "summary printed")
        p = run(base + ["-o", full], check_rc=0)
        check("already complete" in p.stderr, "second run sees a complete snapshot")
        # -o naming the pack (or any file that is not a snapshot) is refused,
        # even with --fresh, and the file is left as it was
        before = open(pack, "rb").read()
        p = run(base + ["-o", pack, "--fresh"], check_rc=2)
        check("is not a KV snapshot" in p.stderr and open(pack, "rb").read() == before, "-o over the pack refused")

        # tiers do not change the snapshot
        spill = os.path.join(tmp, "spill.tkv")
        disk = os.path.join(tmp, "disk")
        os.mkdir(disk)
        p = run(base + ["-o", spill, "--ram-budget", "40K", "--disk-dir", disk], check_rc=0)
        check("on disk" in p.stderr and " 0 on disk" not in p.stderr, "pages spilled: " + p.stderr.strip())
        check(same(full, spill), "budget + disk tier give the same snapshot")
        check(os.listdir(disk) == [], "page file is anonymous")

        # SIGKILL after the 3rd checkpoint, then resume
        part = os.path.join(tmp, "part.tkv")
        p = run(base + ["-o", part], env={"TOME_TEST_PREFILL_KILL_AFTER": "3"})
        check(p.returncode == -signal.SIGKILL, "killed: rc %d" % p.returncode)
        check(os.path.exists(part) and not same(full, part), "checkpoint left behind")
        p = run(base + ["-o", part], check_rc=0)
        check("resuming" in p.stderr and "768" in p.stderr, "resumed at 768: " + p.stderr.strip())
        check(same(full, part), "resumed snapshot equals the uninterrupted one")
        check(sorted(os.listdir(tmp)).count("part.tkv") == 1 and not [f for f in os.listdir(tmp) if ".tmp." in f],
              "no temp files")

        # killed from outside at an arbitrary moment (after the first checkpoint exists)
        part2 = os.path.join(tmp, "part2.tkv")
        proc = subprocess.Popen([TOME] + base + ["-o", part2, "--checkpoint-every", "64", "--ubatch", "16"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.time()
        while not os.path.exists(part2) and proc.poll() is None and time.time() - t0 < 60:
            time.sleep(0.002)
        proc.kill()
        proc.wait()
        p = run(base + ["-o", part2, "--checkpoint-every", "64", "--ubatch", "16"], check_rc=0)
        check(same(full, part2), "externally killed run resumes to the same bytes")

        # mismatches: another model, another format
        other = os.path.join(tmp, "other")
        shutil.copytree(model, other)
        cfg["rms_norm_eps"] = 1e-6
        json.dump(cfg, open(os.path.join(other, "config.json"), "w"))
        p = run(["prefill", "--model", other, "--load-format", "dummy", "--pack", pack, "--kv", "int4",
                 "--page-tokens", "16", "-o", part])
        check(p.returncode == 6 and "another model" in p.stderr, "other model refused: %d %s" % (p.returncode, p.stderr))
        p = run(base[:8] + ["int8"] + base[9:] + ["-o", part])
        check(p.returncode == 6 and "int4" in p.stderr, "other format refused: %d %s" % (p.returncode, p.stderr))

        # corrupt and truncated
        data = open(full, "rb").read()
        bad = os.path.join(tmp, "bad.tkv")
        open(bad, "wb").write(data[:-1000])
        p = run(base + ["-o", bad])
        check(p.returncode == 3 and "truncated" in p.stderr, "truncated refused: %d %s" % (p.returncode, p.stderr))
        b = bytearray(data)
        b[len(b) - 2000] ^= 0x20
        open(bad, "wb").write(bytes(b))
        p = run(base + ["-o", bad])
        check(p.returncode == 3 and "checksum mismatch" in p.stderr, "corrupt refused: %d %s" % (p.returncode, p.stderr))
        p = run(base + ["-o", bad, "--fresh"], check_rc=0)
        check(same(full, bad), "--fresh starts over")

        # disk full: the checkpoint after the first cannot be written
        dfull = os.path.join(tmp, "dfull.tkv")
        run(base + ["-o", dfull], env={"TOME_TEST_PREFILL_KILL_AFTER": "1"})
        first = open(dfull, "rb").read()
        limit = len(first) + 2048

        def limit_fsize():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        p = run(base + ["-o", dfull], preexec=limit_fsize)
        check(p.returncode == 5, "disk full: exit 5, got %d %s" % (p.returncode, p.stderr))
        check(open(dfull, "rb").read() == first, "previous checkpoint intact")
        # (only dfull's: the run killed at an arbitrary moment above may have died
        # inside a checkpoint write and left its own temp file, as a SIGKILL can)
        check(not [f for f in os.listdir(tmp) if f.startswith("dfull.tkv.tmp.")], "no temp files after disk full")
        p = run(base + ["-o", dfull], check_rc=0)
        check(same(full, dfull), "resume after disk full")

        # a RAM budget below one chunk of the chunked layers
        p = run(base + ["-o", os.path.join(tmp, "x.tkv"), "--ram-budget", "1K", "--disk-dir", disk])
        check(p.returncode == 5 and "one chunk" in p.stderr, "tiny budget refused: %d %s" % (p.returncode, p.stderr))
        check(not os.path.exists(os.path.join(tmp, "x.tkv")), "no file after a refused budget")
        p = run(base + ["-o", os.path.join(tmp, "y.tkv"), "--disk-dir", "/nonexistent/dir"])
        check(p.returncode == 4, "unwritable disk dir: %d %s" % (p.returncode, p.stderr))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print("%d failures" % len(failures))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
