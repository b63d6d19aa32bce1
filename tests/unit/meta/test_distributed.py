"""Data-parallel meta-training (torch.distributed, gloo on the CPU): 2 processes x 16 users per
meta-batch reach the same parameters as 1 process x 32 users, and a rank that dies fails the run
with a clear message instead of a hang. Each process is a real `python` running dp_worker.py."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from safetensors.torch import load_file

import torch

from metarec.core.distributed import shard
from tests.unit.meta.helpers import tiny_problem

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(out: Path, world: int, **env) -> list[subprocess.Popen]:
    port = str(_free_port())
    procs = []
    for rank in range(world):
        e = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "RANK": str(rank),
             "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world), "OMP_NUM_THREADS": "1", **env}
        procs.append(subprocess.Popen([sys.executable, "-m", "tests.unit.meta.dp_worker", str(out)], cwd=ROOT,
                                      env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return procs


def _wait(procs, timeout=180) -> list[tuple[int, str]]:
    return [(p.wait(timeout=timeout), p.stdout.read()) for p in procs]


def test_shard_covers_the_batch_once():
    for n, size in ((32, 2), (7, 3), (3, 3)):
        parts = [shard(n, r, size) for r in range(size)]
        assert [i for s in parts for i in range(n)[s]] == list(range(n))
        assert max(s.stop - s.start for s in parts) - min(s.stop - s.start for s in parts) <= 1


def test_two_ranks_give_the_parameters_of_one(tmp_path):
    one, two = tmp_path / "one.safetensors", tmp_path / "two.safetensors"
    runs = _wait(_launch(one, 1) + _launch(two, 2))
    assert all(rc == 0 for rc, _ in runs), runs
    a, b = load_file(one), load_file(two)
    init = tiny_problem(seed=0)[0].state_dict()
    assert a.keys() == b.keys() == init.keys() and a["head.w1"].dtype == torch.float64
    for k in a:
        assert (a[k] - b[k]).abs().max().item() <= 1e-6, k
    # 5 Adam steps moved every weight the loss reaches (lr 3e-4 per step): the test compares trained weights
    assert all((a[k] - init[k]).abs().max().item() > 1e-4 for k in ("head.w1", "head.w_feat", "body.w_text"))


def test_two_ranks_resume_exactly(tmp_path):
    straight, resumed = tmp_path / "straight.safetensors", tmp_path / "resumed.safetensors"
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    runs = _wait(_launch(straight, 1) + _launch(resumed, 2, RESUME_DIR=str(ckpt), STOP_AT="3"))
    assert all(rc == 0 for rc, _ in runs), runs
    assert (ckpt / "trainer.json").is_file()  # rank 0 checkpointed at step 3 (and 5)
    a, b = load_file(straight), load_file(resumed)
    for k in a:
        assert (a[k] - b[k]).abs().max().item() <= 1e-6, k


def test_a_dead_rank_fails_the_run_with_a_message(tmp_path):
    out = tmp_path / "dead.safetensors"
    start = time.perf_counter()
    runs = _wait(_launch(out, 2, DIE_AT_STEP="3", DP_TIMEOUT="30"), timeout=120)
    assert runs[1][0] == 3  # the rank that died
    assert runs[0][0] == 4, runs[0][1]  # the survivor stopped with RankLostError, not a hang
    msg = Path(str(out) + ".err").read_text()
    assert "rank 0 of 2 lost contact" in msg and "meta-step 3" in msg
    assert not out.exists() and time.perf_counter() - start < 100
