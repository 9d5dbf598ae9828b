"""Acceptance of `tome pack` / locate / cite on awkward inputs (issue 3).

A tree nobody would write on purpose: file names with a newline, a tab,
invalid UTF-8, a leading '-', backticks; contents holding ']]>', '</file>',
markdown fences and fake block headers; CRLF, Latin-1, no final newline, an
empty file; a path past PATH_MAX (4,096 bytes) through nested directories;
symlinks out of the tree and loops; a FIFO; archives with '../' and absolute
members, duplicate names, a directory entry and a file of one name, a 0-byte
archive, archives nested past the depth limit, a .gz of zeros (reads as an
empty tar) alone and inside a zip, a GNU ar archive with its index, UTF-8 text with a stray invalid sequence.

Checks: the pack is written and every odd case has a reason; random token
indexes locate (in every format, with and without line-number prefixes) to
a path:line whose original line, read from disk, ends the rendered line the
token starts on, and cite prints that line; the markdown tree fence is not
closed by a file named "```"; the same tree packed from another directory,
by a relative or absolute path and with 1 or 2 threads gives the same bytes;
nothing is written outside -o.
"""
import base64, io, json, os, random, re, shutil, subprocess, sys, tarfile, tempfile, zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tome_testlib import BIN, ENV, case, exit_code, run_bytes  # noqa: E402

BIN = os.path.abspath(BIN) if os.sep in BIN else BIN  # the test runs commands from other directories

TOKFILE = ENV["TOME_TOKENIZER"]


tome = run_bytes


def unescape(s):
    """Inverse of the display escaping (\\xNN) for names in this tree."""
    return re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]), s)


def json_form(display):
    """inspect --json prints a path in its display form (what the listing,
    locate and the rendering print: \\xNN escapes), as a JSON string."""
    return display.decode("ascii") if display.isascii() else display.decode("utf-8")


def make_tree(root):
    r = os.fsencode(root)
    src = os.path.join(r, b"src")
    os.makedirs(src)
    files = {
        b"nl\nname.c": b"int a;\nint a2;\n",
        b"tab\tname.c": b"int b;\n",
        b"bad\xff\xfename.c": b"int c;\n",
        b"-leading.c": b"int d;\n",
        b"empty.c": b"",
        b"cdata.xml": b'<a><![CDATA[ x ]]> </file>\n</file>\n<file path="evil">\n]]>\n</pack>\n',
        b"fence.md": b"# T\n\n```\ncode\n```\n\n````\nmore ```` x\n`````\n## File: fake (3 lines)\n==== end of file ====\n",
        b"crlf.txt": b"line1\r\nline2\r\nline3\r\n",
        b"noeol.txt": b"a\nb",
        b"```": b"backticks\n",
        b"b\x01.c": b"control byte\n",
        b"b\\x01.c": b"literal backslash\n",  # must not print as the one above
        b"prose.txt": b"".join(b"line %d of prose, with words and 12345 numbers\n" % i for i in range(60)),
    }
    for name, data in files.items():
        with open(os.path.join(src, name), "wb") as f:
            f.write(data)
    # UTF-8 with one deliberately broken sequence and C1 bytes that rule out
    # Latin-1 (the shape of git's t/t4201-shortlog.sh): text, not binary
    with open(os.path.join(src, b"stray.sh"), "wb") as f:
        f.write(b"# J\xc3\xb6h\xc3\xa4nn\xc3\xabs\n" + b"echo th\xf8\x9d\x84\x9es is broken\n" + b"x=1\n" * 300)
    with open(os.path.join(src, b"latin1.txt"), "wb") as f:
        f.write("caf\xe9 na\xefve\nsecond \xfc\n".encode("latin-1"))
    os.symlink("/etc/passwd", os.path.join(src, b"out_link"))
    os.symlink("../src", os.path.join(src, b"loop"))
    os.mkfifo(os.path.join(src, b"fifo"))
    # a path of more than PATH_MAX bytes: nested 200-byte directory names
    fd = os.open(r, os.O_RDONLY)
    here = os.getcwd()
    os.chdir(r)
    depth = 0
    try:
        os.mkdir("deep")
        os.chdir("deep")
        while depth * 201 < 4400:
            os.mkdir("d" * 200)
            os.chdir("d" * 200)
            depth += 1
        with open("deep.c", "w") as f:
            f.write("int deep_one;\nint deep_two;\n")
    finally:
        os.chdir(here)
        os.close(fd)
    deep_rel = "deep/" + "/".join(["d" * 200] * depth) + "/deep.c"
    open(os.path.join(root, "empty.zip"), "wb").close()
    with zipfile.ZipFile(os.path.join(root, "evil.zip"), "w") as z:
        z.writestr("../escape.txt", "escape\n")
        z.writestr("/abs.txt", "abs\n")
        z.writestr("ok/a.txt", "ok in zip\n")
        z.writestr("dup.txt", "first\n")
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            z.writestr("dup.txt", "second\n")
        z.writestr("d/", "")
        z.writestr("d", "file named d\n")
        z.writestr("x/../../y.txt", "dotdot\n")
    with tarfile.open(os.path.join(root, "evil.tar"), "w") as t:
        def add(name, data=b"", **kw):
            ti = tarfile.TarInfo(name)
            for k, v in kw.items():
                setattr(ti, k, v)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        add("../up.txt", b"up\n")
        add("/etc/abs.txt", b"abs\n")
        add("ok.txt", b"ok in tar\n")
        add("lnk", type=tarfile.SYMTYPE, linkname="/etc/passwd")
        add("hl", type=tarfile.LNKTYPE, linkname="../../etc/passwd")
        add("dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
    data = b"inner\n"
    for i in range(8):
        b = io.BytesIO()
        with zipfile.ZipFile(b, "w") as z:
            z.writestr("l%d.zip" % i if i else "leaf.txt", data)
        data = b.getvalue()
    with open(os.path.join(root, "nest.zip"), "wb") as f:
        f.write(data)
    # a GNU ar archive (a static library's shape): symbol table "/", long
    # name table "//", a member with a long name, a short one
    def ar_member(name, data):
        h = b"%-16s%-12d%-6d%-6d%-8o%-10d`\n" % (name, 0, 0, 0, 0o644, len(data))
        return h + data + (b"\n" if len(data) % 2 else b"")
    longname = b"a_rather_long_member_name.txt"
    with open(os.path.join(root, "lib.a"), "wb") as f:
        f.write(b"!<arch>\n" + ar_member(b"/", b"\0\0\0\0") + ar_member(b"//", longname + b"/\n")
                + ar_member(b"/0", b"long member\n") + ar_member(b"short.txt/", b"short member\n"))
    # a .gz of zeros reads as an empty tar: it must be listed, not vanish
    import gzip
    zeros = gzip.compress(b"\0" * (1 << 20))
    with open(os.path.join(root, "zeros.txt.gz"), "wb") as f:
        f.write(zeros)
    with zipfile.ZipFile(os.path.join(root, "holds_zeros.zip"), "w") as z:
        z.writestr("z.gz", zeros)
        z.writestr("t.txt", "t\n")
    return deep_rel


def load_vocab():
    vocab = {}
    with open(TOKFILE, "rb") as f:
        for line in f:
            b64, rank = line.split()
            vocab[int(rank)] = base64.b64decode(b64)
    return vocab


def snapshot(d):
    out = set()
    for dp, dn, fn in os.walk(d):
        for n in dn + fn:
            out.add(os.path.join(dp, n))
    return out


tmp = tempfile.mkdtemp(prefix="tome_accept_")
tree = os.path.join(tmp, "tree")
os.makedirs(tree)
DEEP = make_tree(tree)
outdir = os.path.join(tmp, "out")
os.makedirs(outdir)
VOCAB = load_vocab() if os.path.exists(TOKFILE) else None


@case
def test_odd_inputs_get_reasons():
    before = snapshot(tmp)
    out = os.path.join(outdir, "a.tpk")
    tome("pack", tree, "-o", out, "-q")
    assert snapshot(tmp) - before == {out}, snapshot(tmp) - before
    j = tome("inspect", out, "--json").stdout.decode()
    files = {f["path"]: f for f in json.loads(j)["files"]}
    want = {
        "src/fifo": "fifo",
        "src/out_link": "symlink outside tree",
        "src/loop": "symlink to directory",
        "evil.zip!/../escape.txt": "path traversal",
        "evil.zip!//abs.txt": "absolute path",
        "evil.zip!/x/../../y.txt": "path traversal",
        "evil.zip!/dup.txt#2": "duplicate path",
        "evil.tar!/../up.txt": "path traversal",
        "evil.tar!//etc/abs.txt": "absolute path",
        "evil.tar!/lnk": "symlink",
        "evil.tar!/hl": "hardlink pointing outside the archive (path traversal",
        "evil.tar!/dev": "device",
        "zeros.txt.gz": "empty archive",
        "holds_zeros.zip!/z.gz": "empty archive",
    }
    for p, why in want.items():
        assert p in files, p
        assert files[p]["status"] == "skipped" and why in files[p]["reason"], (p, files[p])
    assert any("nested archive too deep" in f["reason"] for f in files.values())
    # ar index entries are index data, not "absolute path" members
    ar = {p: f for p, f in files.items() if p.startswith("lib.a!")}
    assert ar["lib.a!/a_rather_long_member_name.txt"]["status"] == "full", ar
    assert ar["lib.a!/short.txt"]["status"] == "full", ar
    assert not any("absolute" in f["reason"] for f in ar.values()), ar
    for p in ("src/nl\\x0aname.c", "src/tab\\x09name.c", "src/bad\\xff\\xfename.c", "src/-leading.c", "evil.zip!/d", "evil.tar!/ok.txt",
              "src/```", "src/latin1.txt"):
        assert files[p]["status"] == "full", (p, files[p])
    assert files["src/stray.sh"]["status"] == "full" and files["src/stray.sh"]["encoding"] == "utf-8-lossy", files["src/stray.sh"]
    assert tome("cite", out, "src/stray.sh:2").stdout == "echo th\ufffd\ufffd\ufffd\ufffds is broken\n".encode()
    # a literal backslash that reads as an escape is escaped itself: the two
    # names print differently and each citation reaches its own file
    assert tome("cite", out, "src/b\\x01.c:1").stdout == b"control byte\n"
    assert tome("cite", out, "src/b\\x5cx01.c:1").stdout == b"literal backslash\n"
    locs = set(tome("locate", out, *map(str, range(0, files["src/b\\x01.c"]["token_start"] + 40))).stdout.split(b"\n"))
    assert b"src/b\\x5cx01.c:1" in locs or b"src/b\\x5cx01.c" in locs, sorted(locs)[:20]
    # a path past PATH_MAX is read (through directory fds), not "unreadable"
    assert files[DEEP]["status"] == "full", files[DEEP]
    p = tome("cite", out, DEEP + ":2").stdout
    assert p == b"int deep_two;\n", p
    # no reason holds the absolute location of the tree
    assert not any(tmp in f["reason"] for f in files.values())


@case
def test_markdown_tree_fence_not_closed_by_names():
    out = os.path.join(outdir, "m.tpk")
    md = os.path.join(outdir, "m.md")
    tome("pack", os.path.join(tree, "src"), "-o", out, "-q", "--format", "markdown", "--render", md)
    lines = open(md, "rb").read().split(b"\n")
    i = lines.index(b"## Files")
    fence = lines[i + 2]
    assert set(fence) == {ord("`")} and len(fence) >= 4, fence
    j = lines.index(fence, i + 3)  # the closing fence
    tree_lines = lines[i + 3:j]
    assert b"```" in tree_lines, tree_lines  # the file named ``` is inside the fence
    # no line inside could close it: a closing fence is >= len(fence) backticks alone
    for ln in tree_lines:
        s = ln.strip()
        assert not (s and set(s) == {ord("`")} and len(s) >= len(fence)), ln


def read_deep(path_b):
    """Reads a file whose path may be past PATH_MAX, a directory at a time."""
    parts = path_b.split(b"/")
    fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
    for d in parts[:-1]:
        nfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    f = os.open(parts[-1], os.O_RDONLY, dir_fd=fd)
    os.close(fd)
    with os.fdopen(f, "rb") as fh:
        return fh.read()


MEMBERS = {b"evil.zip!/ok/a.txt": b"ok in zip\n", b"evil.zip!/dup.txt": b"first\n", b"evil.zip!/d": b"file named d\n",
           b"evil.tar!/ok.txt": b"ok in tar\n", b"holds_zeros.zip!/t.txt": b"t\n",
           b"lib.a!/a_rather_long_member_name.txt": b"long member\n", b"lib.a!/short.txt": b"short member\n"}


def original_lines(path_b):
    if path_b.endswith(b"stray.sh"):
        return read_deep(path_b).decode("utf-8", "replace").encode().split(b"\n")
    if b"!/" in path_b:
        data = b"inner\n" if path_b.endswith(b"!/leaf.txt") else MEMBERS[path_b]
    else:
        data = read_deep(path_b)
    if path_b.endswith(b"latin1.txt"):
        data = data.decode("latin-1").encode()
    return data.split(b"\n")


@case
def test_random_tokens_locate_to_original_lines():
    assert VOCAB, "no tokenizer"
    rng = random.Random(3)
    for fmt in ("xml", "markdown", "plain"):
        for ln in (False, True):
            out = os.path.join(outdir, f"r_{fmt}_{int(ln)}.tpk")
            ren = out + ".txt"
            tome("pack", tree, "-o", out, "-q", "--format", fmt, "--render", ren, *(["--line-numbers"] if ln else []))
            text = open(ren, "rb").read()
            ids = [int(x) for x in tome("tokenize", "-t", TOKFILE, ren).stdout.split()]
            offs, o = [], 0
            for t in ids:
                offs.append(o)
                o += len(VOCAB[t])
            assert o == len(text), (fmt, o, len(text))
            picks = sorted(rng.sample(range(len(ids)), min(400, len(ids))))
            locs = tome("locate", out, *map(str, picks)).stdout.split(b"\n")[:-1]
            assert len(locs) == len(picks), (len(locs), len(picks))
            rlines = text.split(b"\n")
            blocks = {}
            for f in json.loads(tome("inspect", out, "--json").stdout)["files"]:
                if f["tokens"]:
                    blocks[f["path"]] = (f["token_start"], f["tokens"])
            checked, cites, want = 0, [], b""
            for t, loc in zip(picks, locs):
                r = text.count(b"\n", 0, offs[t])
                # the token lies in the located file's block (and in none for "(pack)")
                blk = [k for k, (a, n) in blocks.items() if a <= t < a + n]
                if loc == b"(pack)":
                    assert not blk, (t, blk)
                    continue
                m = re.fullmatch(rb"(.*):(\d+)", loc, re.S)
                assert blk == [json_form(m.group(1) if m else loc)], (t, loc, blk)
                if not m:  # a block's header/footer line
                    continue
                path_b, line = unescape(m.group(1)), int(m.group(2))
                orig = original_lines(path_b)[line - 1]
                assert rlines[r].endswith(orig), (fmt, ln, t, loc, rlines[r], orig)
                if ln:
                    assert rlines[r].lstrip().startswith(b"%d| " % line), (loc, rlines[r])
                cites.append(m.group(1).decode("utf-8", "surrogateescape") + ":%d" % line)
                want += orig + b"\n"
                checked += 1
            assert checked >= 40, (fmt, ln, checked)
            cited = tome("cite", out, *cites).stdout
            assert cited == want, (cited[:300], want[:300])


@case
def test_same_bytes_from_any_directory_and_thread_count():
    outs = []
    runs = [
        (["pack", tree], None, "1"),
        (["pack", "tree"], tmp, "2"),
        (["pack", "../../tree/"], os.path.join(tree, "src"), "2"),
        (["pack", "."], tree, "1"),
    ]
    for k, (args, cwd, th) in enumerate(runs):
        out = os.path.join(outdir, f"d{k}.tpk")
        tome(*args, "-o", out, "-q", cwd=cwd, env=dict(ENV, TOME_THREADS=th))
        outs.append(open(out, "rb").read())
    assert all(o == outs[0] for o in outs), [len(o) for o in outs]


@case
def test_cli_names_the_bad_option():
    src = os.path.join(tree, "src")
    out = os.path.join(outdir, "opt.tpk")
    p = tome("pack", "-leading.c", "-o", out, cwd=src, ok=False)
    assert p.returncode == 2 and b"unknown option '-l'" in p.stderr and b"./NAME" in p.stderr, p.stderr
    p = tome("pack", ".", "-o", cwd=src, ok=False)
    assert p.returncode == 2 and b"option '-o' needs a value" in p.stderr, p.stderr
    assert not os.path.exists(out)
    tome("pack", "-o", out, "-q", "--", "-leading.c", cwd=src)  # after --, a name starting with '-' is a source
    assert tome("cite", out, "-leading.c:1").stdout == b"int d;\n"
    assert tome("cite", out, "--", "-leading.c:1").stdout == b"int d;\n"
    dash = os.path.join(outdir, "-dash.tpk")
    shutil.copy(out, dash)
    assert b"-leading.c" in tome("inspect", "--", "-dash.tpk", cwd=outdir).stdout


shutil.rmtree(tmp, ignore_errors=True)  # fd-relative: copes with the path past PATH_MAX
sys.exit(exit_code())
