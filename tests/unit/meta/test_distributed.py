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


def test_torchrun_meta_train_cli_matches_one_process(tiny_models, tmp_path):
    """`torchrun --nproc-per-node 2 -m metarec.cli meta-train ...` end to end: one model folder, one
    "saved" line, and the weights of the same command in one process to within one Adam step (3e-4:
    in float32 the summed gradients differ in the last bits, and Adam's normalised step turns that
    into a visible difference on weights whose gradient is near 0; the float64 test above is exact)."""
    from tests.fixtures import write_ml100k

    data = write_ml100k(tmp_path / "ml-100k")
    args = ["-m", "metarec.cli", "--no-progress", "meta-train", "--dataset", "ml-100k", "--data-dir", str(data),
            "--meta-batch", "4", "--model", tiny_models["bert"], "--steps", "4"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, *args, "--out", str(tmp_path / "one")], env=env, capture_output=True,
                         text=True, timeout=300)
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                          "--master-port", str(_free_port()), *args, "--out", str(tmp_path / "two")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("saved ") == 1 and "Traceback" not in two.stderr
    assert (tmp_path / "two" / "model.safetensors").is_file()
    # the weights after the 4 steps (the trainer's live state; the kept model may be the start)
    a, b = (load_file(tmp_path / run / "trainer.safetensors") for run in ("one", "two"))
    live = [k for k in a if k.startswith("live.model.")]
    assert live and a.keys() == b.keys()
    start = load_file(tmp_path / "one" / "model.safetensors")  # at least one of the two states moved
    for k in live:
        assert (a[k] - b[k]).abs().max().item() <= 3e-4, k
    assert any((a[k] - start["model." + k[len("live.model."):]]).abs().max().item() > 1e-6 for k in live)


def test_commands_that_cannot_share_work_refuse_torchrun(monkeypatch):
    from tests.fixtures import run_cli

    monkeypatch.setenv("WORLD_SIZE", "2")
    out = run_cli(["data", "info", "--dataset", "ml-100k"], check=False)
    assert out.exit_code == 2 and "runs in one process" in " ".join(out.stderr.split())
    assert "meta-train runs under torchrun" in " ".join(out.stderr.split())
