"""Typed errors. The library raises these; only the CLI turns them into text and exit codes."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class Position:
    """Where a value came from: a spec file or a CSV file, 1-based line and column."""

    file: str
    line: int = 0
    column: int = 0
    detail: str = ""  # where inside the file when lines do not apply: a plist key path, a table row, a section

    def __str__(self) -> str:
        # Problems about a whole file still say :1:1, so editors and CI annotators parse every line alike.
        where = f"{self.file}:{self.line or 1}:{self.column or 1}"
        return f"{where} ({self.detail})" if self.detail else where


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def one_line(text: str) -> str:
    """`text` with its control characters (C0, DEL, C1) written as \\xNN: one line that drives no terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


@dataclass(frozen=True)
class Problem:
    """One thing wrong (or worth a warning) in a spec: where, what, and how to fix it."""

    position: Position | None
    message: str
    hint: str = ""
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.position}: " if self.position else ""
        how = f" — {self.hint}" if self.hint else ""
        # One line, safe for a terminal: messages quote sources (an imported profile's key names, a spec's
        # values), and a raw ESC or line break there would drive the admin's terminal or forge a line.
        return one_line(f"{where}{self.message}{how}")

    def sort_key(self) -> tuple[str, int, int, str]:
        p = self.position or Position("")
        return (p.file, p.line, p.column, self.message)


class MailprofileError(Exception):
    """Base of every error the library raises on purpose."""


class SpecError(MailprofileError):
    """The spec (or a file it references) is invalid. Carries every problem found, sorted."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=Problem.sort_key)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self) -> tuple[type[SpecError], tuple[list[Problem]]]:  # crosses process-pool boundaries
        return (SpecError, (self.problems,))


class VerificationError(MailprofileError):
    """A rendered file did not parse back to the values the spec asked for: a bug, or a bad template."""

    def __init__(self, path: str, mismatches: Iterable[str]) -> None:
        self.path = path
        self.mismatches = list(mismatches)
        super().__init__(f"{path}: " + "; ".join(self.mismatches))

    def __reduce__(self) -> tuple[type[VerificationError], tuple[str, list[str]]]:
        return (VerificationError, (self.path, self.mismatches))


class BuildError(MailprofileError):
    """Something outside the spec stopped the build (templates, output folder, signing material)."""


class OptionError(BuildError):
    """The command line asks for something that cannot be built (an unknown target or kind, options that
    exclude each other): invalid input, as a spec error is, found before anything is done."""


def text_position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of byte `offset` in UTF-8 `data` that is valid up to there."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    line = data.count(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return line, column


def encoding_hint(data: bytes) -> str:
    """How to fix a file that is not UTF-8, naming what it most likely is."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "it looks like UTF-16: save it as UTF-8"
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:
        return "save it as UTF-8"
    return "it looks like Latin-1/Windows-1252: save it as UTF-8"
