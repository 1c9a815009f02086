"""A restricted, bounded unpickler for feature files published as pickles (numpy arrays in
containers).

Unpickling runs code: a pickle names Python callables (``GLOBAL`` / ``STACK_GLOBAL`` opcodes)
that the standard unpickler imports and calls, so a crafted file can run ``os.system`` the moment
it is loaded (https://docs.python.org/3/library/pickle.html, "Restricting Globals"). Restricting
the globals is not enough either: an allowed ``bytearray(3_000_000_000)``, an ``ndarray`` of
1e12 elements, a ``BINBYTES8`` opcode declaring 2**60 bytes or a list that holds itself
("billion laughs") exhaust memory or time from a file of a few bytes. MMSA's feature files
(``aligned_50.pkl`` and friends) are pickles, so SDME reads them with :func:`load`, which
interprets the pickle opcodes itself (the opcodes of protocols 0-5 as ``pickletools``
documents them) and admits only what an honest feature pickle needs:

- **Opcodes.** Numbers, strings, bytes, ``None``/booleans, tuples, lists, dicts, sets, the memo,
  ``GLOBAL``/``STACK_GLOBAL`` (through the allow-list below), ``REDUCE`` (only on an allow-listed
  callable) and ``BUILD`` (only on numpy arrays and dtypes). Refused: ``INST``, ``OBJ``,
  ``NEWOBJ(_EX)``, extension codes, persistent ids and out-of-band buffers (no standard pickler
  writes them for these types).
- **Globals.** ``numpy.ndarray`` (only as the class handed to ``_reconstruct``), ``numpy.dtype``
  (plain dtypes: booleans, integers, floats, complex, str, bytes, objects; no structured,
  sub-array or datetime dtypes) and the reconstructors ``numpy[._]core.multiarray._reconstruct``
  (an empty array, as numpy pickles it), ``numpy[._]core.multiarray.scalar`` and
  ``numpy[._]core.numeric._frombuffer`` (protocol 5), under the numpy 1 module names
  (``numpy.core``, what MMSA's files were written with) and the numpy 2 ones (``numpy._core``);
  ``_codecs.encode`` with the ``latin1`` codec (how protocol 2 stores bytes); ``builtins`` (and
  Python 2's ``__builtin__``) ``bytes``, ``bytearray`` (from bytes, never from a size), ``set``,
  ``frozenset`` and ``complex``; ``collections.OrderedDict``. Anything else is refused before it
  is imported.
- **Sizes.** Every length an opcode declares must fit in what remains of the file; an array's
  data must be in the file (its element count times item size equals the bytes given, or the
  element count equals the list given for object arrays). Everything built is charged to a
  budget of :data:`MEMORY_FACTOR` times the file size plus :data:`MEMORY_MARGIN` (payload bytes,
  references and per-object overhead, roughly what CPython allocates), so memory and time are
  linear in the file size; a file that needs more is refused.
- **Shape.** Dict keys and set items are strings, bytes, numbers or small tuples of them, with at
  most :data:`MAX_NONSTRING_KEYS` non-string ones in the file (crafted colliding numbers make hash
  tables quadratic). After loading, the object graph is walked once: containers nested deeper
  than :data:`MAX_DEPTH`, a container that holds itself, or a graph whose expansion (a container
  shared through the memo counts every time it is reached, as ``numpy.asarray`` or ``str`` would
  reach it) has more nodes than the file has bytes are refused.

Every refusal is one line naming the file and the reason (:class:`UnsafePickleError`); a file
that is simply not a valid pickle gets ``pickle.UnpicklingError`` naming the file. Nothing from
the file is executed beyond the allow-listed constructors, which are wrapped to check their
arguments first. Honest files are mostly a few large array payloads, so the interpreter's
per-opcode cost hardly shows: ``perf/bench_safe_pickle.py`` compares its time and peak memory
with the C unpickler's.

This module is longer than the project's ~600 lines on purpose: the opcode interpreter, its
allow-list and its budget form one security boundary, best read and reviewed in one file.
"""

from __future__ import annotations

import codecs
import collections
import io
import math
import os
import pickle
import re
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

#: Containers may nest this deep (an MMSA file nests 4: dict, dict, object array, string).
MAX_DEPTH = 100
#: Budget of what loading may build: this many times the file size ...
MEMORY_FACTOR = 4
#: ... plus this many bytes.
MEMORY_MARGIN = 64 * 1024 * 1024
#: Dict keys and set items other than str/bytes (numbers, tuples) allowed in one file.
MAX_NONSTRING_KEYS = 1000
#: Largest integer opcode payload, in bytes (a feature pickle holds no 512-bit numbers).
MAX_INT_BYTES = 64
_KEY_NODES = 64  # most nodes in one tuple key
_ALLOWED_KINDS = frozenset("biufcUSO")
_DTYPE_CODE = re.compile(r"^[<>=|]?[biufcUSO]\d{0,6}$")
_SIZE = {"list": 56, "dict": 64, "set": 216, "tuple": 40, "str": 49, "bytes": 33, "int": 32,
         "float": 24, "slot": 8, "array": 112}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle refused on safety grounds: a global outside the allow-list (it was not imported
    or called), a construct no honest feature pickle uses, or a size the file cannot justify."""


class _Invalid(Exception):
    """Internal: the file is not a valid pickle (becomes ``pickle.UnpicklingError``)."""


class _Refused(Exception):
    """Internal: the file is refused (becomes :class:`UnsafePickleError`)."""


class _NdarrayClass:
    """Stands for ``numpy.ndarray`` on the unpickler's stack: handed to ``_reconstruct`` it
    means the real class; called directly (numpy never pickles that way) it is refused."""

    def __repr__(self) -> str:
        return "numpy.ndarray"


_NDARRAY = _NdarrayClass()


def _count(shape: Any) -> int:
    if not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape):
        raise _Refused(f"array shape {_short(shape)} is not a tuple of non-negative integers")
    if len(shape) > 64:
        raise _Refused(f"array has {len(shape)} dimensions")
    return math.prod(shape)


def _short(value: Any) -> str:
    text = repr(value) if isinstance(value, (int, float, str, bytes, tuple, type(None))) \
        else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def _plain_dtype(dtype: np.dtype) -> np.dtype:
    """``dtype`` if it is a plain dtype exactly as numpy makes it from its type string (item
    size, alignment and flags included: a pickled dtype state could set them apart)."""
    if dtype.kind not in _ALLOWED_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise _Refused(f"dtype {dtype} is not allowed in a feature pickle (only plain booleans, "
                       "integers, floats, complex, str, bytes and objects)")
    canonical = np.dtype(dtype.str)
    if (canonical != dtype or (canonical.itemsize, canonical.alignment, canonical.flags)
            != (dtype.itemsize, dtype.alignment, dtype.flags)):
        raise _Refused(f"dtype state gives {dtype.str} an item size of {dtype.itemsize}, "
                       f"alignment {dtype.alignment} and flags {dtype.flags}, unlike numpy's")
    return dtype


class _Loader:
    """One run of the bounded interpreter over one file (module docstring)."""

    def __init__(self, fh: BinaryIO, size: int) -> None:
        self.fh = fh
        self.size = size
        self.file_pos = 0  # bytes read from fh
        self.frame = b""
        self.frame_pos = 0
        self.frame_len = 0
        self.budget = MEMORY_FACTOR * size + MEMORY_MARGIN
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.nonstring_keys = 0
        self.unbuilt: dict[int, np.dtype] = {}  # dtypes made by numpy.dtype, not yet BUILT
        self.proto = 0
        self.globals = self._globals()
        self.callables = {id(f) for f in self.globals.values() if f is not _NDARRAY}

    # --- budget and input ---------------------------------------------------------------------

    def charge(self, nbytes: int) -> None:
        self.budget -= nbytes
        if self.budget < 0:
            raise _Refused(f"building it would take more than {MEMORY_FACTOR} x its {self.size} "
                           f"bytes + {MEMORY_MARGIN // 2**20} MiB of memory (a feature pickle "
                           "holds its data; this one multiplies it)")

    def remaining(self) -> int:
        return (self.frame_len - self.frame_pos) + (self.size - self.file_pos)

    def read(self, n: int, what: str = "data") -> bytes:
        """``n`` bytes of the current frame, else of the file; a length the file cannot hold is
        refused before anything is allocated."""
        pos = self.frame_pos
        if pos < self.frame_len:
            end = pos + n
            if end > self.frame_len or n < 0:
                raise _Invalid(f"{what} of {n} bytes runs past the end of its frame")
            self.frame_pos = end
            return self.frame[pos:end]
        if not 0 <= n <= self.size - self.file_pos:
            raise _Invalid(f"{what} declares {n} bytes but only {self.size - self.file_pos} "
                           "remain in the file (truncated or corrupt)")
        data = self.fh.read(n)
        self.file_pos += len(data)
        if len(data) != n:
            raise _Invalid("unexpected end of file")
        return data

    def readline(self) -> bytes:
        if self.frame_pos < self.frame_len:
            end = self.frame.find(b"\n", self.frame_pos)
            if end < 0:
                raise _Invalid("pickle exhausted before end of frame")
            data = self.frame[self.frame_pos: end + 1]
            self.frame_pos = end + 1
        else:
            data = self.fh.readline(self.size - self.file_pos)
            self.file_pos += len(data)
            if not data.endswith(b"\n"):
                raise _Invalid("unexpected end of file in a text opcode")
        self.charge(len(data))
        return data[:-1]

    def unpack(self, fmt: str) -> int:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    # --- the stack ------------------------------------------------------------------------------

    def push(self, value: Any, cost: int = 0) -> None:
        self.charge(_SIZE["slot"] + cost)
        self.stack.append(value)

    def pop(self) -> Any:
        if not self.stack:
            raise _Invalid("stack underflow")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise _Invalid("stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise _Invalid("no MARK on the stack")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def key(self, value: Any) -> Any:
        """A dict key or set item that is cheap and safe to hash (module docstring)."""
        if isinstance(value, (str, bytes)):
            return value
        self.nonstring_keys += 1
        if self.nonstring_keys > MAX_NONSTRING_KEYS:
            raise _Refused(f"more than {MAX_NONSTRING_KEYS} dict keys or set items that are not "
                           "strings")
        todo, nodes = [value], 0
        while todo:
            item = todo.pop()
            nodes += 1
            if nodes > _KEY_NODES:
                raise _Refused(f"a dict key or set item with more than {_KEY_NODES} parts")
            if isinstance(item, (tuple, frozenset)):
                todo.extend(item)
            elif not isinstance(item, (str, bytes, int, float, complex, type(None), np.generic)):
                raise _Refused(f"a dict key or set item of type {type(item).__name__}")
        return value

    # --- the allow-list -------------------------------------------------------------------------

    def _globals(self) -> dict[tuple[str, str], Any]:
        table: dict[tuple[str, str], Any] = {("numpy", "ndarray"): _NDARRAY,
                                             ("numpy", "dtype"): self._dtype}
        for package in ("numpy.core", "numpy._core"):
            table[(f"{package}.multiarray", "_reconstruct")] = self._reconstruct
            table[(f"{package}.multiarray", "scalar")] = self._scalar
            table[(f"{package}.numeric", "_frombuffer")] = self._frombuffer
        for module in ("builtins", "__builtin__"):  # protocols < 3 write Python 2's name
            table.update({(module, "bytes"): self._bytes, (module, "bytearray"): self._bytearray,
                          (module, "set"): self._set, (module, "frozenset"): self._frozenset,
                          (module, "complex"): self._complex})
        table[("collections", "OrderedDict")] = self._ordered_dict
        table[("_codecs", "encode")] = self._encode
        return table

    def _dtype(self, code: Any, align: Any = False, copy: Any = False) -> np.dtype:
        if not isinstance(code, str) or not _DTYPE_CODE.match(code):
            raise _Refused(f"numpy.dtype({_short(code)}) is not a plain dtype code")
        if align not in (False, True, 0, 1) or copy not in (True, 1):
            # copy=False would hand out numpy's shared dtype, which BUILD would then change
            raise _Refused("numpy.dtype called with unexpected flags (pickles pass copy=True)")
        self.charge(200)
        dtype = _plain_dtype(np.dtype(code, bool(align), True))
        self.unbuilt[id(dtype)] = dtype
        return dtype

    def dtype_in_use(self, dtype: Any) -> np.dtype:
        """A dtype an array or scalar is about to use: plain, and already BUILT (a BUILD after
        use could change the item size of arrays that hold it)."""
        if not isinstance(dtype, np.dtype):
            raise _Refused(f"expected a numpy dtype, got {_short(dtype)}")
        if id(dtype) in self.unbuilt:
            raise _Refused("a dtype used before its state was set (numpy pickles set it first)")
        return _plain_dtype(dtype)

    def _reconstruct(self, subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
        from numpy._core import multiarray

        if subtype is not _NDARRAY:
            raise _Refused(f"_reconstruct of {_short(subtype)}: only numpy.ndarray")
        if _count(shape) != 0:  # numpy pickles _reconstruct(ndarray, (0,), b'b'), then BUILD
            raise _Refused(f"_reconstruct with shape {_short(shape)}: an array whose data is "
                           "not in the file")
        if typecode not in (b"b", "b"):
            raise _Refused(f"_reconstruct with type code {_short(typecode)}")
        self.charge(_SIZE["array"])
        return multiarray._reconstruct(np.ndarray, shape, typecode)

    def _scalar(self, dtype: Any, data: Any = None) -> Any:
        from numpy._core import multiarray

        dtype = self.dtype_in_use(dtype)
        if dtype.hasobject:
            return data
        if isinstance(data, str):
            data = data.encode("latin1")
        if not isinstance(data, bytes) or len(data) != dtype.itemsize:
            raise _Refused(f"numpy scalar of {dtype} from {_short(data)} (expected "
                           f"{dtype.itemsize} bytes)")
        self.charge(_SIZE["array"] + len(data))
        return multiarray.scalar(dtype, data)

    def _frombuffer(self, buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
        from numpy._core import numeric

        dtype = self.dtype_in_use(dtype)
        if dtype.hasobject or not isinstance(buffer, (bytes, bytearray)):
            raise _Refused("_frombuffer of objects or of something other than bytes")
        count = _count(shape)
        if count * dtype.itemsize != len(buffer) or (dtype.itemsize == 0 and count):
            raise _Refused(f"_frombuffer: shape {_short(shape)} of {dtype} needs "
                           f"{count * dtype.itemsize} bytes, the file gives {len(buffer)}")
        if order not in ("C", "F", "A"):
            raise _Refused(f"_frombuffer with order {_short(order)}")
        self.charge(_SIZE["array"])
        return numeric._frombuffer(buffer, dtype, shape, order)

    def _bytes(self, *args: Any) -> bytes:
        if not args:
            return b""
        if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
            self.charge(_SIZE["bytes"] + len(args[0]))
            return bytes(args[0])
        raise _Refused(f"bytes{_short(args)}: only bytes() or bytes(<bytes>) (never a size)")

    def _bytearray(self, *args: Any) -> bytearray:
        if not args:
            return bytearray()
        if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
            data = args[0]
        elif (len(args) == 2 and isinstance(args[0], str)
              and str(args[1]).lower().replace("-", "") == "latin1"):
            data = args[0].encode("latin1")
        else:
            raise _Refused(f"bytearray{_short(args)}: only bytearray(<bytes>) (never a size)")
        self.charge(_SIZE["bytes"] + len(data))
        return bytearray(data)

    def _items(self, what: str, args: tuple) -> list[Any]:
        if len(args) > 1 or (args and not isinstance(args[0], (list, tuple))):
            raise _Refused(f"{what}() of {_short(args)}: only of a list")
        items = list(args[0]) if args else []
        self.charge(_SIZE["set"] + 2 * _SIZE["slot"] * len(items))
        return [self.key(item) for item in items]

    def _set(self, *args: Any) -> set:
        return set(self._items("set", args))

    def _frozenset(self, *args: Any) -> frozenset:
        return frozenset(self._items("frozenset", args))

    def _complex(self, real: Any = 0.0, imag: Any = 0.0) -> complex:
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (real, imag)):
            raise _Refused("complex() of something other than two numbers")
        self.charge(32)
        return complex(real, imag)

    def _ordered_dict(self, *args: Any) -> collections.OrderedDict:
        if args:
            raise _Refused("OrderedDict() with arguments (pickle fills it with SETITEMS)")
        self.charge(_SIZE["dict"] * 2)
        return collections.OrderedDict()

    def _encode(self, obj: Any, encoding: Any = "utf-8", errors: Any = "strict") -> bytes:
        if (not isinstance(obj, str) or not isinstance(encoding, str)
                or encoding.lower().replace("-", "").replace("_", "") != "latin1"
                or errors != "strict"):
            raise _Refused(f"_codecs.encode({_short(obj)}, {_short(encoding)}): only the latin1 "
                           "codec, which pickle uses to store bytes")
        self.charge(_SIZE["bytes"] + len(obj))
        try:
            return codecs.encode(obj, "latin1")
        except UnicodeEncodeError as exc:
            raise _Invalid(f"_codecs.encode: {exc}") from None

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.globals[(module, name)]
        except KeyError:
            raise _Refused(f"refused to load global {module}.{name}: only numpy arrays, dtypes, "
                           "scalars and plain containers are allowed in a feature pickle (the "
                           "file may be corrupt or malicious; nothing from it was executed)"
                           ) from None

    # --- BUILD ---------------------------------------------------------------------------------

    def build(self, inst: Any, state: Any) -> None:
        if isinstance(inst, np.ndarray) and type(inst) is np.ndarray:
            self._build_array(inst, state)
        elif isinstance(inst, np.dtype):
            if id(inst) not in self.unbuilt:
                raise _Refused("BUILD on a dtype that is already set or in use")
            if (not isinstance(state, tuple) or len(state) != 8 or state[0] not in (3, 4)
                    or state[1] not in ("<", ">", "|", "=") or state[2:5] != (None, None, None)
                    or not all(type(v) is int for v in state[5:8])):
                raise _Refused(f"dtype state {_short(state)} (only plain dtypes)")
            del self.unbuilt[id(inst)]
            inst.__setstate__(state)
            _plain_dtype(inst)
        else:
            raise _Refused(f"BUILD on {type(inst).__name__} (only numpy arrays and dtypes)")

    def _build_array(self, array: np.ndarray, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise _Refused(f"array state {_short(state)}")
        if len(state) == 5:
            if state[0] != 1:
                raise _Refused(f"array state version {_short(state[0])}")
            state = state[1:]
        shape, dtype, fortran, data = state
        dtype = self.dtype_in_use(dtype)
        count = _count(shape)
        if fortran not in (False, True, 0, 1):
            raise _Refused("array state with a bad Fortran flag")
        if dtype.hasobject:
            if dtype != np.dtype(object) or not isinstance(data, list) or len(data) != count:
                raise _Refused(f"object array of shape {_short(shape)} from "
                               f"{_short(data)} (expected a list of {count} items)")
            self.charge(_SIZE["array"] + _SIZE["slot"] * count)
        else:
            if isinstance(data, str):
                data = data.encode("latin1")  # Python 2 pickles; numpy does the same
            if not isinstance(data, (bytes, bytearray)):
                raise _Refused(f"array data is a {type(data).__name__}, not bytes")
            if count * dtype.itemsize != len(data) or (dtype.itemsize == 0 and count):
                raise _Refused(f"array of shape {_short(shape)} and dtype {dtype} needs "
                               f"{count * dtype.itemsize} bytes of data; the file gives "
                               f"{len(data)}")
            self.charge(_SIZE["array"] + len(data))
        array.__setstate__((shape, dtype, bool(fortran), data))

    # --- the interpreter -----------------------------------------------------------------------

    def run(self) -> Any:
        dispatch = _DISPATCH
        while True:
            if self.frame_pos < self.frame_len:  # the common case, inlined
                code = self.frame[self.frame_pos]
                self.frame_pos += 1
            elif self.file_pos < self.size:
                code = self.read(1)[0]
            else:
                raise _Invalid("the file ends before its STOP opcode (truncated)")
            handler = dispatch.get(code)
            if handler is None:
                name = _REFUSED_OPCODES.get(code)
                if name is not None:
                    raise _Refused(f"opcode {name} (not used for numpy arrays and plain data)")
                raise _Invalid(f"invalid opcode {bytes([code])!r}")
            if handler(self) is _STOP:
                if self.metastack or len(self.stack) != 1:
                    raise _Invalid("STOP with an unbalanced stack")
                return self.stack.pop()


_STOP = object()
_REFUSED_OPCODES = {pickle.INST[0]: "INST", pickle.OBJ[0]: "OBJ", pickle.NEWOBJ[0]: "NEWOBJ",
                    pickle.NEWOBJ_EX[0]: "NEWOBJ_EX", pickle.EXT1[0]: "EXT1",
                    pickle.EXT2[0]: "EXT2", pickle.EXT4[0]: "EXT4", pickle.PERSID[0]: "PERSID",
                    pickle.BINPERSID[0]: "BINPERSID", pickle.NEXT_BUFFER[0]: "NEXT_BUFFER",
                    pickle.READONLY_BUFFER[0]: "READONLY_BUFFER"}


# --- opcode handlers (pickletools documents each opcode) ---------------------------------------

def _proto(u: _Loader) -> None:
    u.proto = u.read(1)[0]
    if u.proto > pickle.HIGHEST_PROTOCOL:
        raise _Invalid(f"unsupported pickle protocol {u.proto}")


def _frame(u: _Loader) -> None:
    size = u.unpack("<Q")
    if u.frame_pos < u.frame_len:
        raise _Invalid("a new frame before the end of the current one")
    u.frame, u.frame_pos, u.frame_len = b"", 0, 0
    u.charge(_SIZE["bytes"] + min(size, u.size))
    u.frame = u.read(size, "FRAME")
    u.frame_len = len(u.frame)


def _mark(u: _Loader) -> None:
    if len(u.metastack) >= MAX_DEPTH:
        raise _Refused(f"MARKs nested deeper than {MAX_DEPTH}")
    u.charge(_SIZE["list"])
    u.metastack.append(u.stack)
    u.stack = []


def _pop(u: _Loader) -> None:
    if u.stack:
        u.stack.pop()
    else:
        u.pop_mark()


def _int_from_text(text: bytes) -> int:
    if len(text) > 3 * MAX_INT_BYTES:
        raise _Refused(f"an integer literal of {len(text)} digits (a feature pickle holds no "
                       f"number over {MAX_INT_BYTES * 8} bits)")
    try:
        return int(text)
    except ValueError:
        raise _Invalid(f"bad integer literal {text[:40]!r}") from None


def _int(u: _Loader) -> None:
    line = u.readline()
    u.push(line == b"01" if line in (b"00", b"01") else _int_from_text(line), _SIZE["int"])


def _long_text(u: _Loader) -> None:
    line = u.readline()
    u.push(_int_from_text(line[:-1] if line.endswith(b"L") else line), _SIZE["int"])


def _long_bytes(u: _Loader, n: int) -> None:
    if n > MAX_INT_BYTES:
        raise _Refused(f"an integer of {n} bytes (a feature pickle holds no number over "
                       f"{MAX_INT_BYTES * 8} bits)")
    u.push(int.from_bytes(u.read(n), "little", signed=True), _SIZE["int"] + n)


def _float(u: _Loader) -> None:
    line = u.readline()
    try:
        u.push(float(line), _SIZE["float"])
    except ValueError:
        raise _Invalid(f"bad float literal {line[:40]!r}") from None


def _text(u: _Loader, data: bytes, encoding: str) -> None:
    try:  # at most 4 bytes per character of ``data``, which the file holds
        text = str(data, encoding, "surrogatepass" if encoding == "utf-8" else "strict")
    except UnicodeDecodeError as exc:
        raise _Invalid(f"string not valid {encoding}: {exc}") from None
    u.push(text, sys.getsizeof(text))


def _string(u: _Loader) -> None:
    data = u.readline()
    if len(data) < 2 or data[0] != data[-1] or data[:1] not in (b"'", b'"'):
        raise _Invalid("the STRING opcode argument must be quoted")
    try:
        decoded = codecs.escape_decode(data[1:-1])[0]
    except ValueError as exc:
        raise _Invalid(f"bad STRING escape: {exc}") from None
    _text(u, decoded, "latin1")


def _bytes(u: _Loader, n: int, what: str) -> None:
    data = u.read(n, what)
    u.push(data, _SIZE["bytes"] + len(data))


def _bytearray8(u: _Loader) -> None:
    n = u.unpack("<Q")
    if u.frame_pos < u.frame_len or not 0 <= n <= u.size - u.file_pos:
        data = u.read(n, "BYTEARRAY8")
        u.push(bytearray(data), 2 * (_SIZE["bytes"] + n))
        return
    u.charge(_SIZE["bytes"] + n)  # large buffers come outside frames: read straight into one
    buffer = bytearray(n)
    if u.fh.readinto(buffer) != n:
        raise _Invalid("unexpected end of file")
    u.file_pos += n
    u.push(buffer)


def _tuple_n(u: _Loader, n: int) -> None:
    if len(u.stack) < n:
        raise _Invalid("stack underflow")
    items = tuple(u.stack[len(u.stack) - n:])
    del u.stack[len(u.stack) - n:]
    u.push(items, _SIZE["tuple"] + _SIZE["slot"] * n)


def _pairs(u: _Loader, items: list[Any]) -> list[tuple[Any, Any]]:
    if len(items) % 2:
        raise _Invalid("odd number of items for a dict")
    u.charge(3 * _SIZE["slot"] * len(items))
    return [(u.key(items[i]), items[i + 1]) for i in range(0, len(items), 2)]


def _target(u: _Loader, kind: type, what: str) -> Any:
    target = u.top()
    if not isinstance(target, kind):
        raise _Invalid(f"{what} on a {type(target).__name__}")
    return target


def _append(u: _Loader) -> None:
    value = u.pop()
    _target(u, list, "APPEND").append(value)
    u.charge(_SIZE["slot"])


def _appends(u: _Loader) -> None:
    items = u.pop_mark()
    _target(u, list, "APPENDS").extend(items)
    u.charge(_SIZE["slot"] * len(items))


def _setitem(u: _Loader) -> None:
    value, key = u.pop(), u.pop()
    _target(u, dict, "SETITEM")[u.key(key)] = value
    u.charge(3 * _SIZE["slot"])


def _setitems(u: _Loader) -> None:
    pairs = _pairs(u, u.pop_mark())
    _target(u, dict, "SETITEMS").update(pairs)


def _additems(u: _Loader) -> None:
    items = u.pop_mark()
    target = _target(u, set, "ADDITEMS")
    u.charge(2 * _SIZE["slot"] * len(items))
    target.update(u.key(item) for item in items)


def _frozenset(u: _Loader) -> None:
    items = u.pop_mark()
    u.push(frozenset(u.key(item) for item in items),
           _SIZE["set"] + 2 * _SIZE["slot"] * len(items))


def _memo_index(line: bytes) -> int:
    try:
        if len(line) > 20:
            raise ValueError
        return int(line)
    except ValueError:
        raise _Invalid(f"bad memo index {line[:40]!r}") from None


def _get(u: _Loader, index: int) -> None:
    try:
        u.push(u.memo[index])
    except KeyError:
        raise _Invalid(f"memo value not found at index {index}") from None


def _put(u: _Loader, index: int) -> None:
    if index < 0:
        raise _Invalid("negative memo index")
    u.memo[index] = u.top()
    u.charge(4 * _SIZE["slot"])


def _global(u: _Loader) -> None:
    try:
        module = u.readline().decode("utf-8")
        name = u.readline().decode("utf-8")
    except UnicodeDecodeError:
        raise _Invalid("GLOBAL names are not UTF-8") from None
    u.push(u.find_class(module, name))


def _stack_global(u: _Loader) -> None:
    name, module = u.pop(), u.pop()
    if type(name) is not str or type(module) is not str:
        raise _Invalid("STACK_GLOBAL requires str")
    u.push(u.find_class(module, name))


def _reduce(u: _Loader) -> None:
    args, func = u.pop(), u.pop()
    if func is _NDARRAY:
        raise _Refused("numpy.ndarray called directly (numpy pickles arrays through "
                       "_reconstruct and BUILD): an allocation the file does not hold")
    if id(func) not in u.callables:
        raise _Refused(f"REDUCE on {_short(func)}, which is not an allowed constructor")
    if not isinstance(args, tuple):
        raise _Invalid("REDUCE arguments are not a tuple")
    try:
        value = func(*args)
    except TypeError as exc:
        raise _Invalid(f"bad constructor arguments: {exc}") from None
    u.push(value)


def _build(u: _Loader) -> None:
    state = u.pop()
    u.build(u.top(), state)


_DISPATCH: dict[int, Callable[[_Loader], Any]] = {op[0]: fn for op, fn in (
    (pickle.PROTO, _proto), (pickle.FRAME, _frame), (pickle.STOP, lambda u: _STOP),
    (pickle.MARK, _mark), (pickle.POP, _pop), (pickle.POP_MARK, lambda u: u.pop_mark()),
    (pickle.DUP, lambda u: u.push(u.top())),
    (pickle.NONE, lambda u: u.push(None)), (pickle.NEWTRUE, lambda u: u.push(True)),
    (pickle.NEWFALSE, lambda u: u.push(False)),
    (pickle.INT, _int), (pickle.LONG, _long_text),
    (pickle.LONG1, lambda u: _long_bytes(u, u.read(1)[0])),
    (pickle.LONG4, lambda u: _long_bytes(u, u.unpack("<i"))),
    (pickle.BININT, lambda u: u.push(u.unpack("<i"), _SIZE["int"])),
    (pickle.BININT1, lambda u: u.push(u.read(1)[0])),
    (pickle.BININT2, lambda u: u.push(u.unpack("<H"), _SIZE["int"])),
    (pickle.FLOAT, _float), (pickle.BINFLOAT, lambda u: u.push(u.unpack(">d"), _SIZE["float"])),
    (pickle.STRING, _string),
    (pickle.BINSTRING, lambda u: _text(u, u.read(u.unpack("<i"), "BINSTRING"), "latin1")),
    (pickle.SHORT_BINSTRING, lambda u: _text(u, u.read(u.read(1)[0]), "latin1")),
    (pickle.UNICODE, lambda u: _text(u, u.readline(), "raw-unicode-escape")),
    (pickle.BINUNICODE, lambda u: _text(u, u.read(u.unpack("<I"), "BINUNICODE"), "utf-8")),
    (pickle.SHORT_BINUNICODE, lambda u: _text(u, u.read(u.read(1)[0]), "utf-8")),
    (pickle.BINUNICODE8, lambda u: _text(u, u.read(u.unpack("<Q"), "BINUNICODE8"), "utf-8")),
    (pickle.BINBYTES, lambda u: _bytes(u, u.unpack("<I"), "BINBYTES")),
    (pickle.SHORT_BINBYTES, lambda u: _bytes(u, u.read(1)[0], "SHORT_BINBYTES")),
    (pickle.BINBYTES8, lambda u: _bytes(u, u.unpack("<Q"), "BINBYTES8")),
    (pickle.BYTEARRAY8, _bytearray8),
    (pickle.EMPTY_TUPLE, lambda u: u.push(())), (pickle.TUPLE1, lambda u: _tuple_n(u, 1)),
    (pickle.TUPLE2, lambda u: _tuple_n(u, 2)), (pickle.TUPLE3, lambda u: _tuple_n(u, 3)),
    (pickle.TUPLE, lambda u: (lambda items: u.push(
        tuple(items), _SIZE["tuple"] + _SIZE["slot"] * len(items)))(u.pop_mark())),
    (pickle.EMPTY_LIST, lambda u: u.push([], _SIZE["list"])),
    (pickle.LIST, lambda u: u.push(u.pop_mark(), _SIZE["list"])),
    (pickle.APPEND, _append), (pickle.APPENDS, _appends),
    (pickle.EMPTY_DICT, lambda u: u.push({}, _SIZE["dict"])),
    (pickle.DICT, lambda u: u.push(dict(_pairs(u, u.pop_mark())), _SIZE["dict"])),
    (pickle.SETITEM, _setitem), (pickle.SETITEMS, _setitems),
    (pickle.EMPTY_SET, lambda u: u.push(set(), _SIZE["set"])),
    (pickle.ADDITEMS, _additems), (pickle.FROZENSET, _frozenset),
    (pickle.GET, lambda u: _get(u, _memo_index(u.readline()))),
    (pickle.BINGET, lambda u: _get(u, u.read(1)[0])),
    (pickle.LONG_BINGET, lambda u: _get(u, u.unpack("<I"))),
    (pickle.PUT, lambda u: _put(u, _memo_index(u.readline()))),
    (pickle.BINPUT, lambda u: _put(u, u.read(1)[0])),
    (pickle.LONG_BINPUT, lambda u: _put(u, u.unpack("<I"))),
    (pickle.MEMOIZE, lambda u: _put(u, len(u.memo))),
    (pickle.GLOBAL, _global), (pickle.STACK_GLOBAL, _stack_global),
    (pickle.REDUCE, _reduce), (pickle.BUILD, _build),
)}


def _check_graph(root: Any, limit: int) -> None:
    """Walks the loaded object once (module docstring: depth, cycles, expansion)."""
    nodes = 0
    on_path: set[int] = set()
    todo: list[tuple[Any, int, bool]] = [(root, 0, False)]
    while todo:
        obj, depth, leaving = todo.pop()
        if leaving:
            on_path.discard(id(obj))
            continue
        nodes += 1
        if nodes > limit:
            raise _Refused(f"its containers expand to more than {limit} items (shared through "
                           "the memo): a 'billion laughs' that would exhaust memory when read")
        if isinstance(obj, (str, bytes, bytearray, int, float, complex, type(None), np.generic,
                            np.dtype)):
            continue
        if isinstance(obj, np.ndarray):
            if not obj.dtype.hasobject:
                continue
            children: Any = obj.ravel(order="K")
        elif isinstance(obj, dict):
            children = [item for pair in obj.items() for item in pair]
        elif isinstance(obj, (list, tuple, set, frozenset)):
            children = obj
        else:
            raise _Refused(f"an object of type {type(obj).__name__}")
        if id(obj) in on_path:
            raise _Refused("a container holds itself (a reference cycle through the memo)")
        if depth >= MAX_DEPTH:
            raise _Refused(f"containers nested deeper than {MAX_DEPTH}")
        on_path.add(id(obj))
        todo.append((obj, depth, True))
        todo.extend((child, depth + 1, False) for child in children)


def _load(fh: BinaryIO, size: int, source: str) -> Any:
    try:
        value = _Loader(fh, size).run()
        _check_graph(value, size + 1024)
        return value
    except _Refused as exc:
        raise UnsafePickleError(f"{source}: refused: {exc}") from None
    except (_Invalid, struct.error, EOFError) as exc:
        raise pickle.UnpicklingError(f"{source}: not a valid feature pickle ({exc})") from None
    except (ValueError, TypeError, OverflowError, IndexError, KeyError, AttributeError,
            UnicodeError) as exc:  # numpy's own checks of a state or buffer
        raise pickle.UnpicklingError(f"{source}: not a valid feature pickle "
                                     f"({type(exc).__name__}: {exc})") from None
    except (MemoryError, RecursionError) as exc:
        raise UnsafePickleError(f"{source}: refused: loading it ran out of "
                                f"{'memory' if isinstance(exc, MemoryError) else 'stack'}"
                                ) from None


def load(path: str | os.PathLike) -> Any:
    """Unpickles a feature file with the bounded interpreter (module docstring).

    Python 2 strings are decoded as latin1 (numpy's advice for arrays pickled under Python 2).

    Raises:
        UnsafePickleError: the file names a global outside the allow-list, uses a construct no
            feature pickle needs, or would need more memory or time than its size justifies.
        pickle.UnpicklingError: the file is not a valid pickle (message names the file).
        OSError: the file cannot be read.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        return _load(fh, os.fstat(fh.fileno()).st_size, str(path))


def loads(data: bytes, *, source: str = "<bytes>") -> Any:
    """:func:`load` for bytes already in memory."""
    return _load(io.BytesIO(data), len(data), source)


def allowed_globals() -> list[tuple[str, str]]:
    """The ``(module, name)`` globals a feature pickle may name."""
    return sorted(_Loader(io.BytesIO(b""), 0).globals)


__all__ = ["MAX_DEPTH", "MEMORY_FACTOR", "MEMORY_MARGIN", "UnsafePickleError",
           "allowed_globals", "load", "loads"]
