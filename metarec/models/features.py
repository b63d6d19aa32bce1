"""Collaborative and content side-information for scoring: what the head combines with text.

`ItemSide` holds everything about the catalog that is fixed after fitting: frozen text embeddings,
pre-T item-item co-occurrence counts (each item's strongest COOC_BUDGET // I of them when the whole
matrix would hold more than COOC_BUDGET entries; see `cooccurrence`), popularity.
`ItemSide.support_features` turns a batch of support sets into per-(user, item) scalar features over
the whole catalog:

  knn      sum over support items s of cosine(s, i) on the pre-T matrix, divided by sqrt(K):
           item-kNN's ranking, on a scale that grows with the evidence (the mean's noise falls as
           1/sqrt(K), so one fixed weight against popularity suits K = 1 and K = 10 alike; with
           the plain mean, a mix chosen at K = 5 over-trusts a single support item)
  content  cosine(mean support text embedding, item text embedding)
  pop      standardised log(1 + pre-T count)
  new      1 for items with no pre-T interaction
  trend    standardised log(1 + count in the latest pre-T window): what was being consumed just
           before the cut, which is what users arriving after it pick up (all-time popularity
           lags behind; 0 for every item when the data has no timestamps)
  ease     (last column, present when asked for) sum over support items s of EASE's item-item weight
           B[s, i] (negative weights clipped to 0), divided by sqrt(K) like knn and scaled so that
           its 99th percentile matches the cosines': a regression-based alternative to cosine kNN
           (`experiments/collab-features/`: much better on a clustered implicit log, worse
           on ML-100K, so metarec's start search weighs both). Needs `ItemSide.build(...,
           ease_lambda=...)`, a dense [I, I] inverse; metarec leaves it out above 10,000 items.

A model that reads only some features (`features=`) skips the costly knn and content work; their
columns are then zeros.

`leave_one_out` gives the same features with one support item left out, for the inner loop: each
support item is scored from the others, so an item's similarity to itself never leaks into its own
label. For warm users' training tasks, `exclude` removes that user's own row from the counts first,
so the features look exactly like those a new user (absent from the matrix) gets at test time
(`exclude_recent` does the same for the trend window's counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import scipy.sparse as sp

from metarec.models.ease import ease_inverse, ease_weights

FEATURES = ("knn", "content", "pop", "new", "trend")  # the default set, in column order
OPTIONAL = ("ease",)  # columns after FEATURES, computed only when asked for (it needs ItemSide.ease_p)
ALL_FEATURES = FEATURES + OPTIONAL


@dataclass(eq=False)
class SupportFeatures:
    """Per-batch intermediate arrays from which full and leave-one-out features are read."""

    full: np.ndarray  # float32 [U, I, F]
    cos: sp.csr_matrix  # float64 [U * K, I]: row u * K + j = cosine of support slot j to every item (empty if masked)
    cos_sum: np.ndarray  # float64 [U, I] the sum over each user's slots (knn before its sqrt(K) scaling)
    text_sum: np.ndarray  # float64 [U, E] sum of support text embeddings
    support_text: np.ndarray  # float64 [U, K, E]
    mask: np.ndarray  # bool [U, K]
    features: tuple[str, ...] = FEATURES  # the ones computed; the others' columns are zeros
    ease_rows: np.ndarray | None = None  # float64 [U, K, I] scaled B+[s_j, i] per slot (with "ease")
    ease_sum: np.ndarray | None = None  # float64 [U, I] their sum over the slots
    cos_keys: np.ndarray | None = None  # int64 [nnz] row * I + item of each entry stored in `cos`, ascending


@dataclass(eq=False)
class ItemSide:
    """Fixed catalog side-information (numpy; converted to tensors by the model)."""

    text: np.ndarray  # float32 [I, E], L2-normalised frozen text embeddings
    cooc: sp.csr_matrix  # float32 [I, I] pre-T co-occurrence counts X^T X (diagonal = counts)
    counts: np.ndarray  # float64 [I] pre-T interactions per item
    recent: np.ndarray | None = None  # float64 [I] interactions in the latest pre-T window (None: no trend)
    ease_p: np.ndarray | None = None  # float64 [I, I] (X^T X + lambda I)^-1, for the ease feature
    ease_scale: float = 1.0
    ease_lambda: float | None = None  # the lambda of ease_p (None in checkpoints written before it was kept)
    # {"counts" | "recent": (mean, sd) of log(1 + it)} over the whole catalog, for a side that is a
    # `restrict`ion of it (pop and trend keep the catalog's scale); None: from this side's own arrays
    stats: dict | None = None

    @classmethod
    def build(cls, text: np.ndarray, matrix: sp.csr_matrix, recent: sp.csr_matrix | None = None,
              ease_lambda: float | None = None, ease_p: np.ndarray | None = None) -> "ItemSide":
        """`matrix`: pre-T interactions [users, I]; `recent`: its latest rows in time (FitData.recent);
        `ease_lambda`: EASE's ridge, to enable the ease feature (None = no ease feature); `ease_p`:
        (X^T X + ease_lambda I)^-1 of this matrix when already computed (the EASE baseline's, with
        keep_inverse), so the dense inverse is not done twice."""
        x = _binary(matrix)
        counts = np.asarray(x.sum(axis=0)).ravel().astype(np.float64)
        cooc = cooccurrence(x, counts, COOC_BUDGET)  # the module value at call time (tests lower it)
        rc = None if recent is None else np.asarray(_binary(recent).sum(axis=0)).ravel().astype(np.float64)
        t = np.asarray(text, np.float32)
        t = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
        side = cls(text=t, cooc=cooc, counts=counts, recent=rc)
        if ease_lambda is not None:
            if ease_p is None:
                ease_p = ease_inverse(cooc.toarray(), ease_lambda)  # float64 copy made there
            elif ease_p.shape != (side.n_items, side.n_items):
                raise ValueError(f"ease_p is {ease_p.shape}, the catalog has {side.n_items} items")
            side.ease_p, side.ease_lambda = np.asarray(ease_p, np.float64), float(ease_lambda)
            side.ease_scale = _ease_scale(side.ease_p, cooc, counts)
        return side

    @property
    def n_items(self) -> int:
        return self.text.shape[0]

    @property
    def text64_t(self) -> np.ndarray:
        """float64 [E, I] copy of `text` transposed, made once (every content feature reads it)."""
        if getattr(self, "_text64_t", None) is None:
            self._text64_t = self.text.T.astype(np.float64)
        return self._text64_t

    def set_text(self, text: np.ndarray) -> None:
        """Replace the catalog's unit text vectors in place (float32 [I, E], e.g. re-encoded through
        tuned adapters): arrays that share `text`'s memory see them, and `text64_t` is rebuilt."""
        self.text[:] = text
        self._text64_t = None

    def pop_stats(self, which: str = "counts") -> tuple[float, float]:
        """Mean and sd of log(1 + counts) over the catalog: the all-time `counts` or the `recent` window's."""
        if self.stats is not None:
            return self.stats[which]
        arr = getattr(self, which)
        cache = self.__dict__.setdefault("_stats_cache", {})  # catalog-wide: computed once per array
        if cache.get(which, (None,))[0] is not arr:
            lp = np.log1p(arr)
            cache[which] = (arr, (float(lp.mean()), float(lp.std() + 1e-6)))
        return cache[which][1]

    def restrict(self, cols: np.ndarray, cooc_rows: np.ndarray | None = None) -> "ItemSide":
        """The side of the items `cols` (sorted, unique catalog indices) alone: their text, counts and
        the co-occurrences among them, with popularity and trend on the whole catalog's scale. Features
        of a support set inside `cols` are then the full catalog's at those items, computed at their
        cost only (candidate re-scoring on catalogs too large to score whole; models.retrieval).
        `cooc_rows`: keep only these items' co-occurrence rows (the support set's: the only rows
        `support_features` reads), the others empty."""
        cols = np.asarray(cols, np.int64)
        stats = {"counts": self.pop_stats("counts")}
        if self.recent is not None:
            stats["recent"] = self.pop_stats("recent")
        rows = cols if cooc_rows is None else np.asarray(cooc_rows, np.int64)
        part = self.cooc[rows]  # a few rows of the catalog's matrix, then their entries inside `cols`
        pos = np.minimum(np.searchsorted(cols, part.indices), len(cols) - 1)
        hit = cols[pos] == part.indices
        r = np.repeat(np.searchsorted(cols, rows), np.diff(part.indptr))
        cooc = sp.csr_matrix((part.data[hit], (r[hit], pos[hit])), shape=(len(cols), len(cols)), dtype=np.float32)
        sub = ItemSide(text=self.text[cols], cooc=cooc, counts=self.counts[cols],
                       recent=None if self.recent is None else self.recent[cols],
                       ease_p=None if self.ease_p is None else self.ease_p[np.ix_(cols, cols)],
                       ease_scale=self.ease_scale, ease_lambda=self.ease_lambda, stats=stats)
        sub.cooc.sort_indices()
        return sub

    def support_features(self, support: np.ndarray, mask: np.ndarray, exclude: sp.csr_matrix | None = None,
                         exclude_recent: sp.csr_matrix | None = None,
                         features: tuple[str, ...] = FEATURES) -> SupportFeatures:
        """Features of every catalog item for each support set (see module docstring).

        Args:
            support: int64 [U, K] item indices (padding entries anything, masked out).
            mask: bool [U, K] which support entries are real.
            exclude: CSR [U, I] binary rows to remove from the counts (the task's own user), or None.
            exclude_recent: the same users' rows of the trend window, removed from `recent`.
            features: the ones a model reads. knn and content, the costly ones (co-occurrence rows,
                a text product per user), are left as zeros when not listed; the rest always fill.
        """
        u_n, k = support.shape
        i_n = self.n_items
        # a task's counts are the catalog's minus its own row (`exclude`): each feature is the
        # catalog's, corrected only at the entries that row changes (x - 0 == x), never densely
        ex = None if exclude is None else _sorted_entries(exclude)
        keys = np.zeros(0, np.int64)
        if not k or "knn" not in features:
            cos, cos_sum = sp.csr_matrix((u_n * k, i_n)), np.zeros((u_n, i_n))
        else:
            # cosines on the stored co-occurrences only, kept sparse: row u * k + j of `rows` is
            # support slot j of user u (a dense [U, K, I] block would dominate on large catalogs)
            flat = support.ravel()
            rows = self.cooc[flat]
            rows.sum_duplicates()  # canonical (a no-op for a built side): `keys` below are then sorted
            r = rows.tocoo()  # the CSR's storage order, so values line up with rows.indices
            keys = r.row.astype(np.int64) * i_n + r.col  # (slot, item) of each stored entry, ascending
            data = r.data.astype(np.float64)
            user = r.row // k
            c_s, c_i = self.counts[flat], self.counts[r.col]  # per slot, per stored entry
            if ex is not None:
                # co-occurrence of (s, i) loses the row's weight where the row holds both s and i,
                # and each count loses the row's entry: found by searching the stored entries for
                # (slot, item) of every item in the slot's user's row
                e_row, e_col, e_val = ex
                e_s = _at(e_row * i_n + e_col, e_val, np.arange(u_n).repeat(k) * i_n + flat)  # row's weight on s
                slots = (e_row[None, :] * k + np.arange(k)[:, None]).ravel()  # every slot of each entry's user
                pos, hit = _find(keys, slots * i_n + np.tile(e_col, k))
                pos, slots, val = pos[hit], slots[hit], np.tile(e_val, k)[hit]
                data[pos] = data[pos] - e_s[slots] * val
                c_s = c_s - e_s
                c_i[pos] = c_i[pos] - val
            denom = np.sqrt(np.maximum(c_s[r.row], 0) * np.maximum(c_i, 0))
            # padded slots get exact zeros (what multiplying by the mask gave, without a second copy)
            denom[~mask.ravel()[r.row]] = 0.0
            vals = np.divide(data, denom, out=np.zeros_like(data), where=denom > 0)
            cos = sp.csr_matrix((vals, rows.indices, rows.indptr), shape=(u_n * k, i_n))
            # summed in slot order per (user, item), as a dense sum over the slot axis would; float64
            # even when nothing is stored (support items never seen before T), where numpy's bincount
            # ignores the weights and returns int64
            cos_sum = np.bincount(user * i_n + r.col, weights=vals, minlength=u_n * i_n).astype(
                np.float64, copy=False).reshape(u_n, i_n)
        n_sup = mask.sum(axis=1).astype(np.float64)
        knn = cos_sum / np.sqrt(np.maximum(n_sup, 1.0))[:, None]
        st = self.text[support].astype(np.float64) * mask[..., None]
        text_sum = st.sum(axis=1)
        content = _cos_rows(text_sum, self.text64_t) if "content" in features else np.zeros((u_n, i_n))
        # pop, new and trend: functions of the catalog's counts, for every user alike; a task's own
        # row changes them only at its entries, corrected after the fill: (column, function, counts, row)
        pop, trend = partial(self._log_z, which="counts"), partial(self._log_z, which="recent")
        own = [(FEATURES.index("pop"), pop, self.counts, exclude),
               (FEATURES.index("new"), _is_new, self.counts, exclude)]
        if self.recent is not None:
            own.append((FEATURES.index("trend"), trend, self.recent, exclude_recent))
        columns = [knn, content, pop(self.counts), _is_new(self.counts),
                   0.0 if self.recent is None else trend(self.recent)]
        ease_rows = ease_sum = None
        if "ease" in features:
            if self.ease_p is None:
                raise ValueError("the ease feature needs ItemSide.build(..., ease_lambda=...)")
            ease_rows = self._ease_rows(support, mask, exclude)
            ease_sum = ease_rows.sum(axis=1)
            columns.append(ease_sum / np.sqrt(np.maximum(n_sup, 1.0))[:, None])
        full = np.empty((u_n, i_n, len(columns)), np.float32)  # filled column by column: no float64 stack
        for j, f in enumerate(columns):
            full[..., j] = f
        for j, f, counts, rows_out in own:
            if rows_out is not None:  # f(counts - row) at the row's entries; elsewhere f(counts - 0) == f(counts)
                e_row, e_col, e_val = ex if rows_out is exclude else _sorted_entries(rows_out)
                full[e_row, e_col, j] = f(counts[e_col] - e_val)
        return SupportFeatures(full=full, cos=cos, cos_sum=cos_sum, text_sum=text_sum, support_text=st, mask=mask,
                               features=tuple(features), ease_rows=ease_rows, ease_sum=ease_sum, cos_keys=keys)

    def _ease_rows(self, support: np.ndarray, mask: np.ndarray, exclude: sp.csr_matrix | None) -> np.ndarray:
        """float64 [U, K, I]: scale * max(B[s_j, i], 0) for each support slot (0 for padding and i = s_j).

        B = I - P diag(1 / diag P). With `exclude`, each task's P is that of the matrix without its
        own row x: P' = P + (P x)(P x)^T / (1 - x^T P x) (Sherman-Morrison), so a warm user's
        training features equal those of a side fitted without them, as for knn."""
        p = self.ease_p
        rows = p[support]  # [U, K, I]
        diag = np.broadcast_to(np.diag(p), (len(support), p.shape[0]))
        if exclude is not None:
            x = _binary(exclude)
            q = np.asarray(x @ p)  # [U, I]: P x per task (P is symmetric)
            c = 1.0 - np.asarray(x.multiply(q).sum(axis=1)).ravel()  # 1 - x^T P x > 0
            q_s = np.take_along_axis(q, support, axis=1)  # [U, K]
            rows = rows + q_s[..., None] * q[:, None, :] / c[:, None, None]
            diag = diag + q * q / c[:, None]
        b = np.maximum(-rows / diag[:, None, :], 0.0) * self.ease_scale
        b[np.arange(len(support))[:, None], np.arange(support.shape[1])[None, :], support] = 0.0  # zero diagonal
        return b * mask[..., None]

    def _log_z(self, counts: np.ndarray, which: str) -> np.ndarray:
        """log(1 + counts) standardised with the catalog statistics of `which` (fixed at fit time,
        so a training task's excluded counts are on the same scale as a new user's)."""
        mu, sd = self.pop_stats(which)
        return (np.log1p(np.maximum(counts, 0)) - mu) / sd

    def leave_one_out(self, sf: SupportFeatures, items: np.ndarray) -> np.ndarray:
        """float32 [U, K, M, F]: features of items[u, j, :] computed without support item j.

        Args:
            items: int64 [U, K, M] candidate items for each left-out support slot j.
        """
        u_n, k, m = items.shape
        n_others = sf.mask.sum(axis=1)[:, None] - sf.mask  # [U, K]
        tot_at = sf.cos_sum[np.arange(u_n)[:, None, None], items]  # [U, K, M]
        slot = (np.arange(u_n)[:, None] * k + np.arange(k)[None, :])[..., None]  # [U, K, 1]: row of slot j in sf.cos
        # cos of slot j to each of its candidates (0 where nothing is stored)
        keys, vals = (sf.cos_keys, sf.cos.data) if sf.cos_keys is not None else _csr_keys(sf.cos)
        own_at = _at(keys, vals, (slot * sf.cos.shape[1] + items).ravel(), np.float64).reshape(items.shape)
        knn = np.divide(tot_at - own_at, np.sqrt(np.maximum(n_others, 1))[..., None], out=np.zeros_like(tot_at),
                        where=n_others[..., None] > 0)
        content = np.zeros(items.shape)
        if "content" in sf.features:
            rest = sf.text_sum[:, None, :] - sf.support_text  # [U, K, E]
            rest_n = rest / np.maximum(np.linalg.norm(rest, axis=-1, keepdims=True), 1e-12)
            content = np.einsum("uke,ukme->ukm", rest_n, self.text[items].astype(np.float64))
            content = np.where(n_others[..., None] > 0, content, 0.0)
        # popularity, newness and trend do not depend on the support set: read them off the full features
        fixed = [np.take_along_axis(sf.full[..., FEATURES.index(f)], items.reshape(u_n, -1), axis=1).reshape(u_n, k, m)
                 for f in ("pop", "new", "trend")]
        cols = [knn, content, *fixed]
        if sf.ease_rows is not None:
            at = np.arange(u_n)[:, None, None]
            own = np.take_along_axis(sf.ease_rows, items, axis=2)  # B+ of slot j to its own candidates
            cols.append(np.divide(sf.ease_sum[at, items] - own, np.sqrt(np.maximum(n_others, 1))[..., None],
                                  out=np.zeros(items.shape), where=n_others[..., None] > 0))
        return np.stack(cols, axis=-1).astype(np.float32)


COOC_BUDGET = 2 ** 26  # co-occurrences an ItemSide stores at most: 512 MB as float32 values + int32 indices
COOC_BLOCK = 512  # items per block of X^T X rows: bounds the memory of the unpruned pieces


def cooccurrence(x: sp.csr_matrix, counts: np.ndarray, budget: int = COOC_BUDGET,
                 block: int = COOC_BLOCK) -> sp.csr_matrix:
    """X^T X of a binary float32 [users, I] matrix as canonical float32 CSR, computed a block of rows
    at a time. A large dense log would store up to I^2 entries (170M, 1.4 GB, for a synthetic
    100,000-item log; more for ML-20M), so when the whole product holds more than `budget` entries
    every item keeps only its budget // I strongest co-occurrences by cosine (itself always, ties to
    the lower item index): item-kNN's usual sparsification. Within the budget the product is exact,
    the same entries and values as one `x.T @ x` (integer counts, exact in float32)."""
    n = x.shape[1]
    xc = x.tocsc()
    keep = max(budget // max(n, 1), 1)
    blocks: list[sp.csr_matrix] = []
    total, pruned = 0, False
    for start in range(0, n, block):
        b = (xc[:, start:start + block].T @ x).tocsr()  # float32 already: x is
        b.sort_indices()
        total += b.nnz
        if not pruned and total > budget:
            pruned = True
            blocks = [_strongest(bb, s * block, counts, keep) for s, bb in enumerate(blocks)]
        blocks.append(_strongest(b, start, counts, keep) if pruned else b)
    out = sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, n), dtype=np.float32)
    out.sort_indices()
    return out


def _strongest(b: sp.csr_matrix, start: int, counts: np.ndarray, keep: int) -> sp.csr_matrix:
    """Rows start.. of X^T X (canonical CSR `b`) cut to each row's `keep` largest cosines, the
    diagonal first and ties to the lower column; the kept entries stay in canonical order.

    Only rows longer than `keep` are cut, each by a linear-time selection (np.partition finds the
    keep-th largest cosine; everything above it stays, then the lowest columns that equal it): no
    sort of every entry, which made the bounded build several times slower than the product."""
    lens = np.diff(b.indptr)
    long = np.flatnonzero(lens > keep)
    if not len(long):
        return b
    kept = np.ones(b.nnz, bool)
    for i in long:
        a, e = b.indptr[i], b.indptr[i + 1]
        col = b.indices[a:e]
        cos = b.data[a:e] / np.sqrt(counts[start + i] * counts[col])
        cos[col == start + i] = np.inf
        cut = np.partition(cos, len(cos) - keep)[len(cos) - keep]  # the keep-th largest
        row = cos > cut
        row[np.flatnonzero(cos == cut)[:keep - np.count_nonzero(row)]] = True  # ties: lowest columns
        kept[a:e] = row
    indptr = np.concatenate([[0], np.cumsum(np.minimum(lens, keep))])
    return sp.csr_matrix((b.data[kept], b.indices[kept], indptr), shape=b.shape)


def _binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """A float32 copy with every stored nonzero set to 1 (a stored 0 is no interaction)."""
    x = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    x.eliminate_zeros()
    x.data[:] = 1.0
    return x


def _sorted_entries(m: sp.spmatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows int64, columns, values) of m's stored entries, row-major with duplicates summed (as
    toarray() would add them): the entries a sparse correction visits."""
    e = sp.coo_matrix(m)
    e.sum_duplicates()
    return e.row.astype(np.int64), e.col.astype(np.int64), e.data


def _csr_keys(m: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """(row * columns + column of each stored entry, ascending; its value) for `_at`, duplicates
    summed as scipy's own lookup sums them."""
    rows, cols, vals = _sorted_entries(m)
    return rows * m.shape[1] + cols, vals


def _find(keys: np.ndarray, want: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions of `want` in the ascending `keys`, whether each is there)."""
    pos = np.searchsorted(keys, want)
    hit = pos < len(keys)
    hit[hit] = keys[pos[hit]] == want[hit]
    return pos, hit


def _at(keys: np.ndarray, values: np.ndarray, want: np.ndarray, dtype=None) -> np.ndarray:
    """values[keys == w] for each w in `want`, 0 where it is not stored: a sparse matrix's element
    lookup by binary search over its (row, column) keys. scipy's own scans each asked row from its
    start, which on a large catalog's co-occurrence rows cost more than the features themselves."""
    pos, hit = _find(keys, want)
    out = np.zeros(len(want), dtype or values.dtype)
    out[hit] = values[pos[hit]]
    return out


def _is_new(counts: np.ndarray) -> np.ndarray:
    return (counts <= 0).astype(np.float64)


def _cos_rows(a: np.ndarray, text64_t: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(a, axis=1, keepdims=True)
    a = np.divide(a, norm, out=np.zeros_like(a), where=norm > 0)
    return a @ text64_t


def _ease_scale(p: np.ndarray, cooc: sp.csr_matrix, counts: np.ndarray) -> float:
    """Factor that puts EASE's positive weights on the cosines' scale (their 99th percentiles match),
    so one prior grid serves both features."""
    b = ease_weights(p)
    pos = b[b > 0]
    co = cooc.tocoo()
    off = co.row != co.col
    cos = co.data[off] / np.sqrt(np.maximum(counts[co.row[off]] * counts[co.col[off]], 1e-12))
    if not len(pos) or not len(cos):
        return 1.0
    return float(np.percentile(cos, 99) / np.percentile(pos, 99))

