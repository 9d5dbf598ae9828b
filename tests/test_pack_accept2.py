"""Second acceptance sweep of `tome pack` / inspect / cite (issue 3): input
classes the first sweep (test_pack_accept.py) did not try.

Text shapes: UTF-16 LE/BE without a BOM, classic Mac '\\r' line ends, mixed
'\\r\\n'/'\\n', UTF-8 with BOM and CRLF, zero-width and bidi characters in
content, Shift-JIS / GBK / KOI8-R text (skipped with a reason that names the
encoding problem, not "binary"). Archives: non-ASCII member names (zip's
UTF-8 flag and pax headers, which libarchive gives as NULL under the C
locale; a name of unknown charset kept as escaped bytes), legacy .lzma
streams (no magic), zip with data descriptors, zip64, cpio, lz4, an
encrypted member next to plain ones.
Each case: the pack is written, each file has the status/reason expected,
and `tome cite` returns the original line.
"""
import gzip, io, json, lzma, os, shutil, subprocess, sys, tarfile, tempfile, zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tome_testlib import BIN, ENV, case, exit_code  # noqa: E402

BIN = os.path.abspath(BIN) if os.sep in BIN else BIN


def tome(*args, cwd=None, env=None, ok=True):
    p = subprocess.run([BIN, *args], capture_output=True, cwd=cwd, env=env or ENV)
    if ok and p.returncode != 0:
        raise AssertionError(f"{args}: exit {p.returncode}: {p.stderr.decode('utf-8', 'replace')}")
    return p


def files_of(pack):
    return {f["path"]: f for f in json.loads(tome("inspect", pack, "--json").stdout)["files"]}


def cite(pack, *c):
    return tome("cite", pack, *c).stdout.decode("utf-8")


tmp = tempfile.mkdtemp(prefix="tome_accept2_")
out_dir = os.path.join(tmp, "out")
os.makedirs(out_dir)


def write(root, name, data):
    p = os.path.join(root, name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)


@case
def test_text_shapes():
    root = os.path.join(tmp, "text")
    u16 = "hello, UTF-16 without a BOM\nsecond line \u00e9\n"
    jp = "日本語のテキストです。\n二行目です。\n"
    ru = "Это русский текст.\nВторая строка.\n"
    for name, data in {
        "u16le.txt": u16.encode("utf-16-le"),
        "u16be.txt": u16.encode("utf-16-be"),
        "mac.txt": b"one\rtwo\rthree\r",
        "mixed.txt": b"a1\r\na2\na3\r\na4\n",
        "bomcrlf.txt": b"\xef\xbb\xbfline1\r\nline2\r\n",
        "zw.txt": "a\u200bb\u200dc\nx\u202eevil\u202cy\n".encode(),
        "sjis.txt": jp.encode("shift_jis"),
        "gbk.txt": "这是中文文本，使用GBK编码。\n第二行。\n".encode("gbk"),
        "koi8.txt": ru.encode("koi8_r"),
        "cp1251.txt": ru.encode("cp1251"),
    }.items():
        write(root, name, data)
    pack = os.path.join(out_dir, "text.tpk")
    tome("pack", root, "-o", pack, "-q")
    f = files_of(pack)
    assert f["u16le.txt"]["encoding"] == "utf-16le" and f["u16be.txt"]["encoding"] == "utf-16be", (f["u16le.txt"], f["u16be.txt"])
    assert cite(pack, "u16le.txt:2") == "second line \u00e9\n"
    assert cite(pack, "u16be.txt:1") == "hello, UTF-16 without a BOM\n"
    # classic Mac line ends are lines, as an editor numbers them
    assert f["mac.txt"]["lines"] == 3, f["mac.txt"]
    assert cite(pack, "mac.txt:2") == "two\n"
    assert f["mixed.txt"]["lines"] == 4 and cite(pack, "mixed.txt:3") == "a3\r\n"
    assert f["bomcrlf.txt"]["encoding"] == "utf-8-bom" and cite(pack, "bomcrlf.txt:1") == "line1\r\n"
    # content is not escaped (names are)
    assert cite(pack, "zw.txt:2") == "x\u202eevil\u202cy\n"
    for n in ("sjis.txt", "gbk.txt", "koi8.txt", "cp1251.txt"):
        assert f[n]["status"] == "skipped" and f[n]["reason"].startswith("unsupported text encoding"), f[n]
    # a real binary keeps its plain reason
    write(root, "blob.bin", bytes(range(256)) * 8)
    tome("pack", root, "-o", pack, "-q")
    assert files_of(pack)["blob.bin"]["reason"] == "binary"


TXT = b"".join(b"line %d of the single file\n" % i for i in range(1, 21))


def tar_bytes(members, fmt=tarfile.PAX_FORMAT, encoding="utf-8"):
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=fmt, encoding=encoding) as t:
        for n, d in members:
            ti = tarfile.TarInfo(n)
            ti.size = len(d)
            t.addfile(ti, io.BytesIO(d))
    return bio.getvalue()


class _Stream(io.RawIOBase):
    """A non-seekable sink: zipfile then writes data descriptors."""
    def __init__(self):
        self.b = bytearray()

    def writable(self):
        return True

    def write(self, d):
        self.b += d
        return len(d)


@case
def test_archive_formats_and_names():
    root = os.path.join(tmp, "arch")
    os.makedirs(root)
    write(root, "one.txt.lzma", lzma.compress(TXT, format=lzma.FORMAT_ALONE))
    write(root, "t.tar.lzma", lzma.compress(tar_bytes([("d/a.c", b"int lzma_a;\n")]), format=lzma.FORMAT_ALONE))
    write(root, "one.txt.gz", gzip.compress(TXT.replace(b"single", b"gzipped")))
    # non-ASCII names: pax (UTF-8), zip with the UTF-8 flag, zip without it
    write(root, "pax.tar", tar_bytes([("uni/\u00e9t\u00e9.txt", b"summer\n")]))
    with zipfile.ZipFile(os.path.join(root, "names.zip"), "w") as z:
        z.writestr("caf\u00e9_flagged.txt", b"utf8 flagged\n")
        z.writestr("naXve_cp437.txt", b"cp437 name\n")
        z.writestr("plain.txt", b"plain\n")
    p = os.path.join(root, "names.zip")
    with open(p, "rb") as fh:
        data = fh.read().replace(b"naXve", b"na\x82ve")  # same length: offsets stay right
    write(root, "names.zip", data)
    s = _Stream()
    with zipfile.ZipFile(s, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("dd/one.txt", TXT.replace(b"single", b"descriptor"))
    write(root, "dd.zip", bytes(s.b))
    with zipfile.ZipFile(os.path.join(root, "z64.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("big/one.txt", "w", force_zip64=True) as f:
            f.write(b"zip64 member\n")
    # cpio (newc), written by hand
    cp = bytearray()
    for ino, (name, data) in enumerate([("c/x.txt", b"cpio x\n"), ("TRAILER!!!", b"")], 1):
        nb = name.encode() + b"\0"
        mode = 0o100644 if data else 0
        cp += b"070701" + b"".join(b"%08X" % v for v in [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0]) + nb
        cp += b"\0" * (-len(cp) % 4) + data
        cp += b"\0" * (-len(cp) % 4)
    write(root, "c.cpio", bytes(cp))
    lz4 = shutil.which("lz4")
    if lz4:
        write(root, "l.tar", tar_bytes([("l/x.txt", b"lz4 member\n")]))
        subprocess.run([lz4, "-q", "-f", "--rm", os.path.join(root, "l.tar"), os.path.join(root, "l.tar.lz4")], check=True)
    zip_ = shutil.which("zip")
    if zip_:
        enc = os.path.join(tmp, "encsrc")
        write(enc, "secret.txt", b"secret\n")
        write(enc, "open.txt", b"open\n")
        subprocess.run([zip_, "-q", "-P", "pw", "../arch/enc.zip", "secret.txt"], cwd=enc, check=True)
        subprocess.run([zip_, "-q", "../arch/enc.zip", "open.txt"], cwd=enc, check=True)
    pack = os.path.join(out_dir, "arch.tpk")
    tome("pack", root, "-o", pack, "-q")
    f = files_of(pack)
    bad = {p: x for p, x in f.items() if x["status"] == "skipped"}
    want_skipped = {"enc.zip!/secret.txt"} if zip_ else set()
    assert set(bad) == want_skipped, bad
    if zip_:
        assert "encrypted" in bad["enc.zip!/secret.txt"]["reason"]
        assert cite(pack, "enc.zip!/open.txt:1") == "open\n"
    assert cite(pack, "one.txt.lzma!/one.txt:3") == "line 3 of the single file\n"
    assert cite(pack, "t.tar.lzma!/d/a.c:1") == "int lzma_a;\n"
    assert cite(pack, "one.txt.gz!/one.txt:20") == "line 20 of the gzipped file\n"
    assert cite(pack, "pax.tar!/uni/\u00e9t\u00e9.txt:1") == "summer\n"
    assert cite(pack, "names.zip!/caf\u00e9_flagged.txt:1") == "utf8 flagged\n"
    assert cite(pack, "names.zip!/na\\x82ve_cp437.txt:1") == "cp437 name\n"  # unknown charset: escaped bytes
    assert cite(pack, "dd.zip!/dd/one.txt:2") == "line 2 of the descriptor file\n"
    assert cite(pack, "z64.zip!/big/one.txt:1") == "zip64 member\n"
    assert cite(pack, "c.cpio!/c/x.txt:1") == "cpio x\n"
    if lz4:
        assert cite(pack, "l.tar.lz4!/l/x.txt:1") == "lz4 member\n"


shutil.rmtree(tmp, ignore_errors=True)
sys.exit(exit_code())
