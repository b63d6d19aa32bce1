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
