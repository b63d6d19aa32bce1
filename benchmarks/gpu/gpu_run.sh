#!/usr/bin/env bash
# On the GPU machine, from the repo root, with .devcarry/ from benchmarks/gpu/gpu_prepare.sh:
# meta-training and scoring on CUDA against the CPU (device_check; with the trainer's CUDA graphs, then
# without them into $OUT/eager), the CUDA tests (pytest -m gpu), GPU meta_speed at 32/256 users per
# meta-batch (SPEED=0 skips it), the profiler probe (PROBE=0 skips it), then (B1024=1) 1024 users.
# CHECK=0 skips device_check and the CUDA tests.
# Writes to $OUT.
export PYTHONUNBUFFERED=1
set -o pipefail
OUT="${OUT:-gpu_out}"; mkdir -p "$OUT"
quiet() { grep -v -i -E "gym|gymnasium|migration"; }  # gym's deprecation banner, printed on every import
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 --version; which gcc cc || true
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .devcarry/whl/*.whl || exit 3
t0=$(date +%s)
if ! (cd .devcarry/learn2learn-0.2.0 && python3 setup.py build_ext --inplace -j 16) > /tmp/l2l_build.log 2>&1; then
  tail -n 15 /tmp/l2l_build.log
  echo "FALLBACK: learn2learn's Cython data modules did not build; importing its algorithms without them"
  l=.devcarry/learn2learn-0.2.0/learn2learn
  : > $l/data/__init__.py
  sed -i -e '/from . import data/d' -e '/from . import gym/d' -e '/from . import text/d' -e '/from . import vision/d' $l/__init__.py
fi
echo "learn2learn build: $(( $(date +%s) - t0 )) s"
export PYTHONPATH=$PWD:$PWD/.devcarry/learn2learn-0.2.0:/tmp/site
python3 -c "import torch, learn2learn, metarec, numpy, scipy, pandas; print('torch', torch.__version__, 'l2l', learn2learn.__version__, 'numpy', numpy.__version__, 'cuda', torch.cuda.is_available())" 2>&1 | quiet
if [ "${CHECK:-1}" = 1 ]; then
  timeout 150 python3 benchmarks/gpu/device_check.py --device cuda --data-dir .devcarry/ml-100k --vectors .devcarry/ml100k_vectors.npz --out $OUT 2>&1 | quiet
  timeout 150 python3 benchmarks/gpu/device_check.py --device cuda --cuda-graphs off --data-dir .devcarry/ml-100k --vectors .devcarry/ml100k_vectors.npz --out $OUT/eager 2>&1 | quiet
  PYTHONPATH=$PYTHONPATH:$PWD/.devcarry/stub timeout 120 python3 -m pytest -q -p no:cacheprovider -m gpu \
    tests/unit/meta/test_recommender.py tests/unit/meta/test_graphs.py tests/unit/core/test_device.py 2>&1 | quiet | tee $OUT/pytest_gpu.log
fi
if [ "${SPEED:-1}" = 1 ]; then
  python3 benchmarks/meta_speed.py --data-dir .devcarry/ml-100k --vectors .devcarry/ml100k_vectors.npz --device cuda --batches 32,256 --latency-device cuda --out $OUT 2>&1 | quiet
fi
if [ "${PROBE:-1}" = 1 ]; then
  timeout 90 python3 benchmarks/gpu/gpu_probe.py cuda 2>&1 | quiet | grep -v USDT | tee $OUT/prof.log
fi
if [ "${B1024:-0}" = 1 ]; then
  mkdir -p $OUT/b1024
  python3 benchmarks/meta_speed.py --data-dir .devcarry/ml-100k --vectors .devcarry/ml100k_vectors.npz --device cuda --batches 1024 --rounds 2 --latency-users 20 --out $OUT/b1024 2>&1 | quiet
fi
echo done
