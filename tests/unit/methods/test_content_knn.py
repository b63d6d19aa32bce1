"""The content-kNN baseline against a direct computation from the catalog's text vectors."""

import math

import numpy as np
import pytest

from metarec.data.protocol import fit_data
from metarec.core.errors import MethodNotApplicableError
from metarec.data import make_split
from metarec.encoders import EncoderConfig, item_embeddings
from metarec.methods import create_method
from metarec.data.protocol import SupportBatch


def _cos(a, b) -> float:
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_content_knn_scores_the_cosine_to_the_mean_unit_support_vector(tiny_ml, tiny_models):
    fd = fit_data(make_split(tiny_ml))
    enc = EncoderConfig(model=tiny_models["bert"])
    m = create_method("content-knn", encoder=enc).fit(fd)
    vecs = item_embeddings(fd.items, enc).astype(np.float64).tolist()
    support = np.array([[3, 17], [5, 5], [0, 39]])
    got = m.score(SupportBatch(support, np.full(support.shape, np.nan), tiny_ml.users.iloc[:3]))
    assert got.shape == (3, fd.n_items)
    for u, row in enumerate(support):
        units = [[x / math.sqrt(sum(y * y for y in vecs[s])) for x in vecs[s]] for s in row]
        query = [sum(col) / len(units) for col in zip(*units)]  # the mean of the unit support vectors
        want = [_cos(query, vecs[i]) for i in range(fd.n_items)]
        np.testing.assert_allclose(got[u], want, rtol=1e-9, atol=1e-12)
    assert abs(got[1, 5] - 1.0) < 1e-12  # one item twice: its own vector, cosine 1
    with pytest.raises(MethodNotApplicableError, match="content-knn ranks from a user's interactions"):
        m.score(SupportBatch(np.zeros((2, 0), np.int64), np.zeros((2, 0)), tiny_ml.users.iloc[:2]))  # K = 0
