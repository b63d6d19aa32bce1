"""The real default encoder against the sentence-transformers reference, offline."""

import numpy as np
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SENTENCES = [
    "Toy Story (1995). Genres: Animation, Children's, Comedy.",
    "Misérables, Les (1995). Genres: Drama, Musical.",
    "A 24-year-old male technician.",
    "The quick brown fox jumps over the lazy dog.",
    "Graduate, The (1967). Genres: Drama, Romance.",
    "A long description " + "of a product that goes on and on " * 20,
    "x",
]


def test_default_embeddings_match_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    from metarec.encoders import TextEncoder
    from metarec.encoders.hf import default_model_path

    ours = TextEncoder().encode(SENTENCES, show_progress=False)
    ref = SentenceTransformer(default_model_path(), device="cpu").encode(SENTENCES, batch_size=4)
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    cos = (ours * ref).sum(axis=1) / np.linalg.norm(ours, axis=1)
    assert cos.min() >= 0.9999, cos
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
