"""Name -> Method class. Registration refuses duplicates so two methods never share a name; a
method may also answer to older names (`aliases`), which resolve to it but are not listed."""

from __future__ import annotations

import importlib
from typing import Any

from metarec.core.errors import ConfigError
from metarec.methods.base import Method

_REGISTRY: dict[str, type[Method]] = {}
_ALIASES: dict[str, str] = {}
# modules whose import registers the built-in methods (one method per module); imported lazily, so
# torch-free runs stay light
_BUILTIN = ("metarec.methods.random", "metarec.methods.popularity", "metarec.methods.itemknn",
            "metarec.methods.ease", "metarec.methods.als", "metarec.methods.content_knn",
            "metarec.methods.metarec", "metarec.methods.melu")


def register(cls: type[Method]) -> type[Method]:
    """Class decorator: register a Method under its name and aliases; a taken name is a ConfigError."""
    for name in (cls.name, *cls.aliases):
        taken = _REGISTRY.get(name) or _REGISTRY.get(_ALIASES.get(name, ""))
        if taken is not None and taken is not cls:
            raise ConfigError(f"a method named {name!r} is already registered ({taken})")
    _REGISTRY[cls.name] = cls
    _ALIASES.update({a: cls.name for a in cls.aliases})
    return cls


def _load_builtins() -> None:
    for mod in _BUILTIN:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:  # a real missing dependency, not an absent optional module
                raise


def available_methods() -> list[str]:
    """Every registered method's name (aliases left out), sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def method_class(name: str) -> type[Method]:
    """The class registered under `name` or under an alias of it."""
    _load_builtins()
    cls = _REGISTRY.get(name) or _REGISTRY.get(_ALIASES.get(name, ""))
    if cls is None:
        raise ConfigError(f"unknown method {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return cls


def create_method(name: str, seed: int = 0, **kwargs: Any) -> Method:
    """An instance of the method registered as `name` (or an alias), with `seed` and `kwargs`."""
    return method_class(name)(seed=seed, **kwargs)
