"""The encoder on tiny random models: pooling by hand, length-sorted batching, cache invalidation."""

import json

import numpy as np
import pytest
import torch

from metarec.encoders import EncoderConfig, TextEncoder, encode_texts

TEXTS = ["a", "the quick brown fox jumps over the lazy dog " * 3, "hello world", "x y z", "one two",
         "Misérables, Les (1995). Genres: Drama.", "tiny", "a much longer sentence with quite a few words in it"]


def _single(enc: TextEncoder, text: str, how: str) -> np.ndarray:
    batch = enc.tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        h = enc.model(**batch).last_hidden_state[0]
    v = {"cls": h[0], "last": h[-1], "mean": h.mean(0)}[how]
    return torch.nn.functional.normalize(v, dim=0).numpy() if enc.normalize else v.numpy()


@pytest.mark.parametrize("model,how", [("bert", "mean"), ("bert", "cls"), ("gpt2", "last"), ("gpt2", "mean")])
def test_pooling_matches_unpadded_single_text(tiny_models, model, how):
    enc = TextEncoder(EncoderConfig(model=tiny_models[model], pooling=how, batch_size=3))
    got = enc.encode(TEXTS, show_progress=False)
    for i, t in enumerate(TEXTS):
        np.testing.assert_allclose(got[i], _single(enc, t, how), atol=1e-5)


def test_auto_pooling_picks_last_for_decoders_mean_for_encoders(tiny_models):
    assert TextEncoder(EncoderConfig(model=tiny_models["gpt2"])).resolved_pooling == "last"
    assert TextEncoder(EncoderConfig(model=tiny_models["bert"])).resolved_pooling == "mean"


def test_sorted_batching_equals_naive(tiny_models):
    sorted_ = TextEncoder(EncoderConfig(model=tiny_models["bert"], batch_size=3)).encode(TEXTS, show_progress=False)
    naive = TextEncoder(EncoderConfig(model=tiny_models["bert"], batch_size=3, sort_by_length=False)).encode(
        TEXTS, show_progress=False)
    np.testing.assert_allclose(sorted_, naive, atol=1e-5)


def test_length_batches_cut_at_length_changes():
    from metarec.encoders.hf import length_batches

    lens = np.array([9] * 5 + [8] * 1 + [7] * 6 + [3] * 2)
    b = length_batches(lens, 4, min_fill=0.5)
    # hand-worked: four 9s; the leftover 9 (a run of 1 < 2) is merged with the 8 and two 7s;
    # then four 7s; then the two 3s
    assert b == [(0, 4), (4, 8), (8, 12), (12, 14)]
    assert all(stop - start <= 4 for start, stop in b)
    assert [i for s, e in b for i in range(s, e)] == list(range(len(lens)))
    # equal-length runs of at least min_fill * batch_size are never mixed with another length
    b = length_batches(np.array([5, 5, 5, 4, 4, 4, 4, 4]), 4, min_fill=0.5)
    assert b == [(0, 3), (3, 7), (7, 8)]


def _count_forwards(enc):
    calls = []
    enc.model.register_forward_hook(lambda *a: calls.append(1))
    return calls


def test_cache_hits_run_no_forward_and_changes_invalidate(tiny_models, tmp_path):
    cfg = EncoderConfig(model=tiny_models["bert"], batch_size=4)
    enc = TextEncoder(cfg)
    calls = _count_forwards(enc)
    v1, s1 = encode_texts(TEXTS, enc, cache_dir=tmp_path, namespace="t1", show_progress=False)
    assert s1.cache_hits == 0 and calls  # the first run did run the model
    enc2 = TextEncoder(cfg)  # a fresh process would look like this
    v2, s2 = encode_texts(TEXTS, enc2, cache_dir=tmp_path, namespace="t1", show_progress=False)
    assert s2.cache_hits == len(TEXTS) and enc2._model is None  # model never even loaded
    np.testing.assert_array_equal(v1, v2)
    # a changed template (namespace), pooling or model gives new vectors, not stale ones
    _, s3 = encode_texts(TEXTS, TextEncoder(cfg), cache_dir=tmp_path, namespace="t2", show_progress=False)
    assert s3.cache_hits == 0
    v4, s4 = encode_texts(TEXTS, TextEncoder(EncoderConfig(model=tiny_models["bert"], pooling="cls")),
                          cache_dir=tmp_path, namespace="t1", show_progress=False)
    assert s4.cache_hits == 0 and not np.allclose(v4, v1)
    v5, s5 = encode_texts(TEXTS, TextEncoder(EncoderConfig(model=tiny_models["gpt2"], pooling="mean")),
                          cache_dir=tmp_path, namespace="t1", show_progress=False)
    assert s5.cache_hits == 0 and not np.allclose(v5, v1)


def test_changed_weights_invalidate(tiny_models, tmp_path):
    import shutil

    from transformers import BertModel

    copy = tmp_path / "bert"
    shutil.copytree(tiny_models["bert"], copy)
    _, s1 = encode_texts(TEXTS, TextEncoder(EncoderConfig(model=str(copy))), cache_dir=tmp_path / "c",
                         show_progress=False)
    m = BertModel.from_pretrained(copy)
    with torch.no_grad():
        m.embeddings.word_embeddings.weight.mul_(2)
    m.save_pretrained(copy)
    _, s2 = encode_texts(TEXTS, TextEncoder(EncoderConfig(model=str(copy))), cache_dir=tmp_path / "c",
                         show_progress=False)
    assert s1.cache_hits == 0 and s2.cache_hits == 0


def test_encode_cli_exports_and_second_run_hits(tiny_models, tmp_path):
    from tests.fixtures import run_cli, write_ml100k

    data = write_ml100k(tmp_path / "ml-100k")
    cmd = ["--no-progress", "encode", "--dataset", "ml-100k", "--data-dir", data, "--model", tiny_models["bert"],
           "--cache-dir", tmp_path / "cache", "--json", "--export", tmp_path / "out"]
    first = json.loads(run_cli(cmd).stdout)
    second = json.loads(run_cli(cmd).stdout)
    assert first["n_texts"] == 40 + 30 and first["dim"] == 32 and first["cache_hits"] == 0
    assert second["cache_hits"] == second["n_texts"]
    vecs = np.load(tmp_path / "out" / "items.npy")
    lines = (tmp_path / "out" / "items.jsonl").read_text(encoding="utf-8").splitlines()
    assert vecs.shape == (40, 32) and vecs.dtype == np.float32 and len(lines) == 40
    row3 = json.loads(lines[2])
    assert row3["item_id"] == 3 and row3["text"].startswith("Misérables, Les (1995).")


def test_a_model_that_is_not_there_is_a_config_error_that_says_so(monkeypatch, tmp_path):
    from metarec.core.errors import ConfigError
    from metarec.encoders import EncoderConfig
    from metarec.encoders.hf import TextEncoder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # never ask the hub
    with pytest.raises(ConfigError, match=r"text encoder '.*nowhere': cannot load its tokenizer \(no such folder\)"):
        TextEncoder(EncoderConfig(model=str(tmp_path / "nowhere"))).tokenizer
    with pytest.raises(ConfigError, match=r"'someorg/not-a-model': cannot load its weights \(OSError"):
        TextEncoder(EncoderConfig(model="someorg/not-a-model")).model
