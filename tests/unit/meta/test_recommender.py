"""Training, checkpoints, exact resume, determinism and the adapt/recommend API, end to end on a
fixture dataset with a real (tiny, randomly initialised) transformer encoder."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from metarec.data.protocol import fit_data, make_validator
from metarec.core.errors import CheckpointError, ConfigError, UnknownItemError
from metarec.data import make_split
from metarec.encoders import EncoderConfig
from metarec.meta.learners import MetaConfig
from metarec.meta import checkpoint as ckpt
from metarec.meta.recommender import MetaRecommender
from metarec.meta.start import StartSearch
from metarec.meta.train import FitLimits
from metarec.meta.trainer import TrainConfig
from metarec.methods.ease import EASE
from metarec.methods.metarec import MetaRecMethod
from metarec.data.protocol import SupportBatch

TRAIN = dict(meta_batch=4, n_query=5, n_neg=10, n_inner_neg=5, eval_every=5, patience=100)


def _method(tiny_models, steps, out=None, seed=0):
    return MetaRecMethod(seed=seed, train=TrainConfig(steps=steps, **TRAIN), out=out,
                         encoder=EncoderConfig(model=tiny_models["bert"]))


def _fit(tiny_ml, m):
    split = make_split(tiny_ml)
    return m.fit(fit_data(split), make_validator(split, k=2), item_ids=tiny_ml.item_ids.tolist(),
                 titles=tiny_ml.titles(range(tiny_ml.n_items)))


def _state(m):
    return {k: v.clone() for k, v in m.trainer.model.state_dict().items()}


def _scores_in_blocks_agree(rec, ep, users_per_forward=None, profiles=None):
    """Full-catalog scores in blocks of 3 items (a ragged last block) equal one forward over the
    catalog: each item's score is the same arithmetic, the blocks only keep the work in cache."""
    whole = rec.score_batch(ep.support_items, ep.support_ratings, profiles, chunk=users_per_forward)
    old = rec.BLOCK_ROWS
    try:
        n = users_per_forward or len(ep)
        rec.BLOCK_ROWS = 3 * n
        assert rec.catalog_block(n) == 3 and rec.side.n_items % 3
        blocks = rec.score_batch(ep.support_items, ep.support_ratings, profiles, chunk=users_per_forward)
    finally:
        rec.BLOCK_ROWS = old
    np.testing.assert_allclose(blocks, whole, rtol=1e-6, atol=1e-7)
    assert not np.allclose(whole[:, :3], whole[:, 3:6])  # the blocks are different items


def test_same_seed_same_numbers(tiny_ml, tiny_models):
    a, b = _fit(tiny_ml, _method(tiny_models, 10)), _fit(tiny_ml, _method(tiny_models, 10))
    for k, v in _state(a).items():
        assert torch.equal(v, _state(b)[k]), k
    split = make_split(tiny_ml)
    ep = split.episodes("test", 3)
    batch = SupportBatch(ep.support_items, ep.support_ratings, tiny_ml.users.iloc[ep.users].reset_index(drop=True))
    np.testing.assert_array_equal(a.score(batch), b.score(batch))
    _scores_in_blocks_agree(a.rec, ep)
    _scores_in_blocks_agree(a.rec, ep, users_per_forward=2)


def test_the_validation_input_cache_changes_nothing_but_the_work(tiny_ml, tiny_models):
    cached = _fit(tiny_ml, _method(tiny_models, 10))
    plain = _method(tiny_models, 10)
    plain.model.limits = FitLimits(validation_cache_bytes=0)  # nothing fits: every scoring builds its inputs
    plain = _fit(tiny_ml, plain)
    assert cached.rec.cache_hits > 0 and plain.rec.cache_hits == 0  # the start search and early stopping reused
    assert cached.trainer.history == plain.trainer.history and cached.prior == plain.prior
    for k, v in _state(cached).items():
        assert torch.equal(v, _state(plain)[k]), k
    split = make_split(tiny_ml)
    ep = split.episodes("val", 2)
    rec = cached.rec
    with rec.input_cache(1 << 30):
        first = rec.score_batch(ep.support_items, ep.support_ratings)
        again = rec.score_batch(ep.support_items, ep.support_ratings)
        assert rec.cache_hits == 1  # the second scoring reused the first one's inputs
        rec.score_batch(ep.support_items[::-1].copy(), ep.support_ratings[::-1].copy())
        assert rec.cache_hits == 1  # other users (here: the same, in another order) are built afresh
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, rec.score_batch(ep.support_items, ep.support_ratings))  # no cache
    assert rec._cache is None  # dropped on exit


def test_interrupted_run_resumes_exactly(tiny_ml, tiny_models, tmp_path):
    straight = _fit(tiny_ml, _method(tiny_models, 20))
    _fit(tiny_ml, _method(tiny_models, 10, out=str(tmp_path / "m")))  # "crash" after 10 steps
    resumed = _fit(tiny_ml, _method(tiny_models, 20, out=str(tmp_path / "m")))
    assert resumed.trainer.step == 20 and resumed.trainer.history == straight.trainer.history
    live_a = straight.trainer._state()
    live_b = resumed.trainer._state()
    for k in live_a:
        assert torch.equal(live_a[k], live_b[k]), k


def test_checkpoint_roundtrip_and_user_api(tiny_ml, tiny_models, tmp_path):
    m = _fit(tiny_ml, _method(tiny_models, 10, out=str(tmp_path / "m")))
    rec = MetaRecommender.load(tmp_path / "m")
    # the trend window's counts travel with the checkpoint (the fixture has timestamps)
    assert m.rec.side.recent is not None and m.rec.side.recent.any()
    np.testing.assert_array_equal(rec.side.recent, m.rec.side.recent)
    # the co-occurrences come back entry for entry; item indices are stored as int32, and a
    # checkpoint written with int64 indices (before) loads to the same matrix
    assert rec.side.cooc.nnz == m.rec.side.cooc.nnz and (rec.side.cooc != m.rec.side.cooc).nnz == 0
    side_file = tmp_path / "m" / "side.safetensors"
    tensors = ckpt.load_tensors(side_file)
    assert tensors["cooc.indices"].dtype == torch.int32
    ckpt.save_tensors(side_file, {**tensors, "cooc.indices": tensors["cooc.indices"].to(torch.int64)})
    assert (MetaRecommender.load(tmp_path / "m").side.cooc != m.rec.side.cooc).nnz == 0
    support = [1, 2, 5]
    user = rec.adapt(support, ratings=[5, 4, 3])
    # the loaded model scores exactly like the in-memory one
    idx = tiny_ml.item_index(support)
    direct = m.rec.score_batch(idx[None], np.array([[5, 4, 3]], np.float32),
                               np.zeros((1, rec.side.text.shape[1]), np.float32))[0]
    np.testing.assert_allclose(user.scores, direct, rtol=1e-6, atol=1e-6)
    ids, scores = user.recommend(5)
    assert len(ids) == 5 and not set(ids) & set(support) and np.all(np.diff(scores) <= 0)
    assert user.score([ids[0]])[0] == pytest.approx(scores[0])
    # filters: excluded items are skipped, candidates restrict the ranking (support still left out)
    top7 = user.recommend(7)[0]
    assert user.recommend(5, exclude=top7[:2])[0] == top7[2:7]
    assert user.recommend(10, candidates=top7[3:6] + [support[0]])[0] == top7[3:6]
    assert [r["item_id"] for r in user.ranked(3, exclude=top7[:1], candidates=top7[:5])] == top7[1:4]
    with pytest.raises(UnknownItemError, match="424242"):
        user.recommend(3, exclude=[424242])
    for bad in (0, -1, 2.5, True):  # a list length is a whole number >= 1, never silently empty or cut
        with pytest.raises(ConfigError, match="k must be a whole number >= 1"):
            user.recommend(bad)
    assert user.recommend(np.int64(2))[0] == top7[:2]
    more = user.update([(ids[0], 5.0)])
    assert ids[0] not in more.recommend(5)[0] and len(more.support) == 4
    cold = rec.adapt([], profile="A 30-year-old female writer.")  # K = 0: profile only
    assert len(cold.recommend(3)[0]) == 3
    with pytest.raises(UnknownItemError):
        rec.adapt([99999])
    with pytest.raises(ConfigError, match=r"more than once in the support set: \[2\]"):
        rec.adapt([1, 2, 2])
    # an item already in the support set is re-rated: the newest rating counts, the item becomes the
    # newest interaction, and the result is what adapting on that support set from scratch gives
    again = user.update([(1, 2.0)])
    assert [rec.item_ids[i] for i in again.support] == [2, 5, 1] and again.ratings.tolist() == [4, 3, 2]
    np.testing.assert_array_equal(again.scores, rec.adapt([2, 5, 1], ratings=[4, 3, 2]).scores)
    twice = user.update([(7, 1.0), 2, (7, 4.0)])  # within one update too; no rating is unknown
    assert [rec.item_ids[i] for i in twice.support] == [1, 5, 2, 7]
    np.testing.assert_array_equal(twice.ratings, [5, 3, np.nan, 4])
    assert [rec.item_ids[i] for i in user.support] == [1, 2, 5]  # the user updated is left as it was
    # the scale is the training log's (1-5 in the fixture): 0 and 7 are off it, as is a non-number
    for r in (7, 0, float("inf")):
        with pytest.raises(ConfigError, match=rf"rating {r:g} for item 2 is outside this model's rating scale \[1, 5\]"):
            rec.adapt([1, 2], ratings=[5, r])
    (tmp_path / "m" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        MetaRecommender.load(tmp_path / "m")


def test_meta_train_and_recommend_cli(tiny_ml, tiny_models, tmp_path):
    from tests.fixtures import run_cli, write_ml100k

    data = write_ml100k(tmp_path / "ml-100k")
    py = [sys.executable, "-m", "metarec.cli", "--no-progress"]
    train = py + ["meta-train", "--dataset", "ml-100k", "--data-dir", str(data), "--out", str(tmp_path / "m"),
                  "--meta-batch", "4", "--model", tiny_models["bert"], "--outer-loss", "softmax"]
    first = subprocess.run(train + ["--steps", "4"], check=True, capture_output=True, text=True)
    # no terminal: plain lines on stderr say what the long work is doing, and a re-run says it resumes
    assert "start 1/" in first.stderr and "step 4/4: loss" in first.stderr and "left at most" in first.stderr
    again = subprocess.run(train + ["--steps", "6"], check=True, capture_output=True, text=True)
    assert "goes on from step 4" in again.stderr and "resuming from step 4 of" in again.stderr
    assert "step 6/6" in again.stderr and "Traceback" not in again.stderr
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["meta"]["algorithm"] == "maml" and (tmp_path / "m" / "model.safetensors").exists()
    assert cfg["meta"]["outer_loss"] == "softmax" and cfg["meta"]["loss"] == "softmax"  # not the default
    assert MetaRecommender.load(tmp_path / "m").meta.outer_loss == "softmax"
    # the commands that use a model run in this process (training above needed its own, for its logging)
    m = tmp_path / "m"
    out = run_cli(["recommend", "--model", m, "--support", "3:5,7:4,9", "-k", "4", "--json"])
    recs = json.loads(out.stdout)["recommendations"]
    assert len(recs) == 4 and not {r["item_id"] for r in recs} & {3, 7, 9}
    assert all(r["title"].startswith(("Movie", "Mis")) for r in recs)
    # evaluate: the held-out users of the model's own split, as evaluate_model scores them
    from metarec.bench.evaluate import evaluate_model
    from metarec.data import load_dataset

    out = run_cli(["evaluate", "--model", m, "--dataset", "ml-100k", "--data-dir", data, "--shots", "1,2", "--json"])
    rows = json.loads(out.stdout)["rows"]
    want = evaluate_model(m, load_dataset("ml-100k", data), shots=(1, 2))
    assert len(rows) == 2 and all(a == pytest.approx(b) for a, b in zip(rows, want))
    (data / "u.data").write_text("".join(sorted((data / "u.data").read_text().splitlines(keepends=True))[:-1]))
    bad = run_cli(["evaluate", "--model", m, "--dataset", "ml-100k", "--data-dir", data], check=False)
    assert bad.exit_code == 2 and "would not be held out" in " ".join(bad.stderr.split())
    skip = run_cli(["recommend", "--model", m, "--support", "3:5,7:4,9", "-k", "4",
                    "--exclude", f"{recs[0]['item_id']},{recs[2]['item_id']}", "--json"])
    assert [r["item_id"] for r in json.loads(skip.stdout)["recommendations"]][:2] == [recs[1]["item_id"],
                                                                                     recs[3]["item_id"]]
    bad = run_cli(["recommend", "--model", m, "--support", "424242"], check=False)
    assert bad.exit_code == 2 and "424242" in bad.stderr
    if not torch.cuda.is_available():  # a device that is not there: a clear error, exit code 2
        bad = run_cli(["recommend", "--model", m, "--support", "3", "--device", "cuda"], check=False)
        assert bad.exit_code == 2 and "sees no CUDA device" in " ".join(bad.stderr.split())


def test_method_refuses_an_unusable_device_before_any_work():
    with pytest.raises(ConfigError, match="not a torch device"):
        MetaRecMethod(device="gpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_meta_training_on_cuda_matches_the_cpu_and_its_checkpoint_loads_anywhere(tiny_ml, tiny_models, tmp_path):
    cpu = _fit(tiny_ml, _method(tiny_models, 10))
    m = _method(tiny_models, 10, out=str(tmp_path / "m"))
    m.device = "cuda"
    gpu = _fit(tiny_ml, m)
    assert next(gpu.trainer.model.parameters()).is_cuda and gpu.trainer.best_step == cpu.trainer.best_step
    for k, v in _state(cpu).items():  # the same run up to float rounding (CUDA sums in another order)
        torch.testing.assert_close(_state(gpu)[k].cpu(), v, rtol=1e-3, atol=1e-4)
    split = make_split(tiny_ml)
    ep = split.episodes("test", 3)
    batch = SupportBatch(ep.support_items, ep.support_ratings, tiny_ml.users.iloc[ep.users].reset_index(drop=True))
    on_gpu = gpu.score(batch)
    np.testing.assert_allclose(on_gpu, cpu.score(batch), rtol=1e-3, atol=1e-3)
    # written from CUDA, read back on the CPU and on CUDA: the same scores
    support, r = [1, 2, 5], [5, 4, 3]
    a = MetaRecommender.load(tmp_path / "m").adapt(support, ratings=r).scores
    b = MetaRecommender.load(tmp_path / "m", device="cuda").adapt(support, ratings=r).scores
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_pooled_finetune_fine_tunes_each_user(tiny_ml, tiny_models):
    """pooled-finetune trains without an inner loop but must still take the inner steps per user
    at scoring time: its scores equal a hand-run of the same gradient steps on the support set."""
    from metarec.methods.metarec import PooledFinetune

    m = PooledFinetune(seed=0, train=TrainConfig(steps=5, meta=False, **TRAIN),
                       encoder=EncoderConfig(model=tiny_models["bert"]))
    _fit(tiny_ml, m)
    assert m.trainer.learner.cfg.inner_steps == 0 and m.rec.meta.inner_steps == 3
    split = make_split(tiny_ml)
    ep = split.episodes("test", 3)
    batch = SupportBatch(ep.support_items, ep.support_ratings, tiny_ml.users.iloc[ep.users].reset_index(drop=True))
    tuned = m.score(batch)
    # the same adaptation a learner built for the recommender's own config (3 inner steps) does
    from metarec.meta.learners import make_learner

    trainer_learner = m.rec.learner
    m.rec.learner = make_learner(m.rec.model, m.rec.meta, m.rec.item_text)
    np.testing.assert_allclose(m.score(batch), tuned, rtol=0, atol=1e-6)
    # and it is not a no-op: without the inner loop the scores differ
    m.rec.learner = trainer_learner
    m.rec.meta = type(m.rec.meta)(**{**m.rec.meta.__dict__, "inner_steps": 0})
    assert np.abs(m.score(batch) - tuned).max() > 1e-4


def test_melu_fits_and_scores_the_full_catalog(tiny_ml):
    """MeLU runs through the same trainer/recommender path (its network has no text projection)."""
    from metarec.methods.melu import MeLU

    split = make_split(tiny_ml)
    m = MeLU(seed=0, steps=4, meta_batch=4).fit(fit_data(split), make_validator(split, k=2))
    ep = split.episodes("test", 3)
    batch = SupportBatch(ep.support_items, ep.support_ratings, tiny_ml.users.iloc[ep.users].reset_index(drop=True))
    s = m.score(batch)
    assert s.shape == (len(ep), tiny_ml.n_items) and np.isfinite(s).all()
    _scores_in_blocks_agree(m.rec, ep, profiles=m.feats.user_onehots(batch.users))
    assert m.describe()["best_step"] == 4  # a fixed budget: the last step is the model
    # MeLU regresses ratings: its predicted rating of an item is its adapted score of that item
    pred = m.predict_ratings(batch, ep.query_items)
    for u, (it, p) in enumerate(zip(ep.query_items, pred)):
        np.testing.assert_allclose(p, s[u, it])


def test_keep_best_false_trains_every_step_and_keeps_the_last(tiny_ml, tiny_models):
    """A validation score that only ever falls: keep-best would stop after one bad evaluation and
    keep step 0; keep_best=False must run all 10 steps and keep the last weights."""
    import itertools

    falling = itertools.count()
    split = make_split(tiny_ml)
    runs = {}
    for keep in (True, False):
        m = MetaRecMethod(seed=0, train=TrainConfig(steps=10, keep_best=keep, **{**TRAIN, "patience": 1}),
                          encoder=EncoderConfig(model=tiny_models["bert"]))
        m.fit(fit_data(split), lambda score_fn: -float(next(falling)))
        runs[keep] = m.trainer
    assert (runs[True].step, runs[True].best_step) == (5, 0)
    t = runs[False]
    assert (t.step, t.best_step) == (10, 10)
    live = t._state()
    for k, v in t.best_state.items():
        assert torch.equal(v, live[k]), k


def test_adapt_all_scores_the_full_catalog(tiny_ml, tiny_models):
    """adapt="all" gives every user its own text projection; full-catalog scoring (stride-0 catalog
    rows) must handle the per-task weights (it once raised a bmm shape error)."""
    m = MetaRecMethod(seed=0, meta=MetaConfig(adapt="all"), train=TrainConfig(steps=2, **TRAIN),
                      encoder=EncoderConfig(model=tiny_models["bert"]))
    _fit(tiny_ml, m)
    ep = make_split(tiny_ml).episodes("test", 3)
    batch = SupportBatch(ep.support_items, ep.support_ratings, tiny_ml.users.iloc[ep.users].reset_index(drop=True))
    s = m.score(batch)
    assert s.shape == (len(ep), tiny_ml.n_items) and np.isfinite(s).all()
    # each user's adapted projection differs, so two users with different supports score differently
    assert not np.allclose(s[0], s[1])
    _scores_in_blocks_agree(m.rec, ep)


def test_ease_feature_trains_searches_its_weight_survives_a_checkpoint_and_is_left_out_above_the_cap(
        tiny_ml, tiny_models, tmp_path, monkeypatch):
    from metarec.models.features import ALL_FEATURES, FEATURES

    m = _fit(tiny_ml, _method(tiny_models, 5, out=str(tmp_path / "m")))
    assert m.rec.model.cfg.features == ALL_FEATURES and m.rec.side.ease_p is not None
    # the feature's ridge and inverse are the EASE baseline's, chosen on the same validation users
    split = make_split(tiny_ml)
    ease = EASE(keep_inverse=True).fit(fit_data(split), make_validator(split, k=2))
    assert m.rec.side.ease_lambda == ease.lam
    np.testing.assert_array_equal(m.rec.side.ease_p, ease.p)
    assert m.rec.model.head.w_feat.shape == (len(ALL_FEATURES),)
    tried = m.prior["val_ndcg@10"]
    assert any("ease=10.0" in k and "knn=0.0" in k for k in tried)  # ease instead of knn was a candidate
    rec = MetaRecommender.load(tmp_path / "m")
    np.testing.assert_array_equal(rec.side.ease_p, m.rec.side.ease_p)
    assert rec.side.ease_scale == m.rec.side.ease_scale and rec.side.ease_lambda == m.rec.side.ease_lambda
    user = rec.adapt([1, 2, 5], ratings=[5, 4, 3])
    idx = tiny_ml.item_index([1, 2, 5])
    direct = m.rec.score_batch(idx[None], np.array([[5, 4, 3]], np.float32),
                               np.zeros((1, rec.side.text.shape[1]), np.float32))[0]
    np.testing.assert_allclose(user.scores, direct, rtol=1e-6, atol=1e-6)
    # a catalog above the cap: the default features less ease, and no inverse kept
    method = _method(tiny_models, 0)
    method.model.limits = FitLimits(ease_max_items=tiny_ml.n_items - 1)
    configured = method.model.head
    small = _fit(tiny_ml, method)
    assert small.rec.model.cfg.features == FEATURES and small.rec.side.ease_p is None
    assert small.describe()["head"]["features"] == list(FEATURES)  # the run records what was fitted
    assert small.model.head is configured  # the method's configuration is left as given (a refit may fit a smaller catalog)
    assert not any("ease" in k for k in small.prior["val_ndcg@10"])


def test_start_search_scores_a_sample_first_on_a_large_validation_set(tiny_ml, tiny_models, monkeypatch):
    """With at least 2 x quick_users validation users, every candidate start is scored on a sample
    and the quick_keep best on all users; the start kept is the best of those by the full score, and
    that score is meta-training's step 0 (not scored again)."""
    from metarec.models.features import FEATURES
    from metarec.models.scoring import ScoringConfig

    split = make_split(tiny_ml)
    base = make_validator(split, k=2)
    calls = {"full": 0, "sample": 0}

    def counted(v, key):
        def validate(score_fn):
            calls[key] += 1
            return v(score_fn)
        validate.n_users, validate.sample = v.n_users, lambda n: counted(v.sample(n), "sample")
        return validate

    def method(quick_users: int):  # without the ease feature, whose lambda sweep calls the validator too
        return MetaRecMethod(seed=0, head=ScoringConfig(features=FEATURES), train=TrainConfig(steps=0, **TRAIN),
                             encoder=EncoderConfig(model=tiny_models["bert"]),
                             start=StartSearch(quick_users=quick_users))

    assert base.n_users >= 2
    m = method(base.n_users // 2).fit(fit_data(split), counted(base, "full"))
    p = m.prior
    assert p["sample_users"] == base.n_users // 2
    assert calls == {"full": StartSearch().quick_keep, "sample": len(p["val_ndcg@10"])}
    finalists = p["val_ndcg@10_all_users"]
    assert len(finalists) == StartSearch().quick_keep and set(finalists) <= set(p["val_ndcg@10"])
    assert min(p["val_ndcg@10"][k] for k in finalists) >= max(x for k, x in p["val_ndcg@10"].items() if k not in finalists)
    chosen = f"lr={p['inner_lr']} " + ",".join(f"{k}={v}" for k, v in p["chosen"].items())
    assert p["val_ndcg@10_all_users"][chosen] == max(p["val_ndcg@10_all_users"].values())
    # step 0 is the chosen start's full score, the number a fresh scoring of the kept model gives
    assert m.trainer.history[0]["val"] == m.model.start_val == base(m.score)
    assert round(m.model.start_val, 4) == p["val_ndcg@10_all_users"][chosen]
    # a small validation set is scored whole for every candidate, as before
    calls.update(full=0, sample=0)
    small = method(base.n_users).fit(fit_data(split), counted(base, "full"))
    assert calls == {"full": len(small.prior["val_ndcg@10"]), "sample": 0} and "sample_users" not in small.prior
    assert small.trainer.history[0]["val"] == base(small.score)


def test_meta_data_takes_precomputed_profiles_and_checks_their_rows(tiny_ml, tiny_models):
    from metarec.encoders import profile_vectors
    from metarec.meta.train import meta_data
    from metarec.models.features import ItemSide

    fd = fit_data(make_split(tiny_ml))
    enc = EncoderConfig(model=tiny_models["bert"])
    side = ItemSide.build(np.random.default_rng(0).normal(size=(tiny_ml.n_items, 8)), fd.matrix, ease_lambda=2.0)
    encoded = meta_data(fd, side, enc)
    every = profile_vectors(fd.users, enc)  # one row per user, warm or not
    given = meta_data(fd, side, None, profiles=every)
    assert encoded.profiles.shape == (len(fd.warm_users), every.shape[1])
    np.testing.assert_array_equal(given.profiles, encoded.profiles)
    with pytest.raises(ConfigError, match="rows"):
        meta_data(fd, side, None, profiles=every[1:])


def test_metasgd_learns_keeps_and_checkpoints_its_inner_rates(tiny_ml, tiny_models, tmp_path):
    m = MetaRecMethod(seed=0, meta=MetaConfig(algorithm="metasgd"), out=str(tmp_path / "m"),
                      train=TrainConfig(steps=10, keep_best=False, **TRAIN), encoder=EncoderConfig(model=tiny_models["bert"]))
    _fit(tiny_ml, m)
    rates = {n: p.detach().clone() for n, p in m.trainer.learner.lrs.as_dict().items()}
    flat = torch.cat([r.flatten() for r in rates.values()])
    assert flat.min() < flat.max()  # every rate started at one value; training moved them apart
    assert all(torch.equal(m.trainer.best_state[f"lrs.{n}"], r) for n, r in rates.items())  # kept with the weights
    loaded = MetaRecommender.load(tmp_path / "m")
    assert loaded.learner.lrs is not None
    for n, p in loaded.learner.lrs.as_dict().items():
        assert torch.equal(p, rates[n]), n
    ep = make_split(tiny_ml).episodes("test", 3)
    np.testing.assert_array_equal(loaded.score_batch(ep.support_items, ep.support_ratings),
                                  m.rec.score_batch(ep.support_items, ep.support_ratings))
