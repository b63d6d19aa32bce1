"""Inference: load a meta-trained model, adapt to a new user's few interactions, rank the catalog.

    rec = MetaRecommender.load("model_dir")
    user = rec.adapt([50, 181, 258], ratings=[5, 4, 5], profile="A 24-year-old male technician.")
    ids, scores = user.recommend(k=10)          # support items never recommended
    user = user.update([(300, 4.0)])            # keep adapting as the user interacts

With K = 0 (no interactions) the meta-learned initialisation scores from the profile alone.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from metarec.core.config import from_dict, save_json, to_dict
from metarec.core.device import resolve_device
from metarec.core.digest import array_digest
from metarec.core.errors import CheckpointError, ConfigError, UnknownItemError
from metarec.core.threads import numpy_single_thread
from metarec.meta import checkpoint as ckpt
from metarec.meta.learners import MetaConfig, make_learner
from metarec.meta.retrieve import Retriever, score_items
from metarec.meta.tasks import catalog_inputs, inner_inputs, support_weights
from metarec.meta.user import AdaptedUser, plain_id
from metarec.models.features import ItemSide
from metarec.models.retrieval import RetrievalConfig
from metarec.models.scoring import ScoringConfig, ScoringModel

FORMAT_VERSION = 3  # 3: knn feature = sum / sqrt(K); 2: n_inner_neg per support item (1: per user)


@dataclass(frozen=True, kw_only=True)
class RecommenderInfo:
    """What a checkpoint says about its data and encoder (all JSON)."""

    dataset: str = ""
    rating_min: float = 0.0  # the training log's lowest rating (0 in checkpoints written before it was kept)
    rating_max: float = 5.0
    explicit: bool = True
    n_inner_neg: int = 20  # inner-loop negatives per support item
    encoder: dict | None = None  # EncoderConfig as a dict (None = the default)
    adapters: dict | None = None  # AdapterConfig the catalog's vectors were tuned with (None = frozen encoder)
    template: dict | None = None


class MetaRecommender:
    """A meta-trained ScoringModel plus the catalog side-information it scores with.

    `device` ("cpu", "cuda", "auto", ...) is where the network and the catalog's text vectors live
    and where adaptation and scoring run (the model is moved there); the side features are computed
    with numpy on the host either way, and scores come back as numpy arrays."""

    BLOCK_ROWS = 32_768  # (user, item) rows per CPU forward in full-catalog scoring; 0 = no blocks

    def __init__(self, model: ScoringModel, meta: MetaConfig, side: ItemSide, info: RecommenderInfo,
                 item_ids: list | None = None, titles: list[str] | None = None, seed: int = 0,
                 learner=None, device: str = "cpu") -> None:
        self.model, self.meta, self.side, self.info, self.seed = model, meta, side, info, seed
        self.device = resolve_device(device)
        self.model.to(self.device)
        self.item_text = torch.from_numpy(side.text).to(self.device)
        self.learner = learner or self.learner_for(meta)
        self.item_ids = list(item_ids) if item_ids is not None else list(range(side.n_items))
        self.titles = titles
        self._index = {i: n for n, i in enumerate(self.item_ids)}
        self.warm = side.counts > 0
        self._encoder = None
        self._profile_lru: OrderedDict | None = None  # see keep_profiles_in_memory
        self.path: Path | None = None  # the folder it was loaded from, if any
        self._cache: dict | None = None  # see input_cache
        self.cache_hits = 0
        self.retriever = Retriever(self, RetrievalConfig())  # see set_retrieval
        self._proj_key: tuple | None = None  # see scoring_weights
        self._proj = None

    def learner_for(self, meta: MetaConfig):
        """A functional-backend learner over this model for the inner loop `meta` (how it scores)."""
        return make_learner(self.model, MetaConfig(**{**to_dict(meta), "backend": "functional"}), self.item_text)

    def set_inner_loop(self, meta: MetaConfig) -> None:
        """Score with another inner loop (steps, learning rate...): `meta` and a learner for it. A
        MetaSGD model's learned rates are not carried over (the new learner starts its own)."""
        self.meta, self.learner = meta, self.learner_for(meta)

    def set_retrieval(self, cfg: RetrievalConfig) -> None:
        """Score through candidates (models.retrieval) as `cfg` says: by default on catalogs of
        100,000 items or more, where each user's scores are exact at its candidates and -inf elsewhere."""
        self.retriever = Retriever(self, cfg)

    # -- batch scoring (the benchmark path) ---------------------------------------------------
    def score_batch(self, support: np.ndarray, ratings: np.ndarray | None = None,
                    profiles: np.ndarray | None = None, chunk: int | None = None) -> np.ndarray:
        """float32 [U, I] scores for U users given support item indices [U, K] (K may be 0)."""
        support = np.asarray(support, np.int64)
        u_n, k = support.shape
        n_i = self.side.n_items
        if ratings is None:
            ratings = np.full((u_n, k), np.nan, np.float32)
        if profiles is None:
            profiles = np.zeros((u_n, self.side.text.shape[1]), np.float32)
        chunk = chunk or self.users_per_forward()
        out = np.empty((u_n, n_i), np.float32)
        weights = self.scoring_weights()
        with numpy_single_thread():
            for start in range(0, u_n, chunk):
                sl = slice(start, start + chunk)
                self._score_chunk(support[sl], ratings[sl], profiles[sl], weights, out=out[sl])
        return out

    def users_per_forward(self) -> int:
        """Users adapted and scored together by default: about 1M (user, item) rows, at most 256."""
        return max(1, min(256, 1_000_000 // max(self.side.n_items, 1)))

    def scoring_weights(self) -> tuple[dict, torch.Tensor | None]:
        """(the model's parameters, the catalog's shared text projection or None): what every chunk of
        a scoring pass starts from, computed once per pass."""
        params = self.model.params()
        # kept while the weights stay as they are: a server scores many users with the same weights
        key = (self.weights_version(), id(self.learner))
        if key != self._proj_key:
            with torch.no_grad():
                self._proj = self.learner.shared_projection(params)
            self._proj_key = key
        return params, self._proj

    def weights_version(self) -> tuple:
        """Changes whenever the network's weights or the catalog's text vectors do (a tensor's
        in-place version counter moves with every optimiser step, load or re-encoding): the key of
        what is computed from them once and reused (the shared projection, the candidate index)."""
        text = self.learner.item_text
        return (*((p.data_ptr(), p._version) for p in self.model.parameters()), text.data_ptr(), text._version)

    def _score_chunk(self, support, ratings, profiles, weights: tuple, out: np.ndarray | None = None) -> np.ndarray:
        """float32 [U, I] for U users with the same K; `weights` from `scoring_weights`; `out`: a
        float32 [U, I] array to write the scores into. Each row depends on that user's inputs only
        (see `_negatives`), so a user scores the same alone, in any batch and at any position.
        Through candidates (`set_retrieval`), one user at a time: exact at each user's candidates,
        -inf elsewhere."""
        if self.retriever.active:
            return self._score_candidates(support, ratings, profiles, weights, out)
        full, params = self.adapted(support, ratings, profiles, weights)
        proj = weights[1]
        n_i = self.side.n_items
        out = np.empty((len(support), n_i), np.float32) if out is None else out
        step = self.catalog_block(len(support))
        with torch.no_grad():
            for s in range(0, n_i, step):
                sl = slice(s, s + step)
                out[:, sl] = self.model.score_fn(params, self.item_text, full.columns(sl), proj).float().cpu().numpy()
        return out

    def _score_candidates(self, support, ratings, profiles, weights: tuple, out: np.ndarray | None) -> np.ndarray:
        out = np.empty((len(support), self.side.n_items), np.float32) if out is None else out
        for r in range(len(support)):
            cols, s = self.retriever.score_user(support[r], ratings[r], profiles[r], weights)
            out[r] = -np.inf
            out[r, cols] = s
        return out

    def score_items(self, support, ratings, profiles, items) -> np.ndarray:
        """float32 [U, n]: exact scores of catalog indices `items` for U users (support [U, K], ratings,
        profiles as in `score_batch`), at the cost of those items, on any catalog size."""
        return score_items(self, np.asarray(support, np.int64), np.asarray(ratings, np.float32),
                           np.asarray(profiles, np.float32), items)

    def adapted(self, support, ratings, profiles, weights: tuple | None = None) -> tuple:
        """(the catalog's inputs, the parameters after each user's inner loop) for U users with the
        same K; `weights` from `scoring_weights` (computed here when not given)."""
        full, inner = self._inputs(support, ratings, profiles)
        params, proj = weights or self.scoring_weights()
        fast = {}
        if inner is not None:
            # the step count is this recommender's, not the learner's: a pooled model's trainer
            # has no inner loop, but it is still fine-tuned here with the same budget
            fast = self.learner.adapt(*inner, steps=self.meta.inner_steps, create_graph=False, proj=proj)
        return full, {**params, **fast}

    def catalog_block(self, n_users: int) -> int:
        """Items per block when scoring `n_users` against the whole catalog. On a CPU the network's
        [users x items x hidden] block is memory-bound once it outgrows the cache: blocks of about
        `BLOCK_ROWS` (user, item) rows keep it there, and each item's score is the same arithmetic
        either way (experiments/speed-probes/catalog_blocks.md). A GPU takes the catalog at once."""
        if self.device.type != "cpu" or not self.BLOCK_ROWS:
            return self.side.n_items
        return max(1, self.BLOCK_ROWS // max(n_users, 1))

    def _inputs(self, support, ratings, profiles):
        """(the catalog's inputs, the inner loop's (inputs, labels, mask) or None) for these users, on
        the device: everything scoring needs that the weights do not change, from the cache when
        `input_cache` is on and holds them."""
        key = None
        if self._cache is not None:
            key = array_digest(support, ratings, profiles,
                               salt=repr((self.meta.inner_steps > 0, self.meta.loss)))
            if key in self._cache:
                self.cache_hits += 1
                return self._cache[key]
        full, inner = self.build_inputs(self.side, support, ratings, profiles, self.inner_negatives(support))
        if key is not None:
            size = full.feats.numel() * full.feats.element_size() + (
                sum(t.numel() * t.element_size() for t in (inner[0].feats, inner[1], inner[2])) if inner else 0)
            if size <= self._cache_left:  # full: later users are built each time, as without the cache
                self._cache[key] = (full, inner)
                self._cache_left -= size
        return full, inner

    def build_inputs(self, side: ItemSide, support, ratings, profiles, negatives=None, cols=None) -> tuple:
        """(catalog inputs, inner-loop (inputs, labels, mask) or None) on the device, for users with
        `support` [U, K] and inner-loop `negatives` [U, K, M] (None: no inner loop) as indices of
        `side`: this catalog's, or its restriction to the sorted catalog indices `cols`
        (ItemSide.restrict), whose inputs then name items by their catalog index again."""
        u_n, k = support.shape
        mask = np.ones((u_n, k), bool)
        sf = side.support_features(support, mask, features=self.model.cfg.features)
        warm = side.counts > 0
        w = support_weights(ratings, mask, self.info.rating_max, self.info.explicit)
        cfg = self.model.cfg
        dtype, dev = self.item_text.dtype, self.item_text.device
        full = catalog_inputs(cfg, sf, warm, support, w, profiles)
        inner = None
        if negatives is not None:
            keep = np.broadcast_to(warm, (u_n, side.n_items))
            x, labels, lmask = inner_inputs(side, cfg, negatives, np.ones(negatives.shape, bool), sf, keep, support, w,
                                            profiles, ratings=ratings if self.meta.loss == "mse" else None)
            as_t = lambda a: torch.tensor(a, dtype=dtype, device=dev)  # noqa: E731
            inner = (x, as_t(labels), as_t(lmask))
        if cols is not None:
            c = torch.from_numpy(np.asarray(cols, np.int64))
            full = full.relabel(c)
            inner = None if inner is None else (inner[0].relabel(c), *inner[1:])
        full = full.to(dtype=dtype, device=dev)
        return full, None if inner is None else (inner[0].to(dtype=dtype, device=dev), *inner[1:])

    def clear_input_cache(self) -> None:
        """Forget the inputs `input_cache` kept (the catalog's text changed under them)."""
        if self._cache is not None:
            self._cache.clear()
            self._cache_left = self._cache_max

    @contextmanager
    def input_cache(self, max_bytes: int):
        """Within it, the inputs built for a batch of users (their catalog features, inner-loop
        candidates and negatives) are kept, up to about `max_bytes`, and reused when the same users
        are scored again. A validator scores the same users dozens of times while only the weights
        change (the start search, early stopping), and those inputs are a third of each scoring on
        large catalogs. The scores are the same either way; the cache is dropped on exit."""
        self._cache, self._cache_left, self._cache_max, self.cache_hits = {}, max_bytes, max_bytes, 0
        try:
            yield self
        finally:
            self._cache = None

    def inner_negatives(self, support: np.ndarray) -> np.ndarray | None:
        """int64 [U, K, M] the inner loop's negatives for users with `support` [U, K] (M per support
        item, as in training); None when there is no inner loop (K = 0 or no inner steps)."""
        u_n, k = support.shape
        if not k or not self.meta.inner_steps:
            return None
        m = self.info.n_inner_neg
        return self._negatives(support, k * m).reshape(u_n, k, m)

    def _negatives(self, support: np.ndarray, n: int) -> np.ndarray:
        """Per-user deterministic negatives for the inner loop (never a support item), drawn from
        (seed, K, the user's support items in order): a function of the user's own inputs, not of
        their row in a batch, so `adapt`, `recommend_many` and the benchmark give a user the same
        scores, while users with different support sets get independent draws."""
        n_i = self.side.n_items
        out = np.empty((len(support), n), np.int64)
        for r, row in enumerate(support):
            rng = np.random.default_rng([self.seed, len(row), *row.tolist()])
            cand = rng.integers(0, n_i, size=n * 2)
            cand = cand[~np.isin(cand, row)]
            if len(cand) < n:
                cand = np.resize(cand if len(cand) else np.setdiff1d(np.arange(n_i), row), n)
            out[r] = cand[:n]
        return out

    # -- single user (the library path) --------------------------------------------------------
    def index_of(self, ids) -> np.ndarray:
        missing = [i for i in ids if i not in self._index and str(i) not in self._str_index]
        if missing:
            raise UnknownItemError(f"item id(s) not in this model's catalog: {missing[:10]}")
        return np.array([self._index.get(i, self._str_index.get(str(i))) for i in ids], np.int64)

    @property
    def _str_index(self) -> dict:
        if not hasattr(self, "_si"):
            self._si = {str(i): n for n, i in enumerate(self.item_ids)}
        return self._si

    def encode_profile(self, profile: str | None) -> np.ndarray:
        """float32 [D]: the profile text's vector (zeros for no profile)."""
        return self.encode_profiles([profile])[0]

    def encode_profiles(self, profiles: list[str | None], show_progress: bool = False) -> np.ndarray:
        """float32 [N, D]: one vector per profile text, zeros where there is none; the encoder is
        loaded on first use. Vectors are cached on disk as the training profiles were, or, after
        `keep_profiles_in_memory`, in a bounded in-memory LRU only."""
        out = np.zeros((len(profiles), self.side.text.shape[1]), np.float32)
        rows = [n for n, p in enumerate(profiles) if p]
        if not rows:
            return out
        from metarec.encoders import EncoderConfig, TemplateConfig, TextEncoder, encode_texts

        if self._encoder is None:
            self._encoder = TextEncoder(from_dict(EncoderConfig, self.info.encoder or {}))
        texts = [profiles[n] for n in rows]
        lru = self._profile_lru
        if lru is None:
            # cached under the training template's namespace, as the training profiles were
            template = from_dict(TemplateConfig, self.info.template or {})
            out[rows], _ = encode_texts(texts, self._encoder, namespace=template.fingerprint(),
                                        show_progress=show_progress)
            return out
        misses = list(dict.fromkeys(t for t in texts if t not in lru))
        if misses:
            vecs, _ = encode_texts(misses, self._encoder, use_cache=False, show_progress=show_progress)
            lru.update(zip(misses, vecs))
        for n, t in zip(rows, texts):
            out[n] = lru[t]
            lru.move_to_end(t)
        while len(lru) > self._profile_lru_size:
            lru.popitem(last=False)
        return out

    def keep_profiles_in_memory(self, max_texts: int) -> None:
        """Keep the vectors of the last `max_texts` profile texts in memory and write none to disk:
        for a server, which meets an unbounded stream of distinct texts."""
        if max_texts < 1:
            raise ConfigError(f"max_texts must be >= 1, got {max_texts}")
        self._profile_lru, self._profile_lru_size = OrderedDict(), int(max_texts)

    def adapt(self, support_items, ratings=None, profile: str | None = None) -> "AdaptedUser":
        """Adapt to one user from their interactions (original item ids) and optional profile text."""
        return AdaptedUser(self, *self.user_inputs(support_items, ratings, profile), profile)

    def user_inputs(self, support_items, ratings=None, profile: str | None = None) -> tuple:
        """(catalog indices int64 [K], ratings float32 [K], profile vector float32 [D]) of one user,
        checked: unknown items, an item twice, a rating off the scale or a ratings list of another
        length are errors."""
        ids = list(support_items)
        # checked as float64, cast after: a huge rating is refused, not rounded to inf on the way
        r = np.full(len(ids), np.nan) if ratings is None else np.asarray(ratings, np.float64)
        if len(r) != len(ids):
            raise ConfigError(f"{len(r)} ratings for {len(ids)} support items")
        idx = self.index_of(ids)
        self.check_support(idx, r)
        return idx, r.astype(np.float32), self.encode_profile(profile)

    def recommend_many(self, interactions, k: int = 10, *, profiles=None, chunk: int | None = None):
        """The top k for many users at once, as rows user_id, rank, item_id, title, score: each user's
        list is `adapt(...).ranked(k)`'s, computed in batches. See `metarec.meta.batch.recommend_many`."""
        from metarec.meta.batch import recommend_many

        return recommend_many(self, interactions, k, profiles=profiles, chunk=chunk)

    def check_support(self, idx: np.ndarray, ratings: np.ndarray) -> None:
        """Refuse what would silently skew the user vector: an item twice (it would count double)
        or a rating outside this model's scale [rating_min, rating_max] (NaN = unknown is fine)."""
        uniq, counts = np.unique(idx, return_counts=True)
        if (counts > 1).any():
            raise ConfigError(f"item id(s) given more than once in the support set: "
                              f"{[self.item_ids[i] for i in uniq[counts > 1]][:10]}")
        bad = self.off_scale(ratings)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise ConfigError(f"rating {float(ratings[j]):g} for item {self.item_ids[idx[j]]!r} is outside this "
                              f"model's {self.rating_scale}")

    @property
    def rating_scale(self) -> str:
        """"rating scale [1, 5]": the scale ratings must be on, for error messages."""
        return f"rating scale [{self.info.rating_min:g}, {self.info.rating_max:g}]"

    def off_scale(self, ratings: np.ndarray) -> np.ndarray:
        """bool, per rating: not a finite number on this model's scale [rating_min, rating_max]. NaN
        (unknown) never is; an implicit-feedback model takes any finite number."""
        r = np.asarray(ratings, np.float64)
        if not self.info.explicit:
            return np.isinf(r)
        return ~np.isnan(r) & ~((r >= self.info.rating_min) & (r <= self.info.rating_max))

    # -- persistence -----------------------------------------------------------------------------
    def save(self, out: str | Path, state: dict[str, torch.Tensor] | None = None) -> None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        cooc = self.side.cooc.tocsr()
        side = {
            "text": torch.from_numpy(self.side.text), "counts": torch.from_numpy(self.side.counts),
            "cooc.indptr": torch.from_numpy(cooc.indptr.astype(np.int64)),
            # item indices fit in int32 (the catalog is far below 2^31 items): half the bytes of int64;
            # checkpoints written with int64 indices load the same
            "cooc.indices": torch.from_numpy(cooc.indices.astype(np.int32 if cooc.shape[1] < 2 ** 31 else np.int64)),
            "cooc.data": torch.from_numpy(cooc.data.astype(np.float32)),
        }
        if self.side.recent is not None:
            side["recent"] = torch.from_numpy(self.side.recent)
        if self.side.ease_p is not None:
            side["ease_p"] = torch.from_numpy(self.side.ease_p)
            side["ease_scale"] = torch.tensor(self.side.ease_scale, dtype=torch.float64)
            if self.side.ease_lambda is not None:
                side["ease_lambda"] = torch.tensor(self.side.ease_lambda, dtype=torch.float64)
        ckpt.save_tensors(out / "side.safetensors", side)
        if state is None:
            state = {f"model.{k}": v for k, v in self.model.state_dict().items()}
            if getattr(self.learner, "lrs", None) is not None:
                state.update({f"lrs.{n}": p for n, p in self.learner.lrs.as_dict().items()})
        ckpt.save_tensors(out / "model.safetensors", state)
        save_json(out / "items.json", {"item_ids": [plain_id(i) for i in self.item_ids], "titles": self.titles})
        save_json(out / "config.json", {
            "format_version": FORMAT_VERSION, "head": to_dict(self.model.cfg), "meta": to_dict(self.meta),
            "info": to_dict(self.info), "seed": self.seed, "text_dim": int(self.side.text.shape[1]),
            "n_items": int(self.side.n_items),
        })

    @classmethod
    def load(cls, path: str | Path, device: str = "cpu") -> "MetaRecommender":
        """A recommender from a folder written by `save` (or `metarec meta-train`), on `device`."""
        path = Path(path)
        if not path.is_dir():
            raise CheckpointError(f"{path}: no such model folder (one written by `metarec meta-train --out` "
                                  "or `MetaRecommender.save`)")
        cfg = ckpt.load_json(path / "config.json")
        if cfg.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(f"{path}: format_version {cfg.get('format_version')} != {FORMAT_VERSION}")
        ckpt.require(cfg, path / "config.json", "head", "meta", "info", "text_dim", "n_items")
        # a model saved before K conditioning existed has one start for every K
        head = from_dict(ScoringConfig, {"k_anchors": None, "k_inner_lr": False, **cfg["head"]}, where="config.head")
        meta = from_dict(MetaConfig, cfg["meta"], where="config.meta")
        info = from_dict(RecommenderInfo, cfg["info"], where="config.info")
        t = ckpt.require(ckpt.load_tensors(path / "side.safetensors"), path / "side.safetensors",
                         "text", "counts", "cooc.data", "cooc.indices", "cooc.indptr")
        n = int(cfg["n_items"])
        if t["text"].shape[0] != n or t["counts"].shape[0] != n or t["cooc.indptr"].shape[0] != n + 1:
            raise CheckpointError(f"{path}/side.safetensors does not fit config.json: its text, counts and "
                                  f"co-occurrence rows are {t['text'].shape[0]}, {t['counts'].shape[0]} and "
                                  f"{t['cooc.indptr'].shape[0] - 1} items, config.json says {n}")
        cooc = sp.csr_matrix((t["cooc.data"].numpy(), t["cooc.indices"].numpy(), t["cooc.indptr"].numpy()),
                             shape=(n, n))
        side = ItemSide(text=t["text"].numpy(), cooc=cooc, counts=t["counts"].numpy(),
                        recent=t["recent"].numpy() if "recent" in t else None,
                        ease_p=t["ease_p"].numpy() if "ease_p" in t else None,
                        ease_scale=float(t["ease_scale"]) if "ease_scale" in t else 1.0,
                        ease_lambda=float(t["ease_lambda"]) if "ease_lambda" in t else None)
        model = ScoringModel(head, int(cfg["text_dim"]), n)
        state = ckpt.load_tensors(path / "model.safetensors")
        try:
            model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
        except RuntimeError as e:
            raise CheckpointError(f"{path}/model.safetensors does not fit config.json: {e}") from e
        items = ckpt.require(ckpt.load_json(path / "items.json"), path / "items.json", "item_ids")
        if len(items["item_ids"]) != n:
            raise CheckpointError(f"{path}/items.json lists {len(items['item_ids'])} item ids, config.json says {n}")
        rec = cls(model, meta, side, info, items["item_ids"], items.get("titles"), seed=int(cfg.get("seed", 0)),
                  device=device)
        rec.path = path
        if rec.learner.lrs is not None:
            ckpt.require(state, path / "model.safetensors", *(f"lrs.{name}" for name in rec.learner.lrs.as_dict()))
            with torch.no_grad():
                for name, p in rec.learner.lrs.as_dict().items():
                    p.copy_(state[f"lrs.{name}"])
        return rec
