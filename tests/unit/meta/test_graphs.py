"""CUDA-graph replay of the meta-step (meta/graphs.py): the eager step's loss and gradients, batch
after batch and shape after shape; the trainer's choice of it; and its refusals on the CPU."""

import copy

import numpy as np
import pytest
import torch

from metarec.core.errors import ConfigError
from metarec.meta.learners import FunctionalMeta, MetaConfig
from metarec.meta.losses import approx_ndcg
from metarec.meta.tasks import sample_tasks
from metarec.meta.trainer import MetaTrainer, TrainConfig
from tests.unit.meta.helpers import tiny_problem

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_cuda_graphs_config_is_checked_and_auto_stays_eager_on_the_cpu():
    with pytest.raises(ConfigError, match="cuda_graphs must be"):
        TrainConfig(cuda_graphs="yes")
    model, _, text, md = tiny_problem(dtype=torch.float32)
    assert MetaTrainer(model, text, md, MetaConfig(), TrainConfig()).graphed is None
    assert MetaTrainer(model, text, md, MetaConfig(), TrainConfig(cuda_graphs="off")).graphed is None
    with pytest.raises(ConfigError, match="needs a CUDA device and the functional backend"):
        MetaTrainer(model, text, md, MetaConfig(), TrainConfig(cuda_graphs="on"))


def test_asking_for_graphs_without_a_gpu_is_refused_before_any_work(tmp_path):
    from typer.testing import CliRunner

    from metarec.cli.app import app
    from metarec.methods.metarec import MetaRecMethod
    from tests.fixtures import write_ml100k

    with pytest.raises(ConfigError, match="needs a CUDA device and the functional backend"):
        MetaRecMethod(train=TrainConfig(cuda_graphs="on"), device="cpu")
    with pytest.raises(ConfigError, match="needs a CUDA device and the functional backend"):
        MetaRecMethod(train=TrainConfig(cuda_graphs="on"), meta=MetaConfig(backend="learn2learn"), device="cpu")
    r = CliRunner().invoke(app, ["--no-progress", "meta-train", "--dataset", "ml-100k", "--data-dir",
                                 str(write_ml100k(tmp_path / "ml-100k")), "--out",
                                 str(tmp_path / "m"), "--cuda-graphs", "on"])
    assert r.exit_code == 2 and "needs a CUDA device" in r.output and not (tmp_path / "m").exists()


def test_a_host_bound_on_the_positives_changes_no_approx_ndcg():
    """The batch's host-side `max_pos` is its labels' count, and a larger bound (what a graph uses)
    only adds columns that count zero."""
    model, batch, text, md = tiny_problem()
    n_pos = ((batch.outer_labels > 0) & (batch.outer_mask > 0)).sum(1)
    assert batch.max_pos == int(n_pos.max()) > 0
    scores = torch.randn(batch.outer_labels.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = approx_ndcg(scores, batch.outer_labels, batch.outer_mask, 30)
    for bound in (batch.max_pos, batch.max_pos + 3, batch.outer_labels.shape[1]):
        torch.testing.assert_close(approx_ndcg(scores, batch.outer_labels, batch.outer_mask, 30, max_pos=bound),
                                   exact, rtol=0, atol=1e-14)
    assert batch.task(0).max_pos is None  # one task's own count is not the batch's: read it from its labels


def _eager(learner, batch):
    for p in learner.outer_parameters():
        p.grad = None
    loss = learner.meta_loss(batch)
    loss.backward()
    return float(loss.detach()), [None if p.grad is None else p.grad.clone() for p in learner.outer_parameters()]


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("algorithm,adapt,outer_loss", [
    ("maml", "head", "approx_ndcg"), ("maml", "head", None), ("fomaml", "all", None),
    ("metasgd", "head", "approx_ndcg"), ("anil", "all", None)])
def test_replayed_step_gives_the_eager_loss_and_gradients_for_every_batch_and_shape(algorithm, adapt, outer_loss):
    from metarec.meta.graphs import GraphedMetaLoss

    model, _, text, md = tiny_problem()
    model, text = model.cuda(), text.cuda()
    lrn = FunctionalMeta(model, MetaConfig(algorithm=algorithm, adapt=adapt, inner_steps=2, inner_lr=0.3,
                                           outer_loss=outer_loss), text)
    graphed = GraphedMetaLoss(lrn.meta_loss, lrn.outer_parameters())
    rng = np.random.default_rng(5)
    # K = 3, 3, 1, 3: the second batch replays the first's graph on new values, K = 1 makes a second graph
    for k in (3, 3, 1, 3):
        batch = sample_tasks(md, model.cfg, rng, n_tasks=4, k=k, n_query=5, n_neg=6, n_inner_neg=4,
                             id_dropout=0.2).to(device="cuda", dtype=text.dtype)
        want_loss, want = _eager(lrn, batch)
        for p in lrn.outer_parameters():
            p.grad = None
        got_loss = float(graphed(batch))
        assert got_loss == pytest.approx(want_loss, abs=1e-10)
        for w, p in zip(want, lrn.outer_parameters()):
            assert (w is None) == (p.grad is None)
            if w is not None:
                torch.testing.assert_close(p.grad, w, rtol=0, atol=1e-10)
        with torch.no_grad():  # the graphs read the parameters where they lie: move them in place
            for p in model.parameters():
                p.mul_(0.97)
    assert graphed.n_graphs == 2
    graphed.reset()  # the memory handed back; the next call captures again and gives the same step
    want_loss, want = _eager(lrn, batch)
    assert float(graphed(batch)) == pytest.approx(want_loss, abs=1e-10) and graphed.n_graphs == 1
    for w, p in zip(want, lrn.outer_parameters()):
        if w is not None:
            torch.testing.assert_close(p.grad, w, rtol=0, atol=1e-10)


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("meta", [True, False])  # False: pooled-finetune's training, no inner loop
def test_trainer_with_graphs_follows_the_eager_trainer(meta):
    model, _, text, md = tiny_problem(dtype=torch.float32)
    model, text = model.cuda(), text.cuda()
    runs = {}
    for mode in ("off", "on"):
        m = copy.deepcopy(model)
        t = MetaTrainer(m, text, md, MetaConfig(inner_steps=2, inner_lr=0.3, outer_loss="approx_ndcg"),
                        TrainConfig(steps=12, meta_batch=4, n_query=5, n_neg=6, n_inner_neg=4, k_max=4,
                                    cuda_graphs=mode, meta=meta))
        assert (t.graphed is not None) == (mode == "on")
        losses = [float(t.meta_step()) for _ in range(12)]
        runs[mode] = (losses, {k: v.clone() for k, v in m.state_dict().items()}, t)
    assert runs["on"][2].graphed.n_graphs >= 2  # several support sizes were drawn
    runs["on"][2].fit()  # at its step budget already: fit() only ends, and hands the graphs back
    assert runs["on"][2].graphed.n_graphs == 0 and runs["on"][2].graphed.captures >= 2
    np.testing.assert_allclose(runs["on"][0], runs["off"][0], rtol=1e-5, atol=1e-6)
    for k, v in runs["off"][1].items():
        torch.testing.assert_close(runs["on"][1][k], v, rtol=1e-4, atol=1e-5)
