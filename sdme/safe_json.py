"""Bounded JSON reading for files users hand to SDME (``sdme.json``, ``build_info.json``,
benchmark results and predictions lines).

``json.loads`` recurses once per nesting level, so a document nested 100,000 deep ends in a
``RecursionError``, and since Python 3.11 an integer literal over 4,300 digits raises a bare
``ValueError`` (CVE-2020-10735's limit, https://docs.python.org/3/library/stdtypes.html#int-max-str-digits).
:func:`loads` checks both *before* they can happen, in linear time: the nesting depth of the
document (strings skipped) must not exceed :data:`MAX_DEPTH`, and no integer literal may have more
than :data:`MAX_INT_DIGITS` digits. :func:`load` adds a size limit and UTF-8 decoding. Every
problem is one :class:`JSONInputError` line naming the file (and line, for JSON Lines) and what is
wrong; the standard parser does the rest.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

#: Deepest nesting of arrays and objects accepted (SDME's own files nest at most 8).
MAX_DEPTH = 64
#: Longest integer literal accepted, in digits (seeds, counts and sizes need at most 20).
MAX_INT_DIGITS = 40
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_LONG_DIGITS = re.compile(rf"\d{{{MAX_INT_DIGITS + 1}}}")
_OPENING = (ord("["), ord("{"))


class JSONInputError(ValueError):
    """A JSON document that cannot be read; the message names the file and the problem.

    Attributes:
        where: The file (``file:line`` for JSON Lines), or None.
        problem: What is wrong.
    """

    def __init__(self, where: str | None, problem: str) -> None:
        super().__init__(f"{where}: {problem}" if where else problem)
        self.where = where
        self.problem = problem


def _scan(text: str) -> tuple[int, bool]:
    """(deepest nesting of ``[``/``{`` outside strings, whether a run of more than
    :data:`MAX_INT_DIGITS` digits occurs outside strings), in linear time."""
    bare = _STRING.sub('""', text)
    long_number = _LONG_DIGITS.search(bare) is not None
    brackets = _NOT_BRACKET.sub("", bare)
    if not brackets:
        return 0, long_number
    codes = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    steps = np.where((codes == _OPENING[0]) | (codes == _OPENING[1]), 1, -1)
    return int(np.cumsum(steps).max()), long_number


def nesting_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in ``text`` outside strings (linear time)."""
    return _scan(text)[0]


def _checked_int(literal: str) -> int:
    digits = len(literal.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise JSONInputError(None, f"an integer literal of {digits} digits (at most "
                             f"{MAX_INT_DIGITS})")
    return int(literal)


def loads(text: str, *, source: str | os.PathLike | None = None, line: int | None = None,
          max_depth: int = MAX_DEPTH) -> Any:
    """Parses one JSON document with the limits of the module docstring.

    Args:
        text: The document.
        source: The file it comes from (for messages).
        line: Its line in ``source`` (JSON Lines).
        max_depth: Deepest nesting accepted.

    Raises:
        JSONInputError: Malformed JSON, nesting over ``max_depth``, or an oversized integer.
    """
    where = ":".join(str(p) for p in (source, line) if p is not None) or None
    depth, long_number = 0, False
    if text.count("[") + text.count("{") > max_depth or len(text) > MAX_INT_DIGITS:
        depth, long_number = _scan(text)
    if depth > max_depth:
        raise JSONInputError(where, f"JSON nested {depth} levels deep (at most {max_depth})")
    try:  # the int hook costs a Python call per integer: only when a long one may be there
        return json.loads(text, parse_int=_checked_int) if long_number else json.loads(text)
    except JSONInputError as exc:
        raise JSONInputError(where, exc.problem) from None
    except json.JSONDecodeError as exc:
        raise JSONInputError(where, f"malformed JSON: {exc}") from None
    except (RecursionError, ValueError) as exc:  # defensive: the checks above prevent these
        raise JSONInputError(where, f"unreadable JSON ({type(exc).__name__}: {exc})") from None


def load(path: str | os.PathLike, *, max_bytes: int | None = None,
         max_depth: int = MAX_DEPTH) -> Any:
    """Reads a JSON file: size limit, UTF-8 (a BOM is accepted), then :func:`loads`.

    Raises:
        JSONInputError: Oversized, not UTF-8, or not acceptable JSON (see :func:`loads`).
        FileNotFoundError: No such file.
        OSError: The file cannot be read.
    """
    path = Path(path)
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise JSONInputError(str(path), f"file is {size} bytes, over the {max_bytes}-byte limit")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JSONInputError(str(path), f"not UTF-8 text ({exc})") from None
    return loads(text, source=path, max_depth=max_depth)


__all__ = ["JSONInputError", "MAX_DEPTH", "MAX_INT_DIGITS", "load", "loads", "nesting_depth"]
