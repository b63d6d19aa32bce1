"""A seeded synthetic interaction log for the generic `csv` dataset: a second domain shape to run
the protocol on (and the larger catalog of `catalog_scale.py`).

Power-law item popularity, users drawn to 2 of 50 latent item clusters, heavy-tailed history lengths,
arrivals spread over time, and short item titles that name the cluster only weakly. With
`--implicit` the rating column is left out, so every method sees implicit feedback. With
`--topic-titles P` each title names its cluster's topic in plain English instead ("classic jazz 17")
with probability P, another cluster's otherwise: a text-rich catalog, where the encoder's embeddings
carry the clusters and content is a strong signal. A weak cluster
pull with short histories (`--affinity 3 --history-scale 5 --history-shape 1.5 --history-cap 100`)
gives a sparse log where popularity is hard to beat: the third shape metarec is reported on.

    python benchmarks/synthetic_data.py --items 2000 --users 1500 --implicit --out /tmp/synthetic-implicit
    metarec benchmark --dataset csv --data-dir /tmp/synthetic-implicit --methods all --shots 1,3,5,10 --seeds 5 \
        --out benchmarks/results/synthetic-implicit-cold-start
    python benchmarks/synthetic_data.py --items 4000 --users 3000 --implicit --affinity 3 --history-scale 5 \
        --history-shape 1.5 --history-cap 100 --out /tmp/synthetic-sparse
    python benchmarks/synthetic_data.py --items 2000 --users 1500 --implicit --topic-titles 0.9 --out /tmp/synthetic-text
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


# one plain-English topic per latent cluster, and generic words around it, for --topic-titles
TOPICS = ("jazz", "soccer", "baking", "astronomy", "gardening", "poetry", "chess", "surfing", "photography",
          "knitting", "robotics", "opera", "hiking", "sushi", "painting", "cycling", "guitar", "yoga", "fishing",
          "pottery", "skiing", "tennis", "ballet", "camping", "origami", "volcanoes", "dinosaurs", "sailing",
          "wine", "coffee", "horror", "romance", "westerns", "cartoons", "pirates", "vampires", "detectives",
          "spaceships", "cowboys", "samurai", "wizards", "zombies", "submarines", "trains", "castles", "jungles",
          "deserts", "islands", "mushrooms", "dragons")
STYLES = ("classic", "modern", "the complete guide to", "a history of", "adventures in", "essential",
          "the little book of", "beginner's", "advanced", "stories of")


def synthetic_log(root: Path, n_items: int, n_users: int, seed: int, implicit: bool = False, *,
                  affinity: float = 20.0, history_scale: float = 20.0, history_shape: float = 1.2,
                  history_cap: int = 800, topic_titles: float | None = None) -> int:
    """Write interactions.csv and items.csv under root; return the number of interactions.

    implicit: leave the rating column out (the csv loader then treats the log as implicit feedback).
    affinity: how much more likely a user picks an item of their 2 clusters (low = popularity rules).
    history_*: a user's history length is min(3 + pareto(shape) * scale, cap).
    topic_titles: None for the weak titles; else the probability that an item's title names its own
    cluster's topic (TOPICS), not a random one. Drawn after everything else, so the log is the same.
    """
    rng = np.random.default_rng(seed)
    n_clusters = 50
    item_c = rng.integers(0, n_clusters, n_items)
    pop = np.minimum(rng.zipf(1.3, n_items).astype(float), 5000.0)
    arrive = rng.uniform(0, 1e7, n_users)
    frames = []
    for u in range(n_users):
        n = int(min(3 + rng.pareto(history_shape) * history_scale, history_cap))
        liked = rng.choice(n_clusters, 2, replace=False)
        p = pop * np.where(np.isin(item_c, liked), affinity, 1.0)
        items = rng.choice(n_items, size=min(n, n_items), replace=False, p=p / p.sum())
        t = arrive[u] + np.sort(rng.exponential(2e6, len(items)))
        frames.append(pd.DataFrame({"user_id": u, "item_id": items, "rating": rng.integers(1, 6, len(items)),
                                    "timestamp": t.astype(np.int64)}))
    log = pd.concat(frames)
    if implicit:
        log = log.drop(columns=["rating"])
    log.to_csv(root / "interactions.csv", index=False)
    words = [f"w{i}" for i in range(3000)]
    titles = [f"{words[c * 50 + rng.integers(0, 50)]} {words[rng.integers(0, 3000)]} {i}" for i, c in enumerate(item_c)]
    if topic_titles is not None:
        own = rng.random(n_items) < topic_titles
        topic = np.where(own, item_c, rng.integers(0, n_clusters, n_items))
        titles = [f"{STYLES[rng.integers(0, len(STYLES))]} {TOPICS[t]} {i}" for i, t in enumerate(topic)]
    pd.DataFrame({"item_id": np.arange(n_items), "title": titles}).to_csv(root / "items.csv", index=False)
    return len(log)


def synthetic_problem(n_items: int, n_users: int, seed: int = 0):
    """(data, its seeded protocol split, that split's fit data, unit random text vectors [items, 384]):
    the large-catalog timing benchmarks' problem, where random vectors stand in for the encoder
    (its cost is not what they measure)."""
    import tempfile

    from metarec.data.protocol import fit_data
    from metarec.data import SplitConfig, load_dataset, make_split

    with tempfile.TemporaryDirectory() as tmp:
        synthetic_log(Path(tmp), n_items, n_users, seed)
        data = load_dataset("csv", Path(tmp))
    split = make_split(data, SplitConfig(seed=seed))
    text = np.random.default_rng(seed).standard_normal((data.n_items, 384)).astype(np.float32)
    return data, split, fit_data(split), text / np.linalg.norm(text, axis=1, keepdims=True)


def large_log(n_items: int, n_users: int, seed: int = 0, *, history_scale: float = 4.0, history_cap: int = 200,
              n_clusters: int = 200, affinity: float = 0.7, dim: int = 384):
    """(interactions frame user_id, item_id, timestamp; unit text vectors float32 [items, dim]; each
    item's cluster) of a
    seeded implicit log drawn without a Python loop per user (millions of users in seconds): power-law
    popularity, each user drawn to 2 of `n_clusters` clusters (a pick comes from them with
    probability `affinity`, else from the whole catalog by popularity), history lengths
    min(3 + pareto(1.2) * scale, cap), and text vectors near their cluster's centre (cosine about
    0.5 within a cluster), standing in for an encoder's on catalogs too large to encode here."""
    rng = np.random.default_rng(seed)
    item_c = rng.integers(0, n_clusters, n_items)
    pop = np.minimum(rng.zipf(1.3, n_items).astype(float), 5000.0)
    lens = np.minimum(3 + rng.pareto(1.2, n_users) * history_scale, history_cap).astype(np.int64)
    user = np.repeat(np.arange(n_users), lens)
    total = len(user)
    cum = np.cumsum(pop)
    item = np.minimum(np.searchsorted(cum, rng.random(total) * cum[-1], side="right"), n_items - 1)
    # cluster picks: the catalog sorted by cluster, a popularity-weighted draw inside the cluster
    order = np.argsort(item_c, kind="stable")
    ccum = np.cumsum(pop[order])
    ends = np.searchsorted(item_c[order], np.arange(n_clusters), side="right")
    starts = np.concatenate([[0], ends[:-1]])
    before = np.where(starts > 0, ccum[np.maximum(starts - 1, 0)], 0.0)
    size = np.where(ends > starts, ccum[np.maximum(ends - 1, 0)] - before, 0.0)
    liked = rng.integers(0, n_clusters, (n_users, 2))
    c = liked[user, rng.integers(0, 2, total)]
    pick = rng.random(total) < affinity
    pick &= size[c] > 0
    at = np.searchsorted(ccum, before[c[pick]] + rng.random(pick.sum()) * size[c[pick]], side="right")
    item[pick] = order[np.minimum(at, n_items - 1)]
    t = rng.uniform(0, 1e7, n_users)[user] + rng.exponential(2e6, total)
    log = pd.DataFrame({"user_id": user, "item_id": item, "timestamp": t.astype(np.int64)})
    centres = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    text = centres[item_c] + rng.standard_normal((n_items, dim)).astype(np.float32)
    return log, text / np.linalg.norm(text, axis=1, keepdims=True), item_c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--users", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--implicit", action="store_true")
    ap.add_argument("--affinity", type=float, default=20.0, help="pull of a user's own clusters (low: popularity rules)")
    ap.add_argument("--history-scale", type=float, default=20.0)
    ap.add_argument("--history-shape", type=float, default=1.2)
    ap.add_argument("--history-cap", type=int, default=800)
    ap.add_argument("--topic-titles", type=float, default=None,
                    help="probability that a title names its cluster's topic in plain English (a text-rich catalog)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    root = Path(a.out)
    root.mkdir(parents=True, exist_ok=True)
    n = synthetic_log(root, a.items, a.users, a.seed, implicit=a.implicit, affinity=a.affinity,
                      history_scale=a.history_scale, history_shape=a.history_shape, history_cap=a.history_cap,
                      topic_titles=a.topic_titles)
    print(f"wrote {root / 'interactions.csv'} ({n} interactions) and {root / 'items.csv'}")


if __name__ == "__main__":
    main()
