import pandas as pd
import pytest

from metarec.core.errors import ConfigError
from metarec.encoders import TemplateConfig, item_texts, user_texts


def test_item_text_and_missing_fields_omitted():
    items = pd.DataFrame({
        "title": ["Toy Story (1995)", "Heat", "Plain"],
        "year": [1995, 1995, None],
        "genres": [("Animation", "Children's", "Comedy"), (), ()],
        "description": [None, "A heist. ", None],
    })
    assert item_texts(items) == [
        "Toy Story (1995). Genres: Animation, Children's, Comedy.",
        "Heat (1995). A heist.",
        "Plain.",
    ]
    assert "None" not in " ".join(item_texts(items))
    assert item_texts(items) == item_texts(items.copy())  # stable


def test_user_profiles():
    users = pd.DataFrame({"age": [24, 18, None, None], "gender": ["male", "female", None, None],
                          "occupation": ["technician", "other", "engineer", None],
                          "description": [None, None, None, "Likes jazz."]})
    assert user_texts(users) == ["A 24-year-old male technician.", "An 18-year-old female person.",
                                 "An engineer.", "Likes jazz."]


def test_custom_template_changes_fingerprint_and_validates():
    a, b = TemplateConfig(), TemplateConfig(item_segments=(("title", "Movie: {}"),))
    assert a.fingerprint() != b.fingerprint() and a.fingerprint() == TemplateConfig().fingerprint()
    with pytest.raises(ConfigError):
        TemplateConfig(item_segments=(("plot", "{}"),))


def test_templates_choose_the_fields_and_never_double_a_sentence_end():
    items = pd.DataFrame({
        "title": ["Fantasia", "Gift Card!"], "year": [1940, None], "genres": [("Animation",), ()],
        "brand": [None, "Teashop"], "description": ["Music, animated.", None], "features": [None, "Never expires"],
        "director": ["Ford Beebe Jr.", None], "cast": ["Leopold Stokowski, Deems Taylor", None],
    })
    assert item_texts(items) == [
        "Fantasia (1940). Genres: Animation. Music, animated. Directed by Ford Beebe Jr. Starring Leopold Stokowski, "
        "Deems Taylor.",
        "Gift Card! By Teashop. Never expires",
    ]
    plot = TemplateConfig.with_fields(["title", "description"])
    assert item_texts(items, plot) == ["Fantasia (1940). Music, animated.", "Gift Card!"]
    assert item_texts(items, TemplateConfig.with_fields(["cast", "brand"])) == [  # the default order, not the asked one
        "Starring Leopold Stokowski, Deems Taylor.", "By Teashop."]
    for bad in (["plot"], ["year"], []):
        with pytest.raises(ConfigError, match="choose from"):
            TemplateConfig.with_fields(bad)


def test_meta_train_reads_the_chosen_fields(tiny_ml, tiny_models, tmp_path):
    import numpy as np

    from metarec.encoders import EncoderConfig, TextEncoder
    from metarec.meta.recommender import MetaRecommender
    from metarec.meta.train import meta_train
    from metarec.meta.trainer import TrainConfig
    from tests.fixtures import run_cli

    enc = EncoderConfig(model=tiny_models["bert"])
    titles = TemplateConfig.with_fields(["title"])
    m = meta_train(tiny_ml, tmp_path / "m", encoder=enc, template=titles,
                   train=TrainConfig(steps=2, meta_batch=4, n_query=5, n_neg=10, n_inner_neg=5, eval_every=2))
    want = TextEncoder(enc).encode(item_texts(tiny_ml.items, titles), show_progress=False)
    np.testing.assert_allclose(m.rec.side.text, want / np.linalg.norm(want, axis=1, keepdims=True), atol=1e-6)
    assert MetaRecommender.load(tmp_path / "m").info.template["item_segments"] == [["title", "{}."]]
    bad = run_cli(["meta-train", "-d", "ml-100k", "--data-dir", tmp_path / "none", "--out", tmp_path / "x",
                   "--item-fields", "title,plot"], check=False)
    assert bad.exit_code == 2 and "choose from" in bad.stderr
