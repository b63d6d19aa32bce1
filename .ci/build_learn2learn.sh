#!/usr/bin/env bash
# Build and install learn2learn from its sdist with freshly generated C sources (see Makefile).
set -euo pipefail
spec="${1:-learn2learn==0.2.0}"
PY="${PY:-python}"; PIP="${PIP:-$PY -m pip}"
# absolute path without resolving the venv symlink (that would escape the venv)
PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
$PIP download -q --no-deps --no-binary learn2learn "$spec" -d "$work"
tar -xzf "$work"/learn2learn-*.tar.gz -C "$work"
src="$(find "$work" -maxdepth 1 -type d -name 'learn2learn-*' | head -n 1)"
rm -f "$src"/learn2learn/data/*.c
# Its install_requires names gsutil and qpth, which `import learn2learn` never imports; qpth's own
# setup.py no longer parses ("numpy>=1<2"), so pip could not even resolve them. Drop both from the
# wheel's metadata; the modules it does import (gym, torchvision, scipy, requests, tqdm) are metarec
# dependencies.
sed -i -e "/'gsutil',/d" -e "/'qpth>=0.0.15',/d" "$src/setup.py"
grep -q "qpth\|gsutil" "$src/setup.py" && { echo "could not drop qpth/gsutil from setup.py" >&2; exit 1; }
if ! (cd "$src" && "$PY" setup.py -q build_ext bdist_wheel -d "$work/dist") >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  echo "learn2learn build failed" >&2
  exit 1
fi
$PIP install -q --no-deps --force-reinstall "$work"/dist/learn2learn-*.whl
