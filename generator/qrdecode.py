"""Read a QR code back: from the SVG segno wrote to its modules, and from the modules to the bytes it holds.

The proof step for QR codes in guides (a guide must not show a code that opens anything but the profile
link). A reader for what we write, not a camera decoder: no image processing and no error correction
(the symbol was drawn from exact modules, so every codeword must read as written; a wrong one is a
mismatch). Byte mode only, versions 1-40, any mask and error level, as ISO/IEC 18004 places them:
format information (BCH 15,5 masked with 0x5412) next to the top-left finder, the data in two-module
columns zigzagging up and down from the bottom right, skipping the function patterns, data codewords
interleaved block by block. The error-correction block table is the standard's, taken from segno's
constants (`segno.consts.ECC`); the placement and decoding below are written from the standard.
"""

from __future__ import annotations

import re
import zlib
from typing import Any

from segno import consts

Matrix = list[list[bool]]  # [row][column], True = dark

_LEVELS = {0: "M", 1: "L", 2: "H", 3: "Q"}  # the two format bits of each error level
_MASKS = (
    lambda r, c: (r + c) % 2 == 0, lambda r, c: r % 2 == 0, lambda r, c: c % 3 == 0,
    lambda r, c: (r + c) % 3 == 0, lambda r, c: (r // 2 + c // 3) % 2 == 0,
    lambda r, c: (r * c) % 2 + (r * c) % 3 == 0, lambda r, c: ((r * c) % 2 + (r * c) % 3) % 2 == 0,
    lambda r, c: ((r + c) % 2 + (r * c) % 3) % 2 == 0,
)
_PATH_RE = re.compile(r"\bd=\"(M[^\"]*)\"")
_STEP_RE = re.compile(r"([Mmh])\s*(-?[0-9.]+)(?:\s+(-?[0-9.]+))?")


class QRDecodeError(ValueError):
    pass


def matrix_from_svg(svg: str, background: bool = True) -> Matrix:
    """segno's SVG: a light background rectangle, then one path of horizontal dark runs ('M x y', 'm dx dy',
    'h n'), one unit per module, with a quiet zone the size of the first run's start column.
    `background=False`: segno's SVG without a light colour (`save(kind="svg")` with the defaults, as the
    Thunderbird for Android QR file is written): the one path of runs, drawn as strokes half a module down."""
    paths = _PATH_RE.findall(svg)
    if background:
        return matrix_from_paths(paths)
    if len(paths) != 1:
        raise QRDecodeError(f"expected one module path, found {len(paths)} paths")
    return _matrix_from_runs(_runs(paths[0]), None)


def matrix_from_paths(paths: list[str]) -> Matrix:
    """The same from the `d` attributes of the SVG's paths, in document order."""
    if len(paths) != 2:
        raise QRDecodeError(f"expected a background and one module path, found {len(paths)} paths")
    background, modules = paths
    size_match = re.match(r"M0 0h(\d+)v\1h-\1z$", background)
    if not size_match:
        raise QRDecodeError("unrecognised background rectangle")
    return _matrix_from_runs(_runs(modules), int(size_match.group(1)))


def _runs(modules: str) -> list[tuple[int, int, int]]:
    """(row, column, length) of every dark run, in quiet-zone coordinates."""
    x = y = 0.0
    runs: list[tuple[int, int, int]] = []
    for op, a, b in _STEP_RE.findall(modules):
        if op == "M":
            x, y = float(a), float(b)
        elif op == "m":
            x, y = x + float(a), y + float(b)
        else:
            runs.append((int(y), int(x), int(float(a))))
            x += float(a)
    if not runs:
        raise QRDecodeError("no dark modules")
    return runs


def _matrix_from_runs(runs: list[tuple[int, int, int]], total: int | None) -> Matrix:
    border = runs[0][1]  # the top-left finder's corner is dark: the first run starts at the quiet zone's edge
    if total is None:
        # No background to give the size: the top row ends with the top-right finder's 7 dark modules.
        top = [r for r in runs if r[0] == runs[0][0]]
        total = top[-1][1] + top[-1][2] + border
    size = total - 2 * border
    if size < 21 or (size - 17) % 4:
        raise QRDecodeError(f"{size} modules is not a QR code size")
    matrix = [[False] * size for _ in range(size)]
    for row, col, length in runs:
        for c in range(col, col + length):
            if not (0 <= row - border < size and 0 <= c - border < size):
                raise QRDecodeError("a module outside the symbol")
            matrix[row - border][c - border] = True
    return matrix


def _format_bits(data: int) -> int:
    rem = data
    for _ in range(10):
        rem = (rem << 1) ^ ((rem >> 9) * 0x537)
    return ((data << 10) | rem) ^ 0x5412


def _alignment_positions(version: int) -> list[int]:
    if version == 1:
        return []
    size = version * 4 + 17
    count = version // 7 + 2
    step = (version * 8 + count * 3 + 5) // (count * 4 - 4) * 2
    return [6, *sorted(size - 7 - i * step for i in range(count - 1))]


def _function_modules(version: int) -> Matrix:
    size = version * 4 + 17
    f = [[False] * size for _ in range(size)]

    def mark(row: int, col: int) -> None:
        if 0 <= row < size and 0 <= col < size:
            f[row][col] = True

    for i in range(size):
        mark(6, i)
        mark(i, 6)
    for r0, c0 in ((3, 3), (3, size - 4), (size - 4, 3)):  # finders with their separators
        for dr in range(-4, 5):
            for dc in range(-4, 5):
                mark(r0 + dr, c0 + dc)
    positions = _alignment_positions(version)
    last = len(positions) - 1
    for i, r0 in enumerate(positions):
        for j, c0 in enumerate(positions):
            if (i, j) in ((0, 0), (0, last), (last, 0)):
                continue
            for dr in range(-2, 3):
                for dc in range(-2, 3):
                    mark(r0 + dr, c0 + dc)
    for i in range(9):  # format information, both copies, and the dark module
        mark(8, i)
        mark(i, 8)
    for i in range(8):
        mark(8, size - 1 - i)
        mark(size - 1 - i, 8)
    if version >= 7:
        for i in range(18):
            mark(size - 11 + i % 3, i // 3)
            mark(i // 3, size - 11 + i % 3)
    return f


def _read_format(m: Matrix) -> tuple[str, int]:
    bits = 0
    cells = [(i, 8) for i in range(6)] + [(7, 8), (8, 8), (8, 7)] + [(8, 14 - i) for i in range(9, 15)]
    for i, (row, col) in enumerate(cells):  # bit i of the format word, first copy
        if m[row][col]:
            bits |= 1 << i
    best = min(range(32), key=lambda data: bin(_format_bits(data) ^ bits).count("1"))
    if bin(_format_bits(best) ^ bits).count("1") > 3:
        raise QRDecodeError("unreadable format information")
    return _LEVELS[best >> 3], best & 7


def decode(m: Matrix) -> bytes:
    """The bytes a QR code holds (byte mode)."""
    size = len(m)
    version = (size - 17) // 4
    level, mask = _read_format(m)
    function = _function_modules(version)
    bits: list[int] = []
    right = size - 1
    while right >= 1:
        if right == 6:
            right = 5
        upward = ((right + 1) & 2) == 0
        for vert in range(size):
            row = size - 1 - vert if upward else vert
            for col in (right, right - 1):
                if not function[row][col]:
                    bits.append(int(m[row][col] != _MASKS[mask](row, col)))
        right -= 2
    codewords = [int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits) - 7, 8)]
    table: Any = consts.ECC  # segno's table is untyped
    groups = table[version][consts.ERROR_MAPPING[level]]
    lengths: list[int] = [g.num_data for g in groups for _ in range(g.num_blocks)]
    blocks: list[list[int]] = [[] for _ in lengths]
    position = 0
    for i in range(max(lengths)):  # data codewords are interleaved: the i-th of every block in turn
        for b, length in enumerate(lengths):
            if i < length:
                blocks[b].append(codewords[position])
                position += 1
    stream = "".join(f"{c:08b}" for block in blocks for c in block)
    mode = int(stream[:4], 2)
    if mode != 0b0100:
        raise QRDecodeError(f"mode {mode:04b} is not byte mode")
    count_bits = 8 if version <= 9 else 16
    count = int(stream[4:4 + count_bits], 2)
    start = 4 + count_bits
    if start + 8 * count > len(stream):
        raise QRDecodeError("the character count runs past the data")
    return bytes(int(stream[start + 8 * i:start + 8 * i + 8], 2) for i in range(count))


def decode_svg(svg: str, background: bool = True) -> bytes:
    return decode(matrix_from_svg(svg, background))


def matrix_from_png(data: bytes) -> Matrix:
    """segno's PNG (greyscale or palette, 1-bit, scale s, quiet zone q): chunks -> zlib -> rows (filter 0
    only, which segno writes) -> the pixel at each module's centre."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise QRDecodeError("not a PNG")
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height = int.from_bytes(header[0:4], "big"), int.from_bytes(header[4:8], "big")
    depth, colour, interlace = header[8], header[9], header[12]
    if depth != 1 or colour not in (0, 3) or interlace or width != height:
        raise QRDecodeError(f"unexpected PNG layout (depth {depth}, colour type {colour})")
    raw = zlib.decompress(idat)
    stride = (width + 7) // 8
    lines: list[bytearray] = []
    previous = bytearray(stride)
    for r in range(height):
        row_filter, line = raw[r * (stride + 1)], bytearray(raw[r * (stride + 1) + 1:(r + 1) * (stride + 1)])
        _unfilter(row_filter, line, previous)
        previous = line
        lines.append(line)

    # Each row as a string of its pixels, '0' = dark (greyscale 1-bit: 0 is black; segno's palette PNGs put
    # dark at index 0 too): one C call a row, not one Python call a pixel.
    bits = f"0{stride * 8}b"

    def pixels(row: int) -> str:
        return format(int.from_bytes(lines[row], "big"), bits)[:width]

    # Module size: the top-left finder's first dark row starts at the quiet zone and is 7 modules wide.
    top = next((r for r in range(height) if "0" in pixels(r)), None)
    if top is None:
        raise QRDecodeError("an empty image")
    first = pixels(top)
    left = first.index("0")
    light = first.find("1", left)
    run = (light if light >= 0 else width) - left
    scale = run // 7
    if scale < 1 or run % 7:
        raise QRDecodeError("no finder pattern at the top left")
    size = (width - 2 * left) // scale
    half = scale // 2
    columns = range(left + half, left + size * scale, scale)
    return [[row[c] == "0" for c in columns] for row in (pixels(top + r * scale + half) for r in range(size))]


def _unfilter(kind: int, line: bytearray, previous: bytearray) -> None:
    """PNG row filters (PNG spec §9), in place; one byte per 'pixel' for bit depths below 8."""
    if kind == 0:
        return
    if kind == 2:  # segno's usual filter ("Up"): the fast path
        if not any(line):  # the row above again (each module row after its first pixel row)
            line[:] = previous
        else:
            line[:] = bytes((x + y) & 0xFF for x, y in zip(line, previous, strict=True))
        return
    for i in range(len(line)):
        a = line[i - 1] if i else 0
        b = previous[i]
        c = previous[i - 1] if i else 0
        if kind == 1:
            line[i] = (line[i] + a) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + b) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (a + b) // 2) & 0xFF
        elif kind == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        elif kind != 0:
            raise QRDecodeError(f"unknown PNG row filter {kind}")


def decode_png(data: bytes) -> bytes:
    return decode(matrix_from_png(data))
