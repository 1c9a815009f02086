"""One way to turn user-given options into typed configs: dataclass fields, YAML files, ``K=V``.

Every configurable thing in SDME is a dataclass (train options, model options, extractor
parameters, synthetic-corpus options, source options). Values arrive as Python objects, YAML
files or command-line strings; :func:`from_mapping` checks the keys (unknown ones get a close-match
hint), parses strings as YAML where the field is not a string, and checks each value against the
field's type hint. :func:`parse_assignments` reads repeated ``KEY=VALUE`` command-line options,
:func:`parse_text` reads one option's command-line text (YAML plus the ``K=V,K=V``, ``a,b,c``
and ``MIN:MAX`` shorthands; :func:`format_text` writes it), and :func:`read_yaml_mapping` reads
a YAML file that must be a mapping, naming the file on any error.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

C = TypeVar("C")


class ConfigError(ValueError):
    """An option that does not exist, or a value of the wrong type; the message names both."""


def _yaml_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _type_name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def coerce(value: Any, hint: Any, name: str) -> Any:
    """``value`` converted to the type ``hint`` describes.

    Strings are parsed as YAML when the hint does not accept a string (``"3"`` -> 3,
    ``"[1, 2]"`` -> [1, 2], ``"true"`` -> True); a float field also takes ``"1e-4"``, which YAML
    1.1 would read as text. Integers are accepted for floats; lists for
    tuples; nothing else is converted.

    Raises:
        ConfigError: the value does not fit (the message names the option).
    """
    if hint is Any or hint is object:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if isinstance(value, str) and str not in args:
            value = _yaml_value(value)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"option {name!r} cannot be null")
        errors = []
        for arg in sorted((a for a in args if a is not type(None)),
                          key=lambda a: 0 if a is bool else 1):  # bool before int
            try:
                return coerce(value, arg, name)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"option {name!r}: {value!r} is not a valid {_type_name(hint)}")
    if origin is typing.Literal:
        if isinstance(value, str) and not any(isinstance(a, str) for a in args):
            value = _yaml_value(value)
        if value in args and not (isinstance(value, bool) and not any(
                isinstance(a, bool) for a in args)):
            return value
        raise ConfigError(f"option {name!r}: {value!r} is not one of "
                          f"{', '.join(repr(a) for a in args)}")
    if hint is Path and isinstance(value, (str, os.PathLike)):
        return Path(value)
    if isinstance(value, str) and hint is not str and origin is None or (
            isinstance(value, str) and origin in (list, tuple, dict)):
        value = _yaml_value(value)
    if value is None:
        raise ConfigError(f"option {name!r} cannot be null")
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, str):
            return value
    elif origin in (list, tuple):
        if isinstance(value, (list, tuple)):
            if origin is tuple and args and (len(args) != 2 or args[1] is not Ellipsis):
                if len(value) != len(args):
                    raise ConfigError(f"option {name!r}: expected {len(args)} values, got "
                                      f"{len(value)}")
                return tuple(coerce(v, a, f"{name}[{i}]")
                             for i, (v, a) in enumerate(zip(value, args, strict=True)))
            item = args[0] if args else Any
            items = [coerce(v, item, f"{name}[{i}]") for i, v in enumerate(value)]
            return tuple(items) if origin is tuple else items
    elif origin is dict:
        if isinstance(value, Mapping):
            key_hint, value_hint = args if args else (Any, Any)
            return {coerce(k, key_hint, f"{name} key"): coerce(v, value_hint, f"{name}[{k!r}]")
                    for k, v in value.items()}
    elif isinstance(hint, type):
        if isinstance(value, hint):
            return value
    else:
        return value
    raise ConfigError(f"option {name!r}: {value!r} is not a valid {_type_name(hint)}")


def field_hints(cls: type) -> dict[str, Any]:
    """The init fields of dataclass ``cls`` with their resolved type hints."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls) if f.init}


def check_keys(keys: Iterable[str], known: Iterable[str], what: str = "") -> None:
    """Raises :class:`ConfigError` for the first key not in ``known`` (with a close match)."""
    known = list(known)
    for key in keys:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            label = f"{what} option" if what else "option"
            raise ConfigError(f"unknown {label} {key!r}{hint} (known: {', '.join(known)})")


def from_mapping(cls: type[C], values: Mapping[str, Any] | None = None, *, what: str | None = None,
                 source: str | os.PathLike | None = None, **overrides: Any) -> C:
    """An instance of dataclass ``cls`` from ``values`` plus keyword ``overrides``.

    Args:
        cls: the dataclass.
        values: option values (strings are parsed per :func:`coerce`).
        what: what the options configure, for messages (default: the class name).
        source: the file the values came from, prefixed to every message.
        **overrides: values that win over ``values``.

    Raises:
        ConfigError: an unknown option (with a close match), a value of the wrong type, or a
            value the dataclass's own ``__post_init__`` refuses.
    """
    what = what or cls.__name__
    prefix = f"{source}: " if source is not None else ""
    merged = {**(values or {}), **overrides}
    hints = field_hints(cls)
    try:
        check_keys(merged, hints)
        resolved = {k: coerce(v, hints[k], k) for k, v in merged.items()}
        return cls(**resolved)
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"{prefix}{what}: {exc}") from exc


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain JSON/YAML types (tuples become lists)."""
    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


def parse_assignments(items: Iterable[str], option: str = "--param") -> dict[str, Any]:
    """``["a=1", "b.c=[1, 2]"]`` -> ``{"a": 1, "b": {"c": [1, 2]}}`` (values parsed as YAML).

    Raises:
        ConfigError: an item without ``=`` or with an empty key.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError(f"{option} {item!r}: expected KEY=VALUE (e.g. vision.fps=5)")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{option} {item!r}: {part!r} is given both as a value and "
                                  "as a group")
            node = child
        node[parts[-1]] = _yaml_value(text)
    return out


def _optional_of(hint: Any) -> Any:
    """``X`` for ``X | None`` (else ``hint``)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _is_pair(hint: Any) -> bool:
    args = typing.get_args(hint)
    return (typing.get_origin(hint) is tuple and len(args) == 2 and args[1] is not Ellipsis
            and all(a in (int, float) for a in args))


def parse_text(text: str, hint: Any, name: str, *, keys: Iterable[str] | None = None) -> Any:
    """A command-line string as a value of type ``hint``: YAML (as :func:`coerce` reads it),
    plus the shorthands that YAML cannot say briefly.

    - a mapping as ``K=V,K=V`` (``text=0.1,audio=0.3,vision=0.2``); with ``keys`` (e.g. the
      modalities), one value alone stands for every key (``0.2``);
    - a list or tuple as comma-separated items (``1,2,3``);
    - a pair of numbers as ``MIN:MAX`` (``10:50``; ``7`` is ``7:7``).

    Text starting with ``[`` or ``{`` is read as YAML.

    Raises:
        ConfigError: a malformed item, a key not in ``keys`` (with a close match), or a value
            of the wrong type (the message names the option).
    """
    text = str(text).strip()
    inner = _optional_of(hint)
    origin = typing.get_origin(inner)
    args = typing.get_args(inner)
    if text.startswith(("[", "{")) or (text in ("null", "~", "") and inner is not hint):
        return coerce(text, hint, name)
    if origin in (dict, Mapping):
        value_hint = args[1] if args else Any
        if "=" in text:
            pairs: dict[str, Any] = {}
            for part in text.split(","):
                key, sep, raw = part.partition("=")
                if not sep or not key.strip():
                    raise ConfigError(f"option {name!r}: {part.strip()!r} in {text!r} is not "
                                      "KEY=VALUE")
                pairs[key.strip()] = parse_text(raw, value_hint, f"{name}[{key.strip()}]")
            if keys is not None:
                check_keys(pairs, keys, name)
            return coerce(pairs, hint, name)
        if keys is not None:
            value = parse_text(text, value_hint, name)
            return {key: value for key in keys}
    if _is_pair(inner):
        low, _, high = text.partition(":")
        return coerce([_yaml_value(low), _yaml_value(high or low)], hint, name)
    if origin in (list, tuple) and args:
        item = args[0]
        return coerce([parse_text(p, item, f"{name}[{i}]") for i, p in enumerate(text.split(","))],
                      hint, name)
    return coerce(text, hint, name)


def format_text(value: Any, hint: Any = Any) -> str:
    """The command-line text :func:`parse_text` reads back as ``value`` of type ``hint``."""
    inner = _optional_of(hint)
    args = typing.get_args(inner)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        value_hint = args[1] if typing.get_origin(inner) in (dict, Mapping) and args else Any
        return ",".join(f"{k}={format_text(v, value_hint)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        if _is_pair(inner):
            return f"{format_text(value[0])}:{format_text(value[1])}"
        item = args[0] if typing.get_origin(inner) in (list, tuple) and args else Any
        return ",".join(format_text(v, item) for v in value)
    if isinstance(value, float):
        return repr(value)
    return os.fspath(value) if isinstance(value, os.PathLike) else str(value)


def read_yaml_mapping(path: str | os.PathLike, *, sections: Iterable[str] | None = None
                      ) -> dict[str, Any]:
    """A YAML file that must hold a mapping (empty file: ``{}``).

    Args:
        path: the file.
        sections: if given, the only top-level keys allowed, each holding a mapping.

    Raises:
        ConfigError: unreadable, not YAML, not a mapping, or an unknown section; names the file.
    """
    import yaml

    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        raise ConfigError(f"{path}: cannot read the YAML file: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                          ) from None
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: expected a mapping, got {type(loaded).__name__}")
    if sections is not None:
        sections = list(sections)
        unknown = sorted(str(k) for k in loaded if k not in sections)
        if unknown:
            raise ConfigError(f"{path}: unknown section(s) {unknown}; expected "
                              f"{', '.join(repr(s) for s in sections)}")
        for key in sections:
            if loaded.get(key) is None:
                loaded[key] = {}
            elif not isinstance(loaded[key], dict):
                raise ConfigError(f"{path}: section {key!r} must be a mapping")
    return loaded


__all__ = ["ConfigError", "check_keys", "coerce", "field_hints", "format_text", "from_mapping",
           "parse_assignments", "parse_text", "read_yaml_mapping", "to_dict"]
