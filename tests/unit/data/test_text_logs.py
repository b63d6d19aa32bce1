"""Amazon Reviews (2018 and 2023 files) and ML-100K with IMDb details: what item text is kept, what
is left out (behaviour, outside ratings), and bad lines named by file and line."""

import gzip
import json

import numpy as np
import pytest

from metarec.core.errors import DataFormatError, DatasetNotFoundError
from metarec.data import load_dataset
from metarec.encoders import item_texts
from tests.conftest import DATA
from tests.fixtures import write_ml100k


def _jsonl(path, rows, gz=True):
    text = "\n".join(json.dumps(r) for r in rows) + "\n"
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text)


def test_amazon_2018_reviews_and_metadata(tmp_path):
    root = tmp_path / "gifts"
    root.mkdir()
    _jsonl(root / "Gift_Cards_5.json.gz", [
        {"reviewerID": "u1", "asin": "A", "overall": 5.0, "unixReviewTime": 1500000000},
        {"reviewerID": "u1", "asin": "B", "overall": 4.0, "unixReviewTime": 1500086400},
        {"reviewerID": "u2", "asin": "A", "overall": 3.0, "unixReviewTime": 1500000000},
        {"reviewerID": "u2", "asin": "A", "overall": 1.0, "unixReviewTime": 1600000000},  # a repeat review
        {"reviewerID": "u2", "asin": "C", "overall": 5.0, "unixReviewTime": 1500000001}])
    _jsonl(root / "meta_Gift_Cards.json.gz", [
        {"asin": "A", "title": " Tea &amp; Cake Card", "description": ["Good", "for tea."], "brand": "Teashop",
         "also_buy": ["B"], "also_view": ["C"], "category": ["Gift Cards"]},
        {"asin": "B", "title": "Book Card", "description": [], "feature": ["Never expires"]},
        {"asin": "Z", "title": "Never reviewed"}])
    d = load_dataset("amazon", root)
    assert (d.n_users, d.n_items, d.n_interactions) == (2, 3, 4)
    assert d.items["title"].tolist() == ["Tea & Cake Card", "Book Card", "C"]  # C has no metadata
    assert d.items["description"].tolist() == ["Good for tea.", None, None]
    assert d.items["brand"].tolist() == ["Teashop", None, None] and d.items["features"].tolist() == [None, "Never expires", None]
    # the default template renders every field, in its order
    assert item_texts(d.items)[:2] == ["Tea & Cake Card. By Teashop. Good for tea.", "Book Card. Never expires"]
    text = " ".join(item_texts(d.items))
    assert "B." not in text.split("Cake Card")[1][:3] and "also" not in text  # behaviour lists are never text
    assert any("1 reviewed item(s) have no metadata" in n for n in d.notes)
    assert any("1 repeated (user, item)" in n for n in d.notes)
    assert d.rating[(d.user == 1) & (d.item == 0)].tolist() == [3.0]  # the first review of the pair is kept


def test_amazon_2023_jsonl_and_bad_lines(tmp_path):
    root = tmp_path / "beauty"
    root.mkdir()
    _jsonl(root / "All_Beauty.jsonl", [
        {"user_id": "u1", "parent_asin": "P1", "asin": "X1", "rating": 5.0, "timestamp": 1588687728923},
        {"user_id": "u2", "parent_asin": "P1", "rating": 4.0, "timestamp": 1588687729000}], gz=False)
    _jsonl(root / "meta_All_Beauty.jsonl", [
        {"parent_asin": "P1", "title": "Soap", "description": ["Lavender."], "features": ["Vegan"], "store": "Suds",
         "categories": ["Beauty", "Soap"]}], gz=False)
    d = load_dataset("amazon", root)
    assert d.item_ids.tolist() == ["P1"] and d.timestamp.tolist() == [1588687728, 1588687729]  # ms -> s
    assert (d.items["brand"][0], d.items["description"][0], d.items["features"][0]) == ("Suds", "Lavender.", "Vegan")
    assert d.items["genres"][0] == ("Beauty", "Soap")
    assert item_texts(d.items) == ["Soap. Genres: Beauty, Soap. By Suds. Lavender. Vegan"]
    (root / "All_Beauty.jsonl").write_text('{"user_id": "u1", "parent_asin": "P1", "rating": 5, "timestamp": 1}\n'
                                           '{"user_id": "u1", "parent_asin": "P1"\n')
    with pytest.raises(DataFormatError, match=r"All_Beauty.jsonl, line 2: not a JSON object"):
        load_dataset("amazon", root)
    (root / "All_Beauty.jsonl").write_text('\n{"user_id": "u1", "parent_asin": "P1", "rating": 5}\n')
    with pytest.raises(DataFormatError, match=r"All_Beauty.jsonl, line 2: review without a valid time"):
        load_dataset("amazon", root)
    (root / "Other.jsonl").write_text("")
    with pytest.raises(DatasetNotFoundError, match="expected one reviews file"):
        load_dataset("amazon", root)


def test_ml100k_with_imdb_details(tmp_path):
    write_ml100k(tmp_path / "ml-100k")
    (tmp_path / "ml-100k-imdb").mkdir()
    (tmp_path / "ml-100k-imdb" / "movielens100k_details.json").write_text(json.dumps([
        {"movie_id": 1, "description": "A movie about one.", "director": ["Ann Lee"], "cast": ["A", "B", "C", "D"],
         "rating": 9.9, "num_review": 12345, "year": "1951"},
        {"movie_id": 2, "description": "It looks like we don't have any Plot Summaries for this title yet.",
         "director": ["Bo Ray"], "cast": [], "year": 1952.0},
        {"movie_id": 3, "description": "A remake, decades later.", "year": 2014}]))  # the wrong page
    d = load_dataset("ml-100k-imdb", tmp_path)
    items = d.items.set_index("item_id")
    assert (items["description"][1], items["director"][1], items["cast"][1]) == ("A movie about one.", "Ann Lee",
                                                                                 "A, B, C")  # no rating, no num_review
    assert items["description"][2] is None and items["director"][2] == "Bo Ray" and items["cast"][2] is None
    assert items.loc[[3, 4], ["description", "director", "cast"]].isna().all().all()
    texts = item_texts(d.items)
    assert texts[0].endswith("A movie about one. Directed by Ann Lee. Starring A, B, C.")
    assert texts[1].endswith("Directed by Bo Ray.")
    plain = load_dataset("ml-100k", tmp_path / "ml-100k")
    np.testing.assert_array_equal(d.user, plain.user)  # the same log, richer items
    assert d.items["title"].tolist() == plain.items["title"].tolist()


@pytest.mark.integration
def test_the_shared_gift_cards_load():
    root = DATA / "amazon-gift-cards"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    d = load_dataset("amazon", root)
    assert (d.n_users, d.n_items, d.n_interactions) == (458, 148, 2965)  # 2,972 reviews less 7 repeats
    items = d.items.set_index("item_id")
    # the description, brand and features of 147 items describe them
    assert items[["brand", "description", "features"]].notna().any(axis=1).sum() == 147
    assert items.loc["B004LLIKVU", ["brand", "description", "features"]].isna().all()
    assert items["brand"]["B015NKJ6D8"] == "Hooters" and d.items["title"].str.startswith(" ").sum() == 0
