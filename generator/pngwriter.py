"""A QR code as a 1-bit PNG whose bytes depend on the code alone, not on the zlib this Python links.

zlib.compress promises a stream any inflater reads, not the same stream everywhere: zlib 1.2 and 1.3,
zlib-ng (Fedora's zlib-ng-compat, the Windows builds of CPython 3.14) and Chromium's fork deflate the
same rows into different bytes. segno's PNG writer calls zlib.compress, so a guide's QR code, its
manifest line and a --zip holding it changed with the machine that built them. Here the IDAT stream is
made by the few lines below: one final block with the fixed Huffman codes of RFC 1951 (§3.2.6), greedy
matches against the byte one to the left or the row above, nothing chosen by a library. A QR code at
scale 6 is made of runs and repeated rows, so this is about three times zlib -9's size (1.6 KB for a profile link).

The rows are segno's (greyscale, bit depth 1, 0 = dark, each module row once with filter type 0 and
repeated with filter type 2, no interlace, no ancillary chunks), so the pixels are the ones segno draws and
`generator.qrdecode` and zbar read.
"""

from __future__ import annotations

import bisect
import re
import struct
import zlib
from collections.abc import Sequence

_LENGTH_BASE = (3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115,
                131, 163, 195, 227, 258)
_LENGTH_EXTRA = (0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0)
_DIST_BASE = (1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
              2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577)
_DIST_EXTRA = (0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13)
_MAX_MATCH, _MAX_DISTANCE = 258, 32768


def _reversed(code: int, count: int) -> tuple[int, int]:
    """A Huffman code as deflate packs it: its bits MSB first in an LSB-first stream (RFC 1951 §3.1.1)."""
    return int(f"{code:0{count}b}"[::-1], 2), count


# The fixed literal/length code (RFC 1951 §3.2.6) and the fixed 5-bit distance code, ready to pack.
_SYMBOLS = ([_reversed(0x30 + s, 8) for s in range(144)] + [_reversed(0x190 + s - 144, 9) for s in range(144, 256)]
            + [_reversed(s - 256, 7) for s in range(256, 280)]
            + [_reversed(0xC0 + s - 280, 8) for s in range(280, 288)])
_DISTANCES = [_reversed(code, 5) for code in range(30)]


def _runs(data: bytes, distance: int) -> tuple[list[int], list[int]]:
    """Where `data` repeats itself `distance` bytes back: the starts and ends of the stretches of positions j
    with data[j] == data[j - distance], found by XOR-ing the data with itself shifted (in C, not per byte)."""
    n = len(data)
    if distance >= n:
        return [], []
    shifted = int.from_bytes(data[distance:], "big") ^ int.from_bytes(data[:-distance], "big")
    same = shifted.to_bytes(n - distance, "big")  # a zero byte where the data repeats
    starts, ends = [], []
    for run in _ZEROS.finditer(same):
        starts.append(run.start() + distance)
        ends.append(run.end() + distance)
    return starts, ends


_ZEROS = re.compile(rb"\x00+")


def deflate_fixed(data: bytes, distances: Sequence[int]) -> bytes:
    """A zlib stream of `data` (RFC 1950/1951) that is a function of `data` and `distances` alone: at each
    position the longest match at one of `distances` (the first on a tie) if it is 3 bytes or more, else a
    literal; one final block with the fixed codes.

    A match at distance d from position i is as long as the stretch of positions from i on where the data
    equals itself d bytes back (deflate copies overlapping), at most 258 bytes and the rest of the data: the
    stretches are found once per distance (`_runs`) and looked up by bisection, so the work is per symbol
    written, not per byte compared (a Thunderbird for Android code at scale 4: 4.6 ms a PNG instead of 6.4)."""
    if any(not 1 <= d <= _MAX_DISTANCE for d in distances):
        raise ValueError(f"distances must be 1..{_MAX_DISTANCE}")
    out: list[tuple[int, int]] = [(0b011, 3)]  # BFINAL=1, BTYPE=01 (fixed Huffman codes)
    runs = [(d, *_runs(data, d)) for d in distances]
    i, n = 0, len(data)
    while i < n:
        best, at = 0, 0
        limit = min(_MAX_MATCH, n - i)
        for d, starts, ends in runs:
            k = bisect.bisect_right(starts, i) - 1
            length = min(ends[k] - i, limit) if k >= 0 and i < ends[k] else 0
            if length > best:
                best, at = length, d
        if best < 3:
            out.append(_SYMBOLS[data[i]])
            i += 1
            continue
        out += match_codes(best, at)
        i += best
    return zlib_stream(out, data)


def match_codes(length: int, distance: int) -> tuple[tuple[int, int], ...]:
    """A copy of `length` bytes from `distance` back: the fixed code of the length, its extra bits, the code of
    the distance, its extra bits (RFC 1951 §3.2.5), each as (bits, count)."""
    code = bisect.bisect_right(_LENGTH_BASE, length) - 1
    far = bisect.bisect_right(_DIST_BASE, distance) - 1
    return (_SYMBOLS[257 + code], (length - _LENGTH_BASE[code], _LENGTH_EXTRA[code]),
            _DISTANCES[far], (distance - _DIST_BASE[far], _DIST_EXTRA[far]))


def zlib_stream(out: list[tuple[int, int]], data: bytes) -> bytes:
    """The block's codes `out` (header bits first), ended and packed LSB first, in a zlib wrapper for `data`."""
    out = [*out, _SYMBOLS[256]]  # end of block
    # LSB first, 64 bits at a time (one integer for the whole stream made every symbol copy it: quadratic).
    packed = bytearray()
    value = shift = 0
    for bits, count in out:
        value |= bits << shift
        shift += count
        if shift >= 64:
            packed += (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
            value >>= 64
            shift -= 64
    packed += value.to_bytes((shift + 7) // 8, "little")
    return b"\x78\x01" + bytes(packed) + struct.pack(">I", zlib.adler32(data))


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def qr_png(matrix: Sequence[Sequence[int]], scale: int, border: int) -> bytes:
    """The modules of `matrix` (truthy = dark), `scale` pixels each, inside a light quiet zone of `border`
    modules: the rows segno's writer makes (so the pixels are segno's), deflated by `deflate_fixed`."""
    size = (len(matrix) + 2 * border) * scale
    stride = (size + 7) // 8

    def scanline(modules: Sequence[int]) -> bytes:
        pixels = "".join(("0" if dark else "1") * scale for dark in modules)  # greyscale 1-bit: 1 is white
        return b"\x00" + int(pixels.ljust(stride * 8, "0"), 2).to_bytes(stride, "big")

    quiet = scanline([0] * (len(matrix) + 2 * border)) * border * scale
    same_as_above = (b"\x02" + bytes(stride)) * (scale - 1)  # PNG filter type 2, "Up": the row above again
    rows = bytearray(quiet)
    for row in matrix:
        rows += scanline([0] * border + list(row) + [0] * border) + same_as_above
    rows += quiet
    header = struct.pack(">2I5B", size, size, 1, 0, 0, 0, 0)  # bit depth 1, greyscale, no interlace
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", deflate_fixed(bytes(rows), (1, stride + 1))) + _chunk(b"IEND", b""))
