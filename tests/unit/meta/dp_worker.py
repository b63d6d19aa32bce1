"""One process of the data-parallel tests (tests/unit/meta/test_distributed.py): meta-train the
tiny problem for a few steps under the process group the environment describes, then rank 0 saves
the parameters. With DIE_AT_STEP set, rank 1 exits abruptly before that step; the others must fail
with a RankLostError, whose message rank 0 writes to OUT.err. With RESUME_DIR set, the run stops
after STOP_AT steps (checkpointing there), and a second trainer resumes from it to the end."""

import os
import sys
from dataclasses import replace

from safetensors.torch import save_file

from metarec.core.distributed import init_from_env, shutdown, world
from metarec.core.errors import RankLostError
from metarec.meta.learners import MetaConfig
from metarec.meta.trainer import MetaTrainer, TrainConfig
from tests.unit.meta.helpers import tiny_problem


def main(out: str) -> None:
    init_from_env("cpu", timeout_s=float(os.environ.get("DP_TIMEOUT", "60")))
    rank, _ = world()
    model, _, text, md = tiny_problem(seed=0)
    meta = MetaConfig(inner_steps=2, inner_lr=0.3, outer_loss="approx_ndcg")
    train = TrainConfig(steps=5, meta_batch=32, k_min=1, k_max=3, n_query=5, n_neg=6, n_inner_neg=4,
                        eval_every=100, keep_best=False, seed=0)
    resume_dir = os.environ.get("RESUME_DIR")
    if resume_dir:  # the first part of the run, checkpointed into resume_dir, then a fresh trainer goes on
        from pathlib import Path

        first = MetaTrainer(model, text, md, meta, replace(train, steps=int(os.environ["STOP_AT"])))
        first.fit(Path(resume_dir))
        model, _, text, md = tiny_problem(seed=0)  # as a restarted process builds it
        trainer = MetaTrainer(model, text, md, meta, train)
        assert trainer.resume(Path(resume_dir))
        trainer.fit(Path(resume_dir))
        if rank == 0:
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)
        shutdown()
        return
    trainer = MetaTrainer(model, text, md, meta, train)
    die = int(os.environ.get("DIE_AT_STEP", "0"))
    if die and rank == 1:
        step = trainer.meta_step

        def dying_step():
            if trainer.step + 1 == die:
                os._exit(3)
            return step()

        trainer.meta_step = dying_step
    try:
        trainer.fit()
    except RankLostError as e:
        if rank == 0:
            with open(out + ".err", "w") as f:
                f.write(str(e))
        sys.exit(4)
    if rank == 0:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out)
    shutdown()


if __name__ == "__main__":
    main(sys.argv[1])
