"""CSV files an admin gives us (accounts, passwords): RFC 4180 records, bounded, every problem located.

Records are parsed as RFC 4180 says (a quoted field may hold commas, quotes and line breaks), so a record can
span physical lines; every field keeps the physical line and column where it starts. The file is read as
bytes, line by line with a bound, and decoded here: a non-UTF-8 byte or a NUL is reported at its line and
column (with the encoding the file most likely is) as a problem of its record, which is left out while the
reading goes on, so every problem comes in one run and --keep-going skips only that record. A device or
FIFO is refused before reading (`/dev/zero` never ends); what leaves the rest of the file unreadable (a
UTF-16 file, a line or record past the bound, usually a quote that is never closed) stops the read with
its line (CsvProblem).
"""

from __future__ import annotations

import csv
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from generator.errors import Position, Problem, encoding_hint

MAX_LINE_BYTES = 16 * 1024  # one physical line
MAX_RECORD_BYTES = 64 * 1024  # one record, all its lines (csv's own field limit, 128 KiB, is never reached)
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Record:
    fields: list[str]
    line: int  # physical line where the record starts
    starts: list[tuple[int, int]]  # (line, column) where each field starts
    problem: Problem | None = None  # why the record cannot be used (its fields are then not what the file says)

    def position(self, display: str, index: int | None = None) -> Position:
        if index is None or not self.starts:
            return Position(display, self.line, 1)
        line, column = self.starts[min(index, len(self.starts) - 1)]
        return Position(display, line, column)


class CsvProblem(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def open_regular(path: Path) -> BinaryIO:
    """Open for reading, refusing anything but a regular file (OSError for a missing or unreadable one)."""
    handle = path.open("rb")
    if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
        handle.close()
        raise OSError(0, "not a regular file (a device, FIFO or folder)", str(path))
    return handle


class _Lines:
    """Physical lines, decoded, bounded; remembers the raw text of the record being read."""

    def __init__(self, handle: BinaryIO, display: str) -> None:
        self.handle, self.display = handle, display
        self.number = 0
        self.record: list[str] = []
        self.record_bytes = 0
        self.record_line = 1
        self.problem: Problem | None = None  # the first unusable byte of the record being read

    def start_record(self) -> None:
        self.record = []
        self.problem = None
        self.record_bytes = 0
        self.record_line = self.number + 1

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = self.handle.readline(MAX_LINE_BYTES + 1)
        if not raw:
            raise StopIteration
        self.number += 1
        at = Position(self.display, self.number, 1)
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise CsvProblem(Problem(at, f"line is longer than {MAX_LINE_BYTES // 1024} KiB",
                                     "is this the right file? a CSV line holds a name and an address"))
        if self.number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        if self.number == 1 and raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # every line would be a problem
            raise CsvProblem(Problem(at, "the file is UTF-16", "save it as UTF-8"))
        # An unusable byte is replaced (never by a quote, comma or line break, so the record keeps its shape)
        # and reported for its record, which the caller leaves out.
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            text = raw.decode("utf-8", errors="replace")
            column = len(raw[:exc.start].decode("utf-8", errors="replace")) + 1
            self._flag(column, f"the file is not UTF-8 (byte 0x{raw[exc.start]:02x})", encoding_hint(raw))
        if "\x00" in text:
            self._flag(text.index("\x00") + 1, "the line contains a NUL byte", "is this a text file? save it as UTF-8 "
                       "CSV")
            text = text.replace("\x00", "\ufffd")
        self.record.append(text)
        self.record_bytes += len(raw)
        if self.record_bytes > MAX_RECORD_BYTES:
            raise CsvProblem(Problem(Position(self.display, self.record_line, 1),
                                     f"the record starting here is longer than {MAX_RECORD_BYTES // 1024} KiB",
                                     "a quote (\") is probably never closed: close it, or double quotes inside "
                                     "a quoted value (\"\")"))
        return text

    def _flag(self, column: int, message: str, hint: str) -> None:
        if self.problem is None:
            self.problem = Problem(Position(self.display, self.number, column), message, hint)


def _field_starts(lines: list[str], first_line: int) -> list[tuple[int, int]]:
    """(line, column) of the start of each field of one record (quotes respected, across line breaks)."""
    starts = [(first_line, 1)]
    quoted = False
    line, column = first_line, 1
    for text in lines:
        for ch in text:
            if ch == '"':
                quoted = not quoted
            elif ch == "," and not quoted:
                starts.append((line, column + 1))
            elif ch == "\n":
                line, column = line + 1, 0
            column += 1
    return starts


def records(handle: BinaryIO, display: str) -> Iterator[Record]:
    """Every non-empty record of the file, an unusable one with its problem. Raises CsvProblem (located) where
    the file cannot be read on."""
    lines = _Lines(handle, display)
    reader = csv.reader(lines, strict=True)
    while True:
        lines.start_record()
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            what = str(exc)
            if "unexpected end of data" in what:
                raise CsvProblem(Problem(Position(display, lines.record_line, 1),
                                         "a quoted value starting in this record is never closed",
                                         "add the closing quote (\")")) from None
            if "new-line character" in what:  # a bare CR outside quotes: the file ends its lines with CR only
                raise CsvProblem(Problem(Position(display, lines.number, 1), "a line break (CR) outside quotes: the "
                                         "file seems to end its lines with CR only (old Mac format)",
                                         "save it with LF or CRLF line endings, or quote the value")) from None
            raise CsvProblem(Problem(Position(display, lines.number, 1), f"not a valid CSV record: {what}",
                                     "quote values that contain commas, quotes or line breaks")) from None
        if lines.problem is None and (not fields or (all(not f.strip() for f in fields) and len(lines.record) == 1)):
            continue
        yield Record(fields, lines.record_line, _field_starts(lines.record, lines.record_line), lines.problem)


def read_header(found: Iterator[Record], display: str, required: tuple[str, ...],
                allowed: tuple[str, ...] | None) -> list[str]:
    """The header row, checked (`allowed` None: other columns are ignored); raises CsvProblem naming what it
    should be."""
    header_record = next(found, None)
    if header_record is not None and header_record.problem is not None:
        raise CsvProblem(header_record.problem)
    header = [h.strip() for h in header_record.fields] if header_record else []
    bad = [h for h in header if allowed is not None and h not in allowed]
    if bad or any(r not in header for r in required) or len(set(header)) != len(header):
        line = header_record.line if header_record else 1
        optional = "".join(f"[,{a}]" for a in allowed or () if a not in required)
        raise CsvProblem(Problem(Position(display, line, 1), f"the header row must name the columns "
                                 f"{','.join(required)}{optional}; got {','.join(header) or 'nothing'}",
                                 f"make the first row: {','.join(required)}"))
    return header
