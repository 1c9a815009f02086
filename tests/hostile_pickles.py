"""Hostile pickles of issue #12, written opcode by opcode (``pickletools`` documents each):
tiny files that make an unbounded unpickler allocate gigabytes, loop for minutes or crash.

:data:`CASES` maps a name to ``(bytes, expected refusal fragment)``. They are run in a child
process with an address-space limit (``tests/test_mmsa.py``), so a regression fails the test
instead of eating the machine.
"""

from __future__ import annotations

import struct

P2 = b"\x80\x02"  # PROTO 2
P4 = b"\x80\x04"


def long1(n: int) -> bytes:
    """LONG1: an integer of up to 255 bytes."""
    data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def unicode(text: str) -> bytes:
    """BINUNICODE."""
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def as_id_array(payload: bytes) -> bytes:
    """``{"train": {"id": <payload>}}``: where MMSA's importer would turn it into an array."""
    return (P2 + b"}" + unicode("train") + b"}" + unicode("id") + payload + b"ss.")


def self_referencing_list(copies: int = 3000) -> bytes:
    """A list holding itself ``copies`` times through the memo (BINPUT 0, BINGET 0...)."""
    return b"]q\x00(" + b"h\x00" * copies + b"e"


def billion_laughs(levels: int = 30, width: int = 20) -> bytes:
    """L0 = [1] * width; Li = [L(i-1)] * width: 1.4 KB that expands to width ** levels items."""
    out = b"]q\x00(" + b"K\x01" * width + b"e"
    for i in range(1, levels):
        out += b"0]q" + bytes([i]) + b"(" + (b"h" + bytes([i - 1])) * width + b"e"
    return out


def nested_lists(depth: int) -> bytes:
    """``[[[...]]]`` ``depth`` deep, built on the stack (EMPTY_LIST x depth, APPEND x depth-1)."""
    return b"]" * depth + b"a" * (depth - 1)


def nested_through_memo(depth: int) -> bytes:
    """The same depth built through the memo, keeping the stack small."""
    out = b"]r" + struct.pack("<I", 0)
    for i in range(1, depth):
        out += b"0]r" + struct.pack("<I", i) + b"j" + struct.pack("<I", i - 1) + b"a"
    return out


def reconstruct(shape: tuple[int, ...]) -> bytes:
    """numpy's ``_reconstruct(ndarray, shape, b'b')`` with a shape whose data is not there."""
    dims = b"".join(long1(d) for d in shape)
    return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n(" + dims + b"tC\x01b\x87R")


def array_state(elements: int) -> bytes:
    """An honest empty array, then BUILD with a state claiming ``elements`` float64 values and
    giving 8 bytes."""
    return (reconstruct((0,)) + b"(K\x01" + long1(elements) + b"\x85"
            + b"cnumpy\ndtype\nX\x02\x00\x00\x00f8\x89\x88\x87R"
            + b"(K\x03X\x01\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
            + b"\x89C\x08" + b"\x00" * 8 + b"tb")


CASES: dict[str, tuple[bytes, str]] = {
    "bytearray_3e9": (P2 + b"c__builtin__\nbytearray\n" + long1(3_000_000_000) + b"\x85R.",
                      "bytearray(3000000000,): only bytearray(<bytes>) (never a size)"),
    "bytes_1e12": (P2 + b"c__builtin__\nbytes\n" + long1(10**12) + b"\x85R.",
                   "only bytes() or bytes(<bytes>) (never a size)"),
    "self_referencing_id": (as_id_array(self_referencing_list()),
                            "a container holds itself"),
    "billion_laughs_id": (as_id_array(billion_laughs()), "billion laughs"),
    "ndarray_3e9": (P2 + reconstruct((3_000_000_000,)) + b".",
                    "an array whose data is not in the file"),
    "ndarray_1e12_state": (P2 + array_state(10**12) + b".",
                           "needs 8000000000000 bytes of data; the file gives 8"),
    "ndarray_called": (P2 + b"cnumpy\nndarray\n" + long1(10**12) + b"\x85\x85R.",
                       "numpy.ndarray called directly"),
    "binbytes8_huge": (P4 + b"\x8e" + struct.pack("<Q", 2**60) + b"xx.",
                       "BINBYTES8 declares 1152921504606846976 bytes but only 3 remain"),
    "nested_100k": (P2 + nested_lists(100_000) + b".", "containers nested deeper than 100"),
    "nested_memo_20k": (P2 + nested_through_memo(20_000) + b".",
                        "containers nested deeper than 100"),
    "codecs_bogus": (P2 + b"c_codecs\nencode\n" + unicode("x") + unicode("bogus") + b"\x86R.",
                     "_codecs.encode('x', 'bogus'): only the latin1 codec"),
}
