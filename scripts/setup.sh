#!/usr/bin/env bash
# scripts/setup.sh — install everything tome needs to build and test, on a
# fresh Debian 12 machine (as root, or through sudo). Idempotent and quiet when
# everything is already there:
#   - Debian packages: compilers, CMake, and the libraries tome links
#     (zstd, libarchive, PCRE2, jansson, libxml2, poppler-glib, OpenBLAS, xxhash)
#   - a Python virtual environment in .venv with the reference libraries the
#     tests compare against (scripts/requirements-test.txt), when $1 is "test".
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake pkg-config git python3 python3-venv python3-pip
      libzstd-dev zstd libarchive-dev libpcre2-dev libjansson-dev libxml2-dev
      libpoppler-glib-dev libopenblas-dev libxxhash-dev)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "test" ]; then
  req=scripts/requirements-test.txt
  stamp=.venv/.tome-requirements
  if [ ! -x .venv/bin/python3 ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
  fi
  if [ ! -f "$stamp" ] || ! cmp -s "$req" "$stamp"; then
    echo "setup: installing Python test references into .venv (scripts/requirements-test.txt)"
    .venv/bin/python3 -m pip install -q --disable-pip-version-check -r "$req"
    cp "$req" "$stamp"
  fi
fi
