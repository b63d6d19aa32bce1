"""Config dicts round-trip through JSON and refuse what they do not know; files are written whole."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metarec.core.config import atomic_write_bytes, atomic_write_text, from_dict, to_dict
from metarec.core.errors import ConfigError
from metarec.meta.learners import MetaConfig
from metarec.meta.trainer import TrainConfig
from metarec.models.scoring import ScoringConfig


@dataclass(frozen=True, kw_only=True)
class Inner:
    name: str = "x"
    sizes: tuple[int, ...] = (1, 2)


@dataclass(frozen=True, kw_only=True)
class Outer:
    rate: float
    inner: Inner = Inner()
    extra: Inner | None = None
    tags: tuple[str, ...] = ()


@given(rate=st.floats(allow_nan=False, allow_infinity=False), name=st.text(max_size=5),
       sizes=st.lists(st.integers(-5, 5), max_size=4).map(tuple), extra=st.booleans(),
       tags=st.lists(st.text(max_size=3), max_size=3).map(tuple))
def test_nested_configs_round_trip_through_json(rate, name, sizes, extra, tags):
    cfg = Outer(rate=rate, inner=Inner(name=name, sizes=sizes), extra=Inner(sizes=sizes[::-1]) if extra else None,
                tags=tags)
    d = to_dict(cfg)
    assert isinstance(d["inner"], dict) and isinstance(d["inner"]["sizes"], list)  # plain JSON values
    assert from_dict(Outer, json.loads(json.dumps(d))) == cfg  # tuples and nested classes come back


@pytest.mark.parametrize("cfg", [ScoringConfig(features=("knn", "pop"), dim=8), MetaConfig(algorithm="metasgd"),
                                 TrainConfig(steps=7, meta=False)])
def test_the_shipped_configs_round_trip(cfg):
    assert from_dict(type(cfg), json.loads(json.dumps(to_dict(cfg)))) == cfg


def test_unknown_keys_and_non_objects_are_refused_by_name():
    with pytest.raises(ConfigError, match=r"config.head: unknown key\(s\) \['dimm'\]; valid keys are \[.*'dim'"):
        from_dict(ScoringConfig, {"dimm": 3}, where="config.head")
    with pytest.raises(ConfigError, match=r"Outer.inner: unknown key\(s\) \['nme'\]"):
        from_dict(Outer, {"rate": 1.0, "inner": {"nme": "y"}})
    with pytest.raises(ConfigError, match="expected an object, got list"):
        from_dict(Outer, [1, 2])
    with pytest.raises(ConfigError, match=r"Outer: .*rate"):  # a required field left out
        from_dict(Outer, {})
    with pytest.raises(ConfigError, match="hidden must be positive|dim and hidden"):  # the class's own check
        from_dict(ScoringConfig, {"hidden": 0})
    with pytest.raises(ConfigError, match="expected a dataclass config, got dict"):
        to_dict({"rate": 1.0})


def test_atomic_write_replaces_whole_or_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "config.json"
    atomic_write_text(path, '{"a": 1}')  # creates the folder
    assert path.read_text() == '{"a": 1}'
    atomic_write_bytes(path, b'{"a": 2}')
    assert path.read_bytes() == b'{"a": 2}'

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(path, b'{"a": 3}')
    assert path.read_bytes() == b'{"a": 2}'  # the old file, whole
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.json"]  # no temporary file left behind
