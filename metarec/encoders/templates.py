"""Catalog and profile fields -> one stable string per item or user.

Missing fields are left out entirely (never printed as "None"), so sparse catalogs still read well.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass

import pandas as pd

from metarec.core.config import to_dict
from metarec.core.errors import ConfigError
from metarec.data.interactions import ITEM_FIELDS

_YEAR_RE = re.compile(r"\(\d{4}\)")


@dataclass(frozen=True, kw_only=True)
class TemplateConfig:
    """How fields become text. Each item segment is rendered only when its field is present.

    `item_segments` pairs a field name (`metarec.data.interactions.ITEM_FIELDS`: what loaders fill)
    with a format string taking that field's value as `{}` (genres are joined with ", "); the
    default renders every field a loader may fill, and `with_fields` keeps some of them. The year
    joins the title. The user profile reads "A 24-year-old male technician." followed by the
    free-text description, with missing parts omitted. Texts longer than the encoder's
    `EncoderConfig.max_length` tokens (256) are cut there.
    """

    item_segments: tuple[tuple[str, str], ...] = (
        ("title", "{}."), ("genres", "Genres: {}."), ("brand", "By {}."), ("description", "{}"),
        ("features", "{}"), ("director", "Directed by {}."), ("cast", "Starring {}."),
    )
    year_if_missing_from_title: bool = True
    user_profile: bool = True

    def __post_init__(self) -> None:
        for seg in self.item_segments:
            if len(seg) != 2 or seg[0] not in ITEM_FIELDS or "{}" not in seg[1]:
                raise ConfigError(f"item segment {seg!r}: expected (field in {list(ITEM_FIELDS)}, "
                                  "format with '{}')")

    @classmethod
    def with_fields(cls, fields, **kw) -> "TemplateConfig":
        """The default segments of `fields` only (names from ITEM_FIELDS, e.g. ("title", "description")),
        in the default order; "title" keeps its year."""
        fields = [f.strip() for f in fields if f.strip()]
        bad = [f for f in fields if f not in ITEM_FIELDS or f == "year"]
        if bad or not fields:
            raise ConfigError(f"item fields {bad or fields}: choose from {[f for f in ITEM_FIELDS if f != 'year']}")
        return cls(item_segments=tuple(s for s in cls.item_segments if s[0] in fields), **kw)

    def fingerprint(self) -> str:
        blob = json.dumps(to_dict(self), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _present(v) -> bool:
    if v is None:
        return False
    if isinstance(v, float) and math.isnan(v):
        return False
    if isinstance(v, (tuple, list)):
        return len(v) > 0
    return str(v).strip() != ""


def item_text(row: dict, cfg: TemplateConfig) -> str:
    """One item's fields as the text the encoder reads."""
    parts = []
    for field, fmt in cfg.item_segments:
        v = row.get(field)
        year = row.get("year")
        if field == "title" and _present(v) and cfg.year_if_missing_from_title and _present(year):
            year = int(year) if isinstance(year, (int, float)) else year  # 1995.0 -> 1995
            if not _YEAR_RE.search(str(v)):  # a title that already carries a year keeps its own
                v = f"{v} ({year})"
        if not _present(v):
            continue
        if isinstance(v, (tuple, list)):
            v = ", ".join(map(str, v))
        v = str(v).strip()
        # no doubled final punctuation: a value that ends a sentence itself ("Amélie!", "Ford Beebe
        # Jr.") does not get the format's closing period
        if fmt.endswith("{}.") and v.endswith((".", "!", "?")):
            fmt = fmt[:-1]
        parts.append(fmt.format(v))
    return " ".join(parts)


def item_texts(items: pd.DataFrame, cfg: TemplateConfig | None = None) -> list[str]:
    """One text per catalog row, in catalog order."""
    cfg = cfg or TemplateConfig()
    return [item_text(r, cfg) for r in items.to_dict("records")]


def user_text(row: dict, cfg: TemplateConfig) -> str:
    """One user's profile fields as text ('' when there are none, or when profiles are off)."""
    if not cfg.user_profile:
        return ""
    words = []
    age = row.get("age")
    if _present(age):
        words.append(f"{int(age)}-year-old")
    if _present(row.get("gender")):
        words.append(str(row["gender"]))
    occ = row.get("occupation")
    if _present(occ) and str(occ) not in ("none", "other"):
        words.append(str(occ))
    elif words:
        words.append("person")
    out = ""
    if words:
        article = "An" if words[0][0].lower() in "aeiou" or words[0].startswith(("8", "11", "18")) else "A"
        out = f"{article} {' '.join(words)}."
    if _present(row.get("description")):
        out = (out + " " + str(row["description"]).strip()).strip()
    return out


def user_texts(users: pd.DataFrame, cfg: TemplateConfig | None = None) -> list[str]:
    """Every user's profile text ('' where a user has no fields)."""
    cfg = cfg or TemplateConfig()
    return [user_text(r, cfg) for r in users.to_dict("records")]
