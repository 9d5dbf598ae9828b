"""Third acceptance sweep of `tome pack` / inspect / cite (issue 3): the
features added last (tar hard links as aliases, UTF-16 without a BOM in CJK,
document outlines, outlines computed late) on inputs the earlier sweeps
(test_pack_accept.py, test_pack_accept2.py) did not try.

Hard links: a chain of links, a link before its target, links to a
directory, to a missing member, into a loop; cpio's groups of links (the data
travels with the last name, the earlier names come first and empty); the
same pack bytes with 1 and 2 threads. Each case: the status and reason in
`tome inspect --json`, and `tome cite` through the link name.
"""
import io, json, os, shutil, sys, tarfile, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tome_testlib import case, exit_code, run_bytes  # noqa: E402

tome = run_bytes


def files_of(pack):
    return {f["path"]: f for f in json.loads(tome("inspect", pack, "--json").stdout)["files"]}


def cite(pack, *c):
    return tome("cite", pack, *c).stdout.decode("utf-8")


def write(root, name, data):
    p = os.path.join(root, name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)


def tar_of(members, fmt=tarfile.GNU_FORMAT):
    """members: (name, bytes) for a file, (name, None) for a directory,
    (name, "->target") for a hard link."""
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=fmt) as t:
        for name, what in members:
            ti = tarfile.TarInfo(name)
            if what is None:
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            elif isinstance(what, str):
                ti.type, ti.linkname = tarfile.LNKTYPE, what[2:]
                t.addfile(ti)
            else:
                ti.size = len(what)
                t.addfile(ti, io.BytesIO(what))
    return bio.getvalue()


def cpio_newc(entries):
    """entries: (name, inode, nlink, data), written as GNU cpio -H newc does."""
    out = b""
    for name, ino, nlink, data in entries + [("TRAILER!!!", 0, 1, b"")]:
        nb = name.encode() + b"\0"
        mode = 0 if name == "TRAILER!!!" else 0o100644
        out += b"070701" + b"".join(b"%08X" % v for v in (ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(nb), 0))
        out += nb + b"\0" * (-(len(out) + len(nb)) % 4)
        out += data + b"\0" * (-(len(out) + len(data)) % 4)
    return out + b"\0" * (-len(out) % 512)


@case
def test_hardlink_chains_loops_and_missing_targets():
    # tar extracts a link to a link (and GNU tar's --append can write one):
    # every name of the chain is an alias of the member with the data. A
    # link to a directory, to a member that is not there or into a loop is
    # skipped with a reason that says so (it said "its content is packed
    # under that name", which was not true)
    base = tempfile.mkdtemp(prefix="tome_acc3_hl_")
    src = b"first line\nsecond line\nthird line\n"
    root = os.path.join(base, "in")
    write(root, "c.tar", tar_of([("late", "->doc/a.txt"), ("doc", None), ("doc/a.txt", src), ("b", "->doc/a.txt"),
                                 ("c", "->b"), ("d", "->c"), ("dirlink", "->doc"), ("gone", "->nothere.txt"),
                                 ("p", "->q"), ("q", "->p"), ("self", "->self"), ("intoloop", "->p")]))
    packs = []
    for threads in ("1", "2"):
        packs.append(os.path.join(base, f"t{threads}.tpk"))
        tome("pack", root, "-o", packs[-1], "-q", "--threads", threads)
    assert open(packs[0], "rb").read() == open(packs[1], "rb").read()
    f = files_of(packs[0])
    assert f["c.tar!/doc/a.txt"]["status"] == "full", f
    for name in ("late", "b", "c", "d"):
        assert f["c.tar!/" + name]["status"] == "alias", (name, f["c.tar!/" + name])
        assert cite(packs[0], f"c.tar!/{name}:2") == "second line\n"
    for name in ("dirlink", "gone"):
        e = f["c.tar!/" + name]
        assert e["status"] == "skipped" and "not a file of the archive" in e["reason"], e
    for name in ("p", "q", "self", "intoloop"):
        e = f["c.tar!/" + name]
        assert e["status"] == "skipped" and "loop" in e["reason"], e
    assert tome("cite", packs[0], "c.tar!/gone:1", ok=False).returncode != 0
    shutil.rmtree(base)


@case
def test_cpio_hardlink_groups_keep_their_content():
    # GNU cpio -H newc (initramfs, rpm payloads) writes a group of hard links
    # with the data only on its last name; the earlier names come first with
    # size 0 and libarchive reports the last one as a link to the first.
    # Every name holds the content (it was lost: all names empty)
    base = tempfile.mkdtemp(prefix="tome_acc3_cpio_")
    shared = b"shared line one\nshared line two\n"
    root = os.path.join(base, "in")
    write(root, "g.cpio", cpio_newc([("bin/a", 7, 3, b""), ("bin/b", 7, 3, b""), ("bin/c", 7, 3, shared),
                                     ("solo.txt", 8, 1, b"solo\n"), ("empty1", 9, 2, b""), ("empty2", 9, 2, b"")]))
    packs = []
    for threads in ("1", "2"):
        packs.append(os.path.join(base, f"t{threads}.tpk"))
        tome("pack", root, "-o", packs[-1], "-q", "--threads", threads)
    assert open(packs[0], "rb").read() == open(packs[1], "rb").read()
    f = files_of(packs[0])
    statuses = sorted(f["g.cpio!/bin/" + n]["status"] for n in "abc")
    assert statuses == ["alias", "alias", "full"], f
    for n in "abc":
        assert cite(packs[0], f"g.cpio!/bin/{n}:2") == "shared line two\n", n
    assert cite(packs[0], "g.cpio!/solo.txt:1") == "solo\n"
    # a group of empty files stays empty (listed, no lines)
    assert {f["g.cpio!/empty1"]["status"], f["g.cpio!/empty2"]["status"]} <= {"full", "alias"}, f
    shutil.rmtree(base)


sys.exit(exit_code())
