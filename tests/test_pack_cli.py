#!/usr/bin/env python3
"""tests/test_pack_cli.py — end-to-end checks of `tome pack / inspect / locate / cite`.

Runs the real binary ($TOME_BIN) on a temporary tree and on the sample
contract archive (scripts/make_samples.py): --json parses and agrees with
inspect --json, renderings are written, every file's middle token locates
into that file, cite prints the original lines and exits 1 for citations that
do not exist, a missing tokenizer gives a clear usage error, and a corrupt
pack is refused with the input exit code.
"""
import json
import os
import subprocess
import sys
import tempfile

TOME = os.environ.get("TOME_BIN", "tome")
SRC = os.environ.get("TOME_SOURCE_DIR", os.path.join(os.path.dirname(__file__), ".."))
SHARED = os.environ.get("TOME_SHARED_DIR", os.path.join(SRC, "..", "shared"))
TOKENIZER = os.path.join(SHARED, "llama4", "tokenizer.model")

failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print(f"  FAIL {what}", flush=True)


def tome(*args, env=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run([TOME, *args], capture_output=True, env=e)


def write(root, rel, data):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def test_tree(tmp):
    src = os.path.join(tmp, "proj")
    write(src, "README.md", "# Proj\n\nHello.\n")
    write(src, "src/app.py", "import os\n\n\ndef main():\n    print(os.getcwd())\n\n\nmain()\n")
    write(src, "src/dup.py", "import os\n\n\ndef main():\n    print(os.getcwd())\n\n\nmain()\n")
    write(src, "data.bin", b"\x00\x01\x02\x03binary")
    write(src, "weird\x01name.txt", "control character in the name\n")
    write(src, "caf\u00e9 \"q\\b\"\tdel\x7f\U0001F600.txt", "UTF-8, quote, backslash, tab, DEL, astral\n")
    with open(os.path.join(src.encode(), b"bad\xffname.c"), "wb") as f:
        f.write(b"int bad_name;\n")
    # a name spelling out the escape of the one above: must not print the same
    write(src, "bad\\xffname.c", "int literal_backslash;\n")
    write(src, ".gitignore", "ignored.txt\n")
    write(src, "ignored.txt", "never packed\n")
    out = os.path.join(tmp, "proj.tpk")
    r = tome("pack", src, "-o", out, "-t", TOKENIZER, "--json", "--format", "markdown", "-r")
    check(r.returncode == 0, f"pack exit {r.returncode}: {r.stderr.decode(errors='replace')}")
    summary = json.loads(r.stdout)
    check(summary["tokens"] > 0, "tokens counted")
    paths = {f["path"]: f for f in summary["manifest"]}
    check("ignored.txt" not in paths, "gitignored file not listed")
    check(paths.get("data.bin", {}).get("status") == "skipped", "binary skipped")
    check(any(s["path"] == "data.bin" and "binary" in s["reason"] for s in summary["skipped"]), "skip reason")
    check(paths.get("src/dup.py", {}).get("status") == "alias", "duplicate is an alias")
    check(paths.get("src/dup.py", {}).get("alias_of") == "src/app.py", "alias target")
    check(summary["top_files"][0]["tokens"] >= summary["top_files"][-1]["tokens"], "top files sorted")
    check(os.path.exists(os.path.join(tmp, "proj.md")), "markdown rendering written next to the pack")
    check(b"tome pack:" not in r.stdout, "summary goes to stderr, JSON to stdout")

    r = tome("inspect", out, "--json")
    check(r.returncode == 0, "inspect --json")
    man = json.loads(r.stdout)
    check(man["tokens"] == summary["tokens"], "inspect agrees with pack --json")
    check(man["format"] == "markdown", "format recorded")
    check(any(f["path"] == "weird\\x01name.txt" for f in man["files"]), "control character escaped in JSON as listed")
    r = tome("inspect", out)
    check(r.returncode == 0 and b"weird\\x01name.txt" in r.stdout, "control character escaped in listing")
    check(b"bad\\xffname.c" in r.stdout, "invalid UTF-8 escaped in listing")
    check(any(f["path"] == "bad\\xffname.c" for f in man["files"]), "invalid UTF-8 escaped in JSON")
    check(any(f["path"] == "bad\\x5cxffname.c" for f in man["files"]), "a literal \\xff in a name is told apart in JSON")
    check(len({f["path"] for f in man["files"]}) == len(man["files"]), "JSON paths are unique")
    check(len({f["path"] for f in summary["manifest"]}) == len(summary["manifest"]), "pack --json paths are unique")
    # pack --json writes its manifest itself: every path and reason as inspect --json (jansson) has them
    check([(f["path"], f["status"], f.get("reason", ""), f["tokens"]) for f in summary["manifest"]] ==
          [(f["path"], f["status"], f.get("reason", ""), f["tokens"]) for f in man["files"]],
          "pack --json manifest agrees with inspect --json")
    r = tome("cite", out, "bad\\x5cxffname.c:1")
    check(r.returncode == 0 and r.stdout == b"int literal_backslash;\n", "cite the literal-backslash name")
    check(b'path="bad\\xffname.c"' in open(os.path.join(tmp, "proj.md"), "rb").read().replace(
        b"## File: bad\\xffname.c", b'path="bad\\xffname.c"'), "invalid UTF-8 escaped in the rendering")
    r = tome("cite", out, "bad\\xffname.c:1")
    check(r.returncode == 0 and r.stdout == b"int bad_name;\n", "cite by escaped path")

    for f in man["files"]:
        if f["status"] != "full":
            continue
        mid = f["token_start"] + f["tokens"] // 2
        r = tome("locate", out, str(mid))
        loc = r.stdout.decode().strip()
        check(r.returncode == 0 and loc.startswith(f["path"].replace("\x01", "\\x01")), f"locate {mid} -> {loc}")
    r = tome("locate", out, str(man["tokens"]))
    check(r.returncode == 1, "locate past the end exits 1")

    r = tome("cite", out, "src/app.py:4-5")
    check(r.returncode == 0 and r.stdout == b"def main():\n    print(os.getcwd())\n", f"cite: {r.stdout!r}")
    r = tome("cite", out, "src/app.py:99")
    check(r.returncode == 1 and b"lines" in r.stderr, "cite past the end exits 1")
    r = tome("cite", out, "nope.c:1")
    check(r.returncode == 1, "cite of a missing file exits 1")
    r = tome("cite", out, "data.bin:1")
    check(r.returncode == 1, "cite of a skipped file exits 1")
    r = tome("cite", out, "src/app.py")
    check(r.returncode == 2, "malformed citation is a usage error")

    # deterministic across runs and thread counts
    out2 = os.path.join(tmp, "proj2.tpk")
    r = tome("pack", src, "-o", out2, "-t", TOKENIZER, "--format", "markdown", "--threads", "1", "-q")
    check(r.returncode == 0 and open(out, "rb").read() == open(out2, "rb").read(), "byte-identical repeat")

    # corrupt pack: input error, names the section
    data = bytearray(open(out, "rb").read())
    data[len(data) // 2] ^= 0x40
    bad = os.path.join(tmp, "bad.tpk")
    open(bad, "wb").write(bytes(data))
    r = tome("inspect", bad)
    check(r.returncode == 3 and b"section" in r.stderr, f"corrupt pack refused: {r.stderr!r}")

    # no tokenizer anywhere: clear message, usage exit code, nothing written
    out3 = os.path.join(tmp, "none.tpk")
    env = {"TOME_TOKENIZER": "", "XDG_DATA_HOME": os.path.join(tmp, "xdg-empty"), "HOME": tmp}
    r = tome("pack", src, "-o", out3, env=env)
    check(r.returncode == 2 and b"-t" in r.stderr, "missing tokenizer explained")
    check(not os.path.exists(out3), "nothing written without a tokenizer")
    # --html: a page in the tree is markup by default, extracted text with --html text
    write(src, "site/page.html", "<!DOCTYPE html>\n<html><body><h1>Head</h1>\n<p>Body text</p></body></html>\n")
    out4 = os.path.join(tmp, "html.tpk")
    for mode, want in (("auto", b"<!DOCTYPE html>"), ("source", b"<!DOCTYPE html>"), ("text", b"# Head")):
        r = tome("pack", src, "-o", out4, "-t", TOKENIZER, "-q", "--html", mode)
        check(r.returncode == 0, f"--html {mode}: exit {r.returncode} {r.stderr!r}")
        r = tome("cite", out4, "site/page.html:1")
        check(r.returncode == 0 and r.stdout.startswith(want), f"--html {mode}: line 1 is {r.stdout[:40]!r}")
    r = tome("pack", src, "-o", out4, "-t", TOKENIZER, "--html", "bogus")
    check(r.returncode == 2 and b"--html" in r.stderr, f"bad --html is a usage error: {r.stderr!r}")
    os.remove(os.path.join(src, "site", "page.html"))
    # $TOME_TOKENIZER is used when -t is absent
    r = tome("pack", src, "-o", out3, "-q", env={"TOME_TOKENIZER": TOKENIZER})
    check(r.returncode == 0 and os.path.exists(out3), "TOME_TOKENIZER")

    # the output and its rendering inside the packed tree are never packed
    inside = os.path.join(src, "self.tpk")
    for _ in range(2):
        r = tome("pack", src, "-o", inside, "-t", TOKENIZER, "-r", "--json")
        check(r.returncode == 0, "pack into the source tree")
    names = [f["path"] for f in json.loads(r.stdout)["manifest"]]
    check("self.tpk" not in names and "self.xml" not in names, f"own output left out: {names}")
    os.remove(inside)
    os.remove(os.path.join(src, "self.xml"))

    # --priority moves matching files first
    r = tome("pack", src, "-o", out3, "-t", TOKENIZER, "--priority", "src/*", "--json")
    order = [f["path"] for f in json.loads(r.stdout)["manifest"]]
    check(order[0].startswith("src/"), f"--priority first: {order[:3]}")

    # budget: degraded files are reported
    r = tome("pack", src, "-o", out3, "-t", TOKENIZER, "--budget", "150", "--json")
    if r.returncode == 0:
        s = json.loads(r.stdout)
        check(s["tokens"] <= 150, "budget respected")
        check(len(s["degraded"]) > 0, "degraded files reported")
    else:
        check(r.returncode == 5, "too small a budget is a limit error")

    # over budget: translations (lowest priority) are counted at least, flagged
    # in the manifest and the summary; --exact-counts counts them; same pack text
    lz = os.path.join(tmp, "lazy")
    write(lz, "README.md", "# Lazy\n\nCounting at least.\n")
    for f in range(4):
        write(lz, f"src/m{f}.c", "".join(f"int f{f}_{k}(int a)\n{{\n    return a * {k};\n}}\n\n" for k in range(40)))
    for f in range(6):
        write(lz, f"po/l{f}.po", "".join(f'msgid "message {k} of {f}"\nmsgstr "\u0441\u043e\u043e\u0431\u0449\u0435\u043d\u0438\u0435 {k} \u00fcber {f}"\n\n'
                                          for k in range(80)))
    full = json.loads(tome("pack", lz, "-o", out3, "-t", TOKENIZER, "--json", "-q").stdout)["tokens"]
    runs = {}
    for extra in ((), ("--exact-counts",)):
        r = tome("pack", lz, "-o", out3, "-t", TOKENIZER, "--budget", str(full // 2), "--json", "-r", *extra)
        check(r.returncode == 0, f"pack {extra}: {r.stderr!r}")
        s = json.loads(r.stdout)
        runs[extra] = (s, open(out3[:-4] + ".xml", "rb").read(), r.stderr)
        flags = [f["full_tokens_exact"] for f in json.loads(tome("inspect", out3, "--json").stdout)["files"]]
        check(flags == [f["full_tokens_exact"] for f in s["manifest"]], "inspect shows the flag")
    (sl, tl, el), (se, te, ee) = runs[()], runs[("--exact-counts",)]
    lower = [f for f in sl["manifest"] if not f["full_tokens_exact"]]
    check(sl["counted_at_least"] > 0 and lower and all(f["status"] != "full" for f in lower), "counted at least")
    check(b"at least" in el and b"--exact-counts" in el, f"summary says so: {el!r}")
    check(se["counted_at_least"] == 0 and all(f["full_tokens_exact"] for f in se["manifest"]), "--exact-counts")
    check(tl == te and sl["tokens"] == se["tokens"], "same pack text either way")
    exact = {f["path"]: f["full_tokens"] for f in se["manifest"]}
    check(all(f["full_tokens"] <= exact[f["path"]] for f in lower), "a lower bound")


def test_samples(tmp):
    sys.path.insert(0, os.path.join(SRC, "scripts"))
    d = os.path.join(tmp, "samples")
    r = subprocess.run([sys.executable, os.path.join(SRC, "scripts", "make_samples.py"), d], capture_output=True)
    if r.returncode != 0 or not os.path.exists(os.path.join(d, "contracts.zip")):
        print("  (make_samples.py not available: sample archive checks skipped)")
        return
    out = os.path.join(tmp, "contracts.tpk")
    r = tome("pack", os.path.join(d, "contracts.zip"), "-o", out, "-t", TOKENIZER, "--json")
    check(r.returncode == 0, f"pack contracts.zip: {r.stderr!r}")
    s = json.loads(r.stdout)
    paths = [f["path"] for f in s["manifest"]]
    check(any(p.startswith("contracts.zip!/") for p in paths), "archive member paths")
    check(any("!/" in p[len("contracts.zip!/"):] for p in paths), "nested archive member paths")
    pdf = [f for f in json.loads(tome("inspect", out, "--json").stdout)["files"] if f["path"].endswith(".pdf")]
    if pdf and pdf[0]["status"] == "full":
        f = pdf[0]
        r = tome("locate", out, str(f["token_start"] + f["tokens"] - 5))
        loc = r.stdout.decode().strip()
        check("#page=" in loc, f"PDF token locates to a page: {loc}")
        r = tome("cite", out, loc)
        check(r.returncode == 0 and len(r.stdout) > 0, f"cite {loc}")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for t in (test_tree, test_samples):
            before = failures
            t(tmp)
            print(f"[{'ok' if failures == before else 'FAIL'}] {t.__name__}", flush=True)
    print(f"{failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
