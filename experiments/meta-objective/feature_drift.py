"""Why meta-training on warm users does not transfer to new users on a time-cut split.

For several populations of "users with K known items", fit the two weights of the linear score
`w_knn * knn + w_pop * pop` (metarec's own side features, `models.features`) by full-catalog
softmax likelihood of the users' later items, and report them with the NDCG@10 they give:

  warm tasks        warm users' first K pre-T items -> their other pre-T items, features with the
                    user's own row removed (exactly what meta-training optimises on)
  time-consistent   the same users, features from only the interactions before each user's arrival
                    (snapshots at quantiles of arrival time)
  pseudo-new        a second protocol cut inside the pre-T data: users arriving in its last 20%
  new (validation)  the protocol's validation users of each seed (test users are never read)

If the populations want different mixes, any parameter fitted on warm tasks moves the model away
from what new users need, and early stopping on validation users rightly keeps the starting mix.
A second table compares ways of scaling the knn evidence with K (mean, sum / sqrt(K), sum), on the
pseudo-new users only: the design data behind metarec's knn feature.

  python benchmarks/feature_drift.py --data-dir ../shared/data/ml-100k --out benchmarks/results
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from metarec.data.protocol import fit_data
from metarec.core.metrics import ranking_metrics
from metarec.data.loaders import load_dataset
from metarec.data.splits import SplitConfig, make_split
from metarec.models.features import FEATURES, ItemSide
from results_io import probe_parser

COLS = [FEATURES.index("knn"), FEATURES.index("pop")]


def fit_weights(feats: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Softmax-likelihood weights [w_knn, w_pop] (float64 LBFGS; the problem is convex)."""
    f, y, m = (torch.from_numpy(np.asarray(a, np.float64)) for a in (feats, labels, mask))
    w = torch.tensor([10.0, 1.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        s = (f * w).sum(-1).masked_fill(m == 0, -torch.inf)
        logp = s - torch.logsumexp(s, 1, keepdim=True)
        loss = -(torch.where(y > 0, logp, 0.0) * y).sum(1).div(y.sum(1).clamp(min=1)).mean()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy()


def ndcg(feats: np.ndarray, w: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> float:
    s = np.where(mask > 0, feats @ w, -np.inf)
    return float(np.nanmean(ranking_metrics(s, sp.csr_matrix(labels), (10,))["ndcg@10"]))


def population(side: ItemSide, support: np.ndarray, later: sp.csr_matrix, exclude=None):
    """(features [U, I, 2], labels [U, I], mask [U, I]) with support items masked out."""
    sf = side.support_features(support, np.ones(support.shape, bool), exclude=exclude)
    y = later.toarray().astype(np.float64)
    m = np.ones_like(y)
    r = np.repeat(np.arange(len(support)), support.shape[1])
    y[r, support.ravel()] = 0
    m[r, support.ravel()] = 0
    return sf.full[..., COLS].astype(np.float64), y, m


def catalog_side(matrix: sp.csr_matrix) -> ItemSide:
    """Side features from an interaction matrix (text unused: only knn and pop are read)."""
    return ItemSide.build(np.ones((matrix.shape[1], 1), np.float32), matrix)


def fitted(split):
    """(FitData, its ItemSide) of a split, built once per split and shared by every K."""
    fd = fit_data(split)
    return fd, catalog_side(fd.matrix)


def snapshot_sides(split, fd, snapshots: int) -> list[tuple[float, ItemSide]]:
    """(cut c_j, side from the pre-T interactions before c_j) at quantiles of warm arrival times."""
    d, tm = split.data, split.train_mask
    out = []
    for c in np.quantile(fd.first_times, np.linspace(0, 1, snapshots + 2)[1:-1]):
        before = tm & (d.timestamp < c)
        mat = sp.csr_matrix((np.ones(int(before.sum()), np.float32), (d.user[before], d.item[before])),
                            shape=fd.matrix.shape)
        out.append((float(c), catalog_side(mat)))
    return out


def warm_sets(fd, side: ItemSide, snaps: list[tuple[float, ItemSide]], k: int):
    ok = [i for i, (items, _) in enumerate(fd.sequences) if len(items) > k]
    sup = np.array([fd.sequences[i][0][:k] for i in ok])
    rows = fd.matrix[fd.warm_users[ok]]
    out = {"warm tasks": population(side, sup, rows, exclude=rows)}
    # time-consistent: users arriving after snapshot cut c_j get features from data before c_j
    first = fd.first_times[ok]
    parts = []
    for j, (c, snap) in enumerate(snaps):
        hi = snaps[j + 1][0] if j + 1 < len(snaps) else np.inf
        sel = np.flatnonzero((first >= c) & (first < hi))
        parts.append(population(snap, sup[sel], rows[sel]))
    out["time-consistent (all snapshots)"] = tuple(np.concatenate(p) for p in zip(*parts))
    out["time-consistent (latest snapshot)"] = parts[-1]
    return out


def new_set(split, side: ItemSide, which: str, k: int):
    ep = split.episodes(which, k)
    return population(side, ep.support_items, ep.relevant(None))


AGGREGATIONS = {"mean": lambda k: k, "sum / sqrt(K)": lambda k: np.sqrt(k), "sum": lambda k: 1.0}


def knn_scaling(pseudo, side: ItemSide, shots=(1, 3, 5, 10), fit_k: int = 5) -> list[dict]:
    """How item-kNN evidence from K support items should be scaled against popularity.

    On pseudo-new users (a cut inside pre-T data: no validation or test user is read), each way of
    aggregating the K cosines gets the (w_knn, w_pop) pair from a grid that maximises NDCG@10 at
    K = fit_k, and is then scored at every K with that one pair, as metarec's validation-chosen prior is.
    """
    pop = side.support_features(np.zeros((1, 0), np.int64), np.zeros((1, 0), bool)).full[0, :, FEATURES.index("pop")]
    per_k = {}
    for k in shots:
        ep = pseudo.episodes("new", k)
        sf = side.support_features(ep.support_items, np.ones(ep.support_items.shape, bool))
        mask = np.ones((len(ep), side.n_items))
        mask[np.repeat(np.arange(len(ep)), k), ep.support_items.ravel()] = 0
        per_k[k] = (sf.cos_sum, ep.relevant(None).toarray(), mask)
    grid = [(w, p) for w in (1.0, 3.0, 10.0, 30.0) for p in (0.1, 0.3, 1.0, 3.0)]
    rows = []
    for name, div in AGGREGATIONS.items():
        def score(k, w, p):
            cos_sum, y, mask = per_k[k]
            f = np.stack([cos_sum / div(k), np.broadcast_to(pop, cos_sum.shape)], axis=-1)
            return ndcg(f, np.array([w, p]), y, mask)
        w, p = max(grid, key=lambda g: score(fit_k, *g))
        rows.append({"knn": name, "w_knn": w, "w_pop": p, **{f"K={k}": score(k, w, p) for k in shots}})
        print(f"{name:14s} w=({w}, {p}) " + " ".join(f"K={k}:{rows[-1][f'K={k}']:.4f}" for k in shots), flush=True)
    return rows


def main() -> None:
    ap = probe_parser(__doc__, seeds=5)
    ap.add_argument("--shots", default="1,5,10")
    ap.add_argument("--snapshots", type=int, default=4)
    a = ap.parse_args()
    data = load_dataset(a.dataset, a.data_dir)
    split0 = make_split(data, SplitConfig(seed=0))
    m = split0.train_mask
    pre = dataclasses.replace(data, user=data.user[m], item=data.item[m], rating=data.rating[m],
                              timestamp=data.timestamp[m])
    pseudo = make_split(pre, SplitConfig(seed=0))
    fd0, side0 = fitted(split0)
    snaps = snapshot_sides(split0, fd0, a.snapshots)
    pseudo_side = fitted(pseudo)[1]
    val_splits = [(split0, side0)] + [(sp_, fitted(sp_)[1]) for sp_ in
                                      (make_split(data, SplitConfig(seed=seed)) for seed in range(1, a.seeds))]
    rows = []
    for k in (int(s) for s in a.shots.split(",")):
        sets = warm_sets(fd0, side0, snaps, k)
        sets["pseudo-new (cut inside pre-T)"] = new_set(pseudo, pseudo_side, "new", k)
        for seed, (split, side) in enumerate(val_splits[:a.seeds]):
            sets[f"new users, validation seed {seed}"] = new_set(split, side, "val", k)
        for name, (f, y, msk) in sets.items():
            w = fit_weights(f, y, msk)
            rows.append({"K": k, "population": name, "users": len(f), "w_knn": float(w[0]), "w_pop": float(w[1]),
                         "ndcg@10 (own fit)": ndcg(f, w, y, msk)})
            print(f"K={k:<3d} {name:36s} users={len(f):4d} w_knn={w[0]:7.2f} w_pop={w[1]:6.2f}", flush=True)
    scaling = knn_scaling(pseudo, pseudo_side)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = "python benchmarks/feature_drift.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(a).items() if v is not None)
    (out / "feature_drift.json").write_text(json.dumps({"command": cmd, "rows": rows, "knn_scaling": scaling}, indent=1))
    lines = ["# Feature-mix drift: warm-user tasks vs new users", "", "Produced by:", "", "```", cmd, "```", "",
             "Softmax-likelihood weights of `w_knn * knn + w_pop * pop` (metarec's side features) fitted "
             "on each population separately; NDCG@10 is each population's own fit (in-sample). With "
             "`--snapshots 4` the latest snapshot's cut is the pseudo cut (both are the 80th percentile of "
             "warm users' first times), so those two rows are the same users and features computed two ways: "
             "a check on the snapshot code.", "",
             "| K | population | users | w_knn | w_pop | w_pop / w_knn | NDCG@10 (own fit) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['K']} | {r['population']} | {r['users']} | {r['w_knn']:.2f} | {r['w_pop']:.2f} | "
                     f"{r['w_pop'] / r['w_knn']:.3f} | {r['ndcg@10 (own fit)']:.4f} |")
    ks = [c for c in scaling[0] if c.startswith("K=")]
    lines += ["", "## Scaling the knn evidence with K (pseudo-new users only)", "",
              "Each aggregation of the K support cosines gets the (w_knn, w_pop) pair that is best at K = 5 "
              "on pseudo-new users, then is scored at every K with that pair (as metarec's prior is chosen "
              "at K = 5 and used at every K). metarec's knn feature is `sum / sqrt(K)`.", "",
              "| knn | w_knn | w_pop | " + " | ".join(f"NDCG@10 {c}" for c in ks) + " |",
              "|---|---|---|" + "---|" * len(ks)]
    for r in scaling:
        lines.append(f"| {r['knn']} | {r['w_knn']:g} | {r['w_pop']:g} | " + " | ".join(f"{r[c]:.4f}" for c in ks) + " |")
    (out / "feature_drift.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out / 'feature_drift.md'}")


if __name__ == "__main__":
    main()
