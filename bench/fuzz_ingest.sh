#!/usr/bin/env bash
# bench/fuzz_ingest.sh [SECONDS] — build the ingest fuzz target with clang and
# libFuzzer (tests/fuzz/fuzz_ingest.c) and run it for SECONDS (default 180)
# from a seed corpus made of the bundled samples: contracts.zip and its
# members (PDF, DOCX, Markdown, nested tar.gz), plus tar/tar.gz/tar.bz2/
# tar.xz/zip/ODT/HTML seeds written here with Python's standard library.
#   BUILD=build-fuzz  build directory (default)
#   JOBS=1            parallel fuzzing jobs (libFuzzer -jobs/-workers)
# Crashes land in $BUILD/fuzz_artifacts/; the grown corpus in
# $BUILD/fuzz_ingest_corpus/ (kept between runs).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-180}
build=${BUILD:-build-fuzz}
jobs=${JOBS:-1}

if ! command -v clang >/dev/null; then
  echo "fuzz_ingest: needs clang with libFuzzer (Debian: apt-get install clang)" >&2
  exit 2
fi
CC=clang cmake -S . -B "$build" -DTOME_FUZZ=ON -DTOME_CUDA=OFF -DTOME_BUILD_BENCH=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j2 --target fuzz_ingest >/dev/null

seeds="$build/fuzz_ingest_seeds"
corpus="$build/fuzz_ingest_corpus"
artifacts="$build/fuzz_artifacts"
rm -rf "$seeds"
mkdir -p "$seeds" "$corpus" "$artifacts"
python3 scripts/make_samples.py "$seeds" >/dev/null
python3 - "$seeds" <<'PY'
import io, os, sys, tarfile, zipfile
out = sys.argv[1]
src = zipfile.ZipFile(os.path.join(out, "contracts.zip"))
for name in src.namelist():             # every member on its own
    with open(os.path.join(out, name.replace("/", "_")), "wb") as f:
        f.write(src.read(name))
files = {"README.md": b"# seed\nhello\n", "src/main.c": b"int main(void) { return 0; }\n",
         "docs/../escape.txt": b"x", "/abs.txt": b"y"}
for mode, ext in (("w", "tar"), ("w:gz", "tar.gz"), ("w:bz2", "tar.bz2"), ("w:xz", "tar.xz")):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as t:
        for n, d in files.items():
            ti = tarfile.TarInfo(n); ti.size = len(d); t.addfile(ti, io.BytesIO(d))
        ti = tarfile.TarInfo("link"); ti.type = tarfile.SYMTYPE; ti.linkname = "/etc/passwd"; t.addfile(ti)
    open(os.path.join(out, "seed." + ext), "wb").write(buf.getvalue())
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    for n, d in files.items():
        z.writestr(n, d)
open(os.path.join(out, "seed.zip"), "wb").write(buf.getvalue())
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("mimetype", "application/vnd.oasis.opendocument.text", compress_type=zipfile.ZIP_STORED)
    z.writestr("content.xml", '<?xml version="1.0"?><office:document-content xmlns:office="urn:oasis:'
               'names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:'
               'xmlns:text:1.0"><office:body><office:text><text:h text:outline-level="1">Title</text:h>'
               '<text:p>a<text:s text:c="2"/>b<text:tab/>c<text:line-break/>d</text:p><text:list>'
               '<text:list-item><text:p>item</text:p></text:list-item></text:list></office:text>'
               '</office:body></office:document-content>', compress_type=zipfile.ZIP_DEFLATED)
open(os.path.join(out, "seed.odt"), "wb").write(buf.getvalue())
open(os.path.join(out, "seed.html"), "wb").write(
    b"<!DOCTYPE html><html><head><title>t</title><script>x()</script></head><body><h1>Head</h1>"
    b"<p>a &amp; b</p><pre> keep  </pre><ul><li>i</li></ul><table><tr><td>1</td><td>2</td></tr>"
    b"</table></body></html>")
PY
echo "fuzz_ingest: $(ls "$seeds" | wc -l) seeds, running ${secs}s with $jobs job(s)"
fuzz_args=(-max_total_time="$secs" -max_len=262144 -timeout=20 -rss_limit_mb=2560
           -artifact_prefix="$artifacts/" -print_final_stats=1)
if [ "$jobs" -gt 1 ]; then
  fuzz_args+=(-jobs="$jobs" -workers="$jobs")
fi
"$build/tests/fuzz_ingest" "${fuzz_args[@]}" "$corpus" "$seeds"
