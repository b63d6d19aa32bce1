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

_ITEM_FIELDS = {"title", "year", "genres", "description"}
_YEAR_RE = re.compile(r"\(\d{4}\)")


@dataclass(frozen=True, kw_only=True)
class TemplateConfig:
    """How fields become text. Each item segment is rendered only when its field is present.

    `item_segments` pairs a field name with a format string taking that field's value as `{}`
    (genres are joined with ", "). The user profile reads "A 24-year-old male technician." followed by
    the free-text description, with missing parts omitted.
    """

    item_segments: tuple[tuple[str, str], ...] = (
        ("title", "{}."), ("genres", "Genres: {}."), ("description", "{}"),
    )
    year_if_missing_from_title: bool = True
    user_profile: bool = True

    def __post_init__(self) -> None:
        for seg in self.item_segments:
            if len(seg) != 2 or seg[0] not in _ITEM_FIELDS or "{}" not in seg[1]:
                raise ConfigError(f"item segment {seg!r}: expected (field in {sorted(_ITEM_FIELDS)}, "
                                  "format with '{}')")

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
        s = fmt.format(str(v).strip())
        # avoid doubled final punctuation ("Amélie!." -> "Amélie!")
        if s.endswith("..") or s.endswith("!.") or s.endswith("?."):
            s = s[:-1]
        parts.append(s)
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
