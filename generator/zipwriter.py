"""A deflated, reproducible zip writer whose memory does not grow with the number of members.

zipfile.ZipFile keeps a ZipInfo per member until it writes the central directory at close: ~500 bytes a
member, 4 KB an account with every target, 400 MB for a build of 100,000 accounts. Here each member's
central-directory record is written to a spool file as the member is added, and copied behind the members
at the end. Layout as APPNOTE.TXT (PKWARE, 6.3.x) describes it; zip64 records where a count, size or
offset does not fit the classic fields (over 65,534 members is common here). zipfile reads what this writes
(tests/test_bundles.py), so does Info-ZIP's unzip.
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from collections.abc import Iterable
from pathlib import Path

_LOCAL = struct.Struct("<4s2B4HL2L2H")  # signature, version needed, 0, flags, method, time, date, crc, sizes, lengths
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END64 = struct.Struct("<4sQ2H2L4Q")
_LOCATOR64 = struct.Struct("<4sLQL")
_END = struct.Struct("<4s4H2LH")
_ZIP64_EXTRA = 0x0001
_LIMIT32, _COUNT_LIMIT = 0xFFFFFFFF, 0xFFFF
_DEFLATED, _UTF8_NAME = 8, 0x0800
_VERSION, _VERSION64 = 20, 45  # 2.0: deflate; 4.5: zip64
_UNIX = 3  # "made by" Unix: unzip then honours the mode in the external attributes


class ZipWriter:
    """Members in the order added, every one deflated at level 6 with a fixed time (reproducible bytes)."""

    def __init__(self, path: Path, date_time: tuple[int, int, int, int, int, int]) -> None:
        year, month, day, hour, minute, second = date_time
        self._date = (year - 1980) << 9 | month << 5 | day
        self._time = hour << 11 | minute << 5 | second // 2
        self.fp = path.open("wb")
        try:
            self._central = tempfile.TemporaryFile(dir=path.parent)  # noqa: SIM115  (closed by close/discard)
        except BaseException:
            self.fp.close()
            raise
        self.count = 0

    def add(self, name: str, data: bytes, mode: int) -> None:
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        compressed = packer.compress(data) + packer.flush()
        crc, size, packed = zlib.crc32(data), len(data), len(compressed)
        offset = self.fp.tell()
        big = size > _LIMIT32 or packed > _LIMIT32
        encoded, flags = _name(name)
        extra = struct.pack("<2H2Q", _ZIP64_EXTRA, 16, size, packed) if big else b""
        self.fp.write(_LOCAL.pack(b"PK\x03\x04", _VERSION64 if big else _VERSION, 0, flags, _DEFLATED, self._time,
                                  self._date, crc, _LIMIT32 if big else packed, _LIMIT32 if big else size,
                                  len(encoded), len(extra)))
        self.fp.write(encoded + extra)
        self.fp.write(compressed)
        self._record(encoded, flags, crc, size, packed, offset, mode)

    def add_stream(self, name: str, chunks: Iterable[bytes], mode: int) -> None:
        """A member of unknown size (the manifest): a zip64 local header whose CRC and sizes are filled in
        once the data is written (the file is seekable), as zipfile does with force_zip64."""
        encoded, flags = _name(name)
        offset = self.fp.tell()
        self.fp.write(_LOCAL.pack(b"PK\x03\x04", _VERSION64, 0, flags, _DEFLATED, self._time, self._date, 0,
                                  _LIMIT32, _LIMIT32, len(encoded), 20))
        self.fp.write(encoded + struct.pack("<2H2Q", _ZIP64_EXTRA, 16, 0, 0))
        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        crc = size = packed = 0
        for chunk in chunks:
            crc, size = zlib.crc32(chunk, crc), size + len(chunk)
            out = packer.compress(chunk)
            packed += len(out)
            self.fp.write(out)
        out = packer.flush()
        packed += len(out)
        self.fp.write(out)
        end = self.fp.tell()
        self.fp.seek(offset + 14)
        self.fp.write(struct.pack("<L", crc))
        self.fp.seek(offset + _LOCAL.size + len(encoded) + 4)
        self.fp.write(struct.pack("<2Q", size, packed))
        self.fp.seek(end)
        self._record(encoded, flags, crc, size, packed, offset, mode)

    def _record(self, encoded: bytes, flags: int, crc: int, size: int, packed: int, offset: int, mode: int) -> None:
        wide = [v for v in (size, packed) if size > _LIMIT32 or packed > _LIMIT32]
        if offset > _LIMIT32:
            wide.append(offset)
        extra = struct.pack(f"<2H{len(wide)}Q", _ZIP64_EXTRA, 8 * len(wide), *wide) if wide else b""
        version = _VERSION64 if wide else _VERSION
        self._central.write(_CENTRAL.pack(
            b"PK\x01\x02", version, _UNIX, version, 0, flags, _DEFLATED, self._time, self._date, crc,
            _LIMIT32 if len(wide) >= 2 else packed, _LIMIT32 if len(wide) >= 2 else size, len(encoded), len(extra),
            0, 0, 0, (mode & 0xFFFF) << 16, _LIMIT32 if offset > _LIMIT32 else offset))
        self._central.write(encoded + extra)
        self.count += 1

    def close(self) -> None:
        """The central directory and the end records; then the file is flushed and closed."""
        start = self.fp.tell()
        self._central.seek(0)
        while block := self._central.read(1 << 20):
            self.fp.write(block)
        size, count = self.fp.tell() - start, self.count
        if count > _COUNT_LIMIT - 1 or start > _LIMIT32 or size > _LIMIT32:
            end64 = self.fp.tell()
            self.fp.write(_END64.pack(b"PK\x06\x06", _END64.size - 12, _VERSION64, _VERSION64, 0, 0, count, count,
                                      size, start))
            self.fp.write(_LOCATOR64.pack(b"PK\x06\x07", 0, end64, 1))
            count, size, start = min(count, _COUNT_LIMIT), min(size, _LIMIT32), min(start, _LIMIT32)
        self.fp.write(_END.pack(b"PK\x05\x06", 0, 0, count, count, size, start, 0))
        self.fp.flush()
        os.fsync(self.fp.fileno())
        self.discard()

    def discard(self) -> None:
        """Close without finishing the archive (a failed build removes the file)."""
        self._central.close()
        self.fp.close()


def _name(name: str) -> tuple[bytes, int]:
    try:
        return name.encode("ascii"), 0
    except UnicodeEncodeError:
        return name.encode("utf-8"), _UTF8_NAME
