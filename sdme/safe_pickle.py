"""A restricted unpickler for feature files published as pickles (numpy arrays in containers).

Unpickling runs code: a pickle names Python callables (``GLOBAL`` / ``STACK_GLOBAL`` opcodes)
that the standard unpickler imports and calls, so a crafted file can run ``os.system`` the moment
it is loaded (https://docs.python.org/3/library/pickle.html, "Restricting Globals"). MMSA's
feature files (``aligned_50.pkl`` and friends) are pickles, so SDME reads them with
:func:`load`, whose ``find_class`` admits only what numpy arrays, numpy scalars and dtypes need
to be rebuilt, plus a few plain containers:

- ``numpy.ndarray``, ``numpy.dtype`` and the array/scalar reconstructors
  ``numpy[._]core.multiarray._reconstruct``, ``numpy[._]core.multiarray.scalar`` and
  ``numpy[._]core.numeric._frombuffer`` (pickle protocol 5) — under both the numpy 1 module
  names (``numpy.core``, what MMSA's files were written with) and the numpy 2 ones
  (``numpy._core``); both resolve to the functions of the installed numpy;
- ``_codecs.encode``, which pickle protocol 2 uses to store ``bytes``;
- ``builtins`` (Python 2: ``__builtin__``) containers and scalars (``dict``, ``list``,
  ``tuple``, ``set``, ``frozenset``, ``str``, ``bytes``, ``bytearray``, ``int``, ``float``,
  ``complex``, ``bool``) and ``collections.OrderedDict``.

Anything else is refused, before it is imported, with :class:`UnsafePickleError` naming the file
and the global. Object arrays are fine: their elements are unpickled by the same restricted
unpickler.
"""

from __future__ import annotations

import builtins
import collections
import os
import pickle
from pathlib import Path
from typing import Any, BinaryIO


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a global outside the allow-list (it was not imported or called)."""


def _numpy_globals() -> dict[tuple[str, str], Any]:
    import numpy as np
    from numpy._core import multiarray, numeric

    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


_BUILTINS = ("dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray", "int",
             "float", "complex", "bool")


def allowed_globals() -> dict[tuple[str, str], Any]:
    """The ``(module, name) -> object`` table the restricted unpickler resolves against."""
    import codecs

    allowed = _numpy_globals()
    for module in ("builtins", "__builtin__"):  # protocols < 3 write Python 2's module name
        allowed.update({(module, name): getattr(builtins, name) for name in _BUILTINS})
    allowed[("collections", "OrderedDict")] = collections.OrderedDict
    allowed[("_codecs", "encode")] = codecs.encode
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` serves only :func:`allowed_globals`."""

    def __init__(self, file: BinaryIO, *, source: str = "<pickle>") -> None:
        super().__init__(file, fix_imports=True, encoding="latin1")
        self._source = source
        self._allowed = allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source}: refused to load global {module}.{name}: only numpy arrays, "
                "dtypes, scalars and plain containers are allowed in a feature pickle (the file "
                "may be corrupt or malicious; nothing from it was executed)") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self._source}: persistent ids are not allowed ({pid!r})")


def load(path: str | os.PathLike) -> Any:
    """Unpickles a file with :class:`RestrictedUnpickler`.

    ``encoding="latin1"`` lets numpy arrays pickled under Python 2 load (numpy's own advice).

    Raises:
        UnsafePickleError: the file names a global outside the allow-list.
        pickle.UnpicklingError: the file is not a valid pickle (message names the file).
        OSError: the file cannot be read.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        try:
            return RestrictedUnpickler(fh, source=str(path)).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
                IndexError) as exc:
            raise pickle.UnpicklingError(f"{path}: not a valid feature pickle "
                                         f"({type(exc).__name__}: {exc})") from exc


def loads(data: bytes, *, source: str = "<bytes>") -> Any:
    """:func:`load` for bytes already in memory."""
    import io

    return RestrictedUnpickler(io.BytesIO(data), source=source).load()


__all__ = ["RestrictedUnpickler", "UnsafePickleError", "allowed_globals", "load", "loads"]
