"""Name -> Method class. Registration refuses duplicates so two methods never share a name."""

from __future__ import annotations

import importlib
from typing import Any

from metarec.core.errors import ConfigError
from metarec.methods.base import Method

_REGISTRY: dict[str, type[Method]] = {}
# modules whose import registers the built-in methods; imported lazily (torch-free runs stay light)
_BUILTIN = ("metarec.methods.classical", "metarec.methods.content_knn", "metarec.methods.neural")


def register(cls: type[Method]) -> type[Method]:
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ConfigError(f"a method named {cls.name!r} is already registered ({_REGISTRY[cls.name]})")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtins() -> None:
    for mod in _BUILTIN:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:  # a real missing dependency, not an absent optional module
                raise


def available_methods() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def method_class(name: str) -> type[Method]:
    _load_builtins()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown method {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def create_method(name: str, seed: int = 0, **kwargs: Any) -> Method:
    return method_class(name)(seed=seed, **kwargs)
