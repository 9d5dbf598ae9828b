#!/usr/bin/env python3
"""Acceptance of tome ask / tome report on inputs the first tests did not
try: an empty question, a tokenizer the model cannot take, packs and
sources over the model's context, policies that are empty / headings only /
Latin-1 / UTF-16 / markup / very long / binary, an archive with a PDF and a
DOCX; the HTML must be well-formed, valid UTF-8 and load nothing. Each case
is a regression test for a bug found by trying it."""
import json, os, subprocess, sys, tempfile
import xml.etree.ElementTree as ET

from tome_testlib import BIN, ENV, SHARED, SRC, case, exit_code, mkdir_under, n_failed
from tome_testlib import run_lenient as run

TMP = tempfile.mkdtemp(prefix="tome-accept-")


def mkdir(*parts):
    return mkdir_under(TMP, *parts)


def models():
    """the retrieval model, and copies of it with a 2K and a 64K context"""
    base = os.path.join(TMP, "rm")
    if not os.path.exists(base):
        run("mkmodel", "--preset", "retrieval", "-o", base)
        cfg = open(os.path.join(base, "config.json")).read()
        for name, n in (("rm2k", 2048), ("rm64k", 65536)):
            d = mkdir(name)
            os.symlink(os.path.join(base, "model.safetensors"), os.path.join(d, "model.safetensors"))
            open(os.path.join(d, "config.json"), "w").write(
                cfg.replace('"max_position_embeddings":16777216', f'"max_position_embeddings":{n}'))
    return base, os.path.join(TMP, "rm2k"), os.path.join(TMP, "rm64k")


REPO = os.path.join(SRC, "samples", "repo")


@case
def test_ask_refuses_empty_question_wrong_vocab_and_overlong_pack():
    rm, rm2k, _ = models()
    pk = os.path.join(TMP, "repo.tpk")
    run("pack", REPO, "-o", pk)
    for q in ("", "  \n"):
        p = run("ask", "--model", rm, "--pack", pk, q, ok=False)
        assert p.returncode == 2 and "empty" in p.stderr, p.stderr
    # the tiny preset has 512 ids: Llama 4's tokenizer cannot drive it
    tiny = os.path.join(TMP, "tiny")
    run("mkmodel", "--preset", "tiny", "-o", tiny)
    p = run("ask", "--model", tiny, "--pack", pk, "q?", ok=False)
    assert p.returncode == 6 and "vocab_size 512" in p.stderr and "tokenizer" in p.stderr, p.stderr
    # a pack over the model's context: refused, naming the numbers and the fix
    p = run("ask", "--model", rm2k, "--pack", pk, "-n", "4", "q?", ok=False)
    assert p.returncode == 5 and "max_position_embeddings" in p.stderr and "--budget" in p.stderr, p.stderr
    # sources packed on the fly degrade to fit it
    d = json.loads(run("ask", "--model", rm2k, "-n", "4", "--json", REPO, "q?").stdout)
    assert 1000 < d["prompt_tokens"] and d["prompt_tokens"] + 5 <= 2048, d
    # an answer budget that leaves no room at all
    p = run("ask", "--model", rm2k, "-n", "4000", REPO, "q?", ok=False)
    assert p.returncode == 5 and "no room" in p.stderr, p.stderr


def html_check(path):
    """well-formed (every element closed in order), valid UTF-8, and no
    reference that would make a browser load anything"""
    from html.parser import HTMLParser
    raw = open(path, "rb").read()
    text = raw.decode("utf-8")  # raises on invalid UTF-8
    refs, bad, stack = [], [], []

    class P(HTMLParser):
        def handle_starttag(self, t, a):
            refs.extend(v for k, v in a if k in ("src", "href", "action", "data", "poster", "srcset") and v and not v.startswith("#"))
            if t not in ("meta", "br", "hr", "img", "input", "link", "wbr"):
                stack.append(t)

        def handle_endtag(self, t):
            if stack and stack[-1] == t:
                stack.pop()
            else:
                bad.append(t)

    P().feed(text)
    assert not refs and not bad and not stack, (refs, bad, stack)
    assert "<script" not in text.lower() and "url(" not in text and "@import" not in text
    return text


@case
def test_report_policies_odd_content():
    rm, rm2k, _ = models()
    pols = {
        "empty": b"",
        "headings": b"# Policy\n\n## Nothing else\n",
        "latin1": "- Le fournisseur doit \u00eatre conforme.\n- Donn\u00e9es prot\u00e9g\u00e9es.\n".encode("latin-1"),
        "utf16": b"\xff\xfe" + "- Clause \u00e9\u00e9n.\n- Clause twee.\n".encode("utf-16-le"),
        "markup": b"- stray \x01 <script>alert(1)</script> <img src=http://x/y.png> \"q\" & 's'\n",
        "long": ("- " + "The supplier shall keep records. " * 1500 + "\n- Short.\n").encode(),
        "binary": bytes(range(256)) * 4,
    }
    for name, body in pols.items():
        pol = os.path.join(TMP, f"pol-{name}.md")
        open(pol, "wb").write(body)
        out = os.path.join(TMP, f"rep-{name}.html")
        p = run("report", "--task", "compliance", "--policy", pol, "--model", rm, "-n", "2", REPO, "-o", out, ok=False)
        if name in ("empty", "headings"):
            assert p.returncode == 2 and "no clauses" in p.stderr and pol in p.stderr, p.stderr
            continue
        if name == "binary":
            assert p.returncode == 2 and "not a text file" in p.stderr, p.stderr
            continue
        assert p.returncode == 0, p.stderr
        h = html_check(out)
        assert h.count('<h2 id="item-') == (1 if name == "markup" else 2), name
        if name == "latin1":
            assert "Donn\u00e9es prot\u00e9g\u00e9es." in h
        if name == "utf16":
            assert "Clause \u00e9\u00e9n." in h
        if name == "markup":
            assert "&lt;script&gt;" in h and "\ufffd" in h
    # a small context: the sources degrade so that the longest clause fits
    pol = os.path.join(TMP, "pol-two.md")
    open(pol, "w").write("- No secrets.\n- Licenses.\n")
    out = os.path.join(TMP, "rep-2k.html")
    run("report", "--task", "compliance", "--policy", pol, "--model", rm2k, "-n", "4", REPO, "-o", out)
    html_check(out)
    p = run("report", "--task", "compliance", "--policy", os.path.join(TMP, "pol-long.md"), "--model", rm2k,
            "-n", "4", REPO, "-o", out, ok=False)
    assert p.returncode == 5 and "no room" in p.stderr and "policy" in p.stderr, p.stderr


@case
def test_report_refactor_html_self_contained_on_archive():
    rm, _, _ = models()
    # a zip holding a PDF, a DOCX and a nested tar.gz (scripts/make_samples.py)
    d = mkdir("samples")
    subprocess.run([sys.executable, os.path.join(SRC, "scripts", "make_samples.py"), d], check=True, capture_output=True)
    out = os.path.join(TMP, "ref.html")
    run("report", "--task", "refactor", "--model", rm, "-n", "2", os.path.join(d, "contracts.zip"), REPO, "-o", out)
    html_check(out)


print(f"{'FAILED' if n_failed() else 'passed'}: {n_failed()} failed")
if not n_failed():
    import shutil
    shutil.rmtree(TMP, ignore_errors=True)  # kept for a look when something failed
sys.exit(exit_code())
