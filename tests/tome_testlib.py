"""Shared pieces of the CLI tests (tests/test_*_cli.py, test_e2e_accept*.py):
where the binary and the sources are, the environment the commands run in,
running a command, and the [ ok ]/[FAIL] case runner. Not a test itself
(ctest registers tests/test_*.py only)."""
import os, subprocess, traceback

BIN = os.environ.get("TOME_BIN", "tome")
SRC = os.environ.get("TOME_SOURCE_DIR", os.path.join(os.path.dirname(__file__), ".."))
SHARED = os.environ.get("TOME_SHARED_DIR", os.path.join(SRC, "..", "shared"))
# the Llama 4 tokenizer for commands that tokenize (pack, ask, niah...)
ENV = dict(os.environ, TOME_TOKENIZER=os.environ.get("TOME_TOKENIZER") or os.path.join(SHARED, "llama4", "tokenizer.model"))
_failed = 0


def run(*args, ok=True, env=None, lenient=False):
    """Runs tome with args; raises when ok and the exit status is not 0.
    stdout/stderr are str: strict UTF-8, or with lenient=True any bytes
    (invalid sequences replaced), for commands whose output may not be."""
    p = subprocess.run([BIN, *args], capture_output=True, env=ENV if env is None else env)
    err = "replace" if lenient else "strict"
    p.stdout, p.stderr = p.stdout.decode("utf-8", err), p.stderr.decode("utf-8", err)
    if ok and p.returncode != 0:
        raise AssertionError(f"{args}: exit {p.returncode}: {p.stderr}")
    return p


def run_lenient(*args, ok=True):
    """run() for commands whose output may hold any bytes."""
    return run(*args, ok=ok, lenient=True)


def mkdir_under(root, *parts):
    """os.path.join(root, *parts), created (with parents) if missing."""
    d = os.path.join(root, *parts)
    os.makedirs(d, exist_ok=True)
    return d


def run_bytes(*args, cwd=None, env=None, ok=True):
    """Runs tome with args from cwd (the binary's path made absolute);
    stdout/stderr stay bytes. Raises when ok and the exit status is not 0."""
    exe = os.path.abspath(BIN) if os.sep in BIN else BIN
    p = subprocess.run([exe, *args], capture_output=True, cwd=cwd, env=env or ENV)
    if ok and p.returncode != 0:
        raise AssertionError(f"{args}: exit {p.returncode}: {p.stderr.decode('utf-8', 'replace')}")
    return p


def case(fn):
    """Decorator: runs the test at once and prints [ ok ] or [FAIL]."""
    global _failed
    try:
        fn()
        print(f"[ ok ] {fn.__name__}")
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        _failed += 1
        print(f"[FAIL] {fn.__name__}: {e}")
    return fn


def exit_code():
    return 1 if _failed else 0


def n_failed():
    return _failed
