"""Corpus sources, one file per corpus, registered by name.

A source knows how to fetch or locate a corpus's raw files and deliver them, in the SDME raw
layout, to a folder (``download``). Register one with ``@register_source("name")`` on a function
``download(target: Path, **options) -> Path`` that returns the raw folder it delivered.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from pathlib import Path

DownloadFn = Callable[..., Path]


class SourceError(RuntimeError):
    """A source that could not deliver its corpus; the message says what failed and what to do."""


_REGISTRY: dict[str, DownloadFn] = {}
_BUILTIN_MODULES = ("sample", "hub", "folder")


def register_source(name: str) -> Callable[[DownloadFn], DownloadFn]:
    def wrap(fn: DownloadFn) -> DownloadFn:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"source {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return wrap


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(f"{__name__}.{module}")


def list_sources() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def get_source(name: str) -> DownloadFn:
    _load_builtins()
    if name not in _REGISTRY:
        hint = difflib.get_close_matches(name, _REGISTRY, n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        raise KeyError(f"unknown source {name!r}; known: {', '.join(sorted(_REGISTRY))}.{extra}")
    return _REGISTRY[name]
