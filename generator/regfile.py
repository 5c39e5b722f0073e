"""Windows .reg files (regedit version 5): the escaping filters the Outlook templates use, and a strict reader.

Facts (FORMATS.md §4): first line `Windows Registry Editor Version 5.00`, then a blank line; the file is
UTF-16LE with a BOM and CRLF line ends; `"Name"="text"` escapes only `\\` and `"`; `dword:` takes exactly
8 hex digits; `hex(2):` is REG_EXPAND_SZ as UTF-16LE bytes including the terminator; long hex lists continue
with `,\\` and a two-space indent; `"Name"=-` deletes a value.

The reader accepts only that grammar. It is stricter than hivex on purpose: hivex silently accepts `hex:zz`
and dwords of the wrong width (FORMATS.md §4), so a file that hivex merges is not yet proven correct.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADER = "Windows Registry Editor Version 5.00"
BOM = b"\xff\xfe"

REG_SZ = "REG_SZ"
REG_EXPAND_SZ = "REG_EXPAND_SZ"
REG_DWORD = "REG_DWORD"
REG_BINARY = "REG_BINARY"
REG_MULTI_SZ = "REG_MULTI_SZ"
DELETE = "DELETE"  # `"Name"=-`

# hex(N) type numbers from winnt.h; the ones our files may contain.
_HEX_TYPES = {2: REG_EXPAND_SZ, 3: REG_BINARY, 7: REG_MULTI_SZ}

# regedit wraps a hex list after the comma that reaches column 77: the first line (with `"Name"=hex(2):`
# and the trailing `\`) stays within 80 characters, continuation lines carry 25 bytes after a two-space
# indent (what regedit.exe exports, and what Wine's regedit reproduces with MAX_HEX_CHARS = 77).
WRAP_AT = 77
INDENT = "  "

RegData = str | int | bytes | list[str] | None
RegValues = dict[str, dict[str, tuple[str, RegData]]]


class RegFormatError(ValueError):
    """A .reg file (or a value for one) that does not follow the format."""


def _check_text(value: str, what: str) -> None:
    # A .reg string cannot span lines and regedit stops a REG_SZ at the first NUL.
    if re.search(r"[\x00\r\n]", value):
        raise RegFormatError(f"{what} cannot contain NUL or line breaks: {value!r}")


def reg_string(value: str) -> str:
    """`"text"` with `\\` and `"` escaped: the only two escapes regedit knows."""
    _check_text(value, "a .reg string")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def reg_dword(value: int) -> str:
    """`dword:` + exactly 8 lower-case hex digits (regedit's own spelling)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
        raise RegFormatError(f"a dword must be an integer 0..0xFFFFFFFF, got {value!r}")
    return f"dword:{value:08x}"


def reg_hex(data: bytes, name: str, type_number: int | None = None) -> str:
    """`hex:` / `hex(N):` + comma-separated bytes, wrapped like regedit for the value called `name`.

    Returns the text after `"name"=`; the width of that prefix decides where the first line breaks.
    """
    head = "hex:" if type_number is None else f"hex({type_number:x}):"
    column = len(reg_string(name)) + 1 + len(head)  # `"name"=hex(2):`
    pieces = [head]
    for i, byte in enumerate(data):
        pieces.append(f"{byte:02x}")
        if i == len(data) - 1:
            break
        pieces.append(",")
        column += 3
        # regedit breaks after the comma that reaches column 77, so a line with its `\` stays within 80.
        if column >= WRAP_AT:
            pieces.append("\\\n" + INDENT)
            column = len(INDENT)
    return "".join(pieces)


def reg_expand_sz(value: str, name: str) -> str:
    """REG_EXPAND_SZ as regedit writes it: `hex(2):` UTF-16LE bytes including the 00,00 terminator."""
    _check_text(value, "a REG_EXPAND_SZ value")
    return reg_hex((value + "\0").encode("utf-16-le"), name, 2)


def encode_reg(text: str) -> bytes:
    """Rendered text (LF line ends) -> the bytes regedit expects: UTF-16LE with BOM, CRLF."""
    if "\r" in text:
        raise RegFormatError("rendered .reg text must use LF line ends; CRLF is added on encoding")
    return BOM + text.replace("\n", "\r\n").encode("utf-16-le")


@dataclass
class _Line:
    number: int
    text: str


def _logical_lines(text: str) -> list[_Line]:
    """Join `,\\` + CRLF + two-space continuations into one line each, keeping the first line number."""
    lines = text.split("\r\n")
    out: list[_Line] = []
    i = 0
    while i < len(lines):
        number, current = i + 1, lines[i]
        while current.endswith(",\\"):
            i += 1
            if i >= len(lines) or not lines[i].startswith(INDENT) or lines[i][len(INDENT):].startswith(" "):
                raise RegFormatError(f"line {i + 1}: a hex continuation line must start with two spaces")
            current = current[:-1] + lines[i][len(INDENT):]
        out.append(_Line(number, current))
        i += 1
    return out


def _parse_quoted(text: str, number: int) -> tuple[str, str]:
    """`"a\\"b"rest` -> ('a"b', 'rest'); only `\\\\` and `\\"` are escapes."""
    if not text.startswith('"'):
        raise RegFormatError(f"line {number}: expected a quoted string")
    out: list[str] = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return "".join(out), text[i + 1:]
        if ch == "\\":
            if i + 1 >= len(text) or text[i + 1] not in '\\"':
                raise RegFormatError(f"line {number}: unknown escape in a quoted string (only \\\\ and \\\")")
            out.append(text[i + 1])
            i += 2
            continue
        out.append(ch)
        i += 1
    raise RegFormatError(f"line {number}: unterminated quoted string")


_HEX_BYTES = re.compile(r"[0-9a-fA-F]{2}(?:,[0-9a-fA-F]{2})*")


def _parse_hex(body: str, number: int) -> bytes:
    if body == "":
        return b""
    if not _HEX_BYTES.fullmatch(body):
        raise RegFormatError(f"line {number}: a hex list must be two-digit hex bytes separated by commas")
    return bytes(int(b, 16) for b in body.split(","))


def _utf16_strings(data: bytes, number: int) -> list[str]:
    if len(data) % 2 or not data.endswith(b"\0\0"):
        raise RegFormatError(f"line {number}: a string value must be UTF-16LE ending in 00,00")
    try:
        return data.decode("utf-16-le").split("\0")
    except UnicodeDecodeError:
        raise RegFormatError(f"line {number}: invalid UTF-16LE in a string value") from None


def _parse_value(body: str, number: int) -> tuple[str, RegData]:
    if body == "-":
        return DELETE, None
    if body.startswith('"'):
        value, rest = _parse_quoted(body, number)
        if rest:
            raise RegFormatError(f"line {number}: unexpected text after the string: {rest!r}")
        return REG_SZ, value
    if body.startswith("dword:"):
        digits = body[len("dword:"):]
        if not re.fullmatch(r"[0-9a-fA-F]{8}", digits):
            raise RegFormatError(f"line {number}: a dword needs exactly 8 hex digits, got {digits!r}")
        return REG_DWORD, int(digits, 16)
    match = re.fullmatch(r"hex(?:\(([0-9a-fA-F]+)\))?:(.*)", body)
    if match is None:
        raise RegFormatError(f"line {number}: unknown value syntax {body!r}")
    kind = REG_BINARY if match.group(1) is None else _HEX_TYPES.get(int(match.group(1), 16))
    if kind is None:
        raise RegFormatError(f"line {number}: unsupported value type hex({match.group(1)})")
    data = _parse_hex(match.group(2), number)
    if kind == REG_EXPAND_SZ:
        parts = _utf16_strings(data, number)
        if len(parts) != 2:
            raise RegFormatError(f"line {number}: a REG_EXPAND_SZ holds one string")
        return kind, parts[0]
    if kind == REG_MULTI_SZ:
        parts = _utf16_strings(data, number)
        return kind, parts[:-2] if parts[-2:] == ["", ""] else parts[:-1]
    return kind, data


def parse_reg(data: bytes) -> RegValues:
    """Strictly parse a .reg file into {key: {name: (type, value)}}; RegFormatError on any deviation."""
    if not data.startswith(BOM):
        raise RegFormatError("a .reg file must start with the UTF-16LE byte order mark FF FE")
    try:
        text = data[len(BOM):].decode("utf-16-le")
    except UnicodeDecodeError:
        raise RegFormatError("the file is not valid UTF-16LE") from None
    if re.search(r"\r(?!\n)|(?<!\r)\n", text):
        raise RegFormatError("every line must end with CRLF")
    if not text.endswith("\r\n"):
        raise RegFormatError("the file must end with CRLF")
    lines = _logical_lines(text[:-2])
    if len(lines) < 2 or lines[0].text != HEADER or lines[1].text != "":
        raise RegFormatError(f"the file must start with '{HEADER}' and a blank line")
    keys: RegValues = {}
    current: dict[str, tuple[str, RegData]] | None = None
    for line in lines[2:]:
        if line.text == "":
            current = None
            continue
        if line.text.startswith("["):
            if current is not None:
                raise RegFormatError(f"line {line.number}: a blank line must separate keys")
            if not line.text.endswith("]") or line.text.startswith("[-"):
                raise RegFormatError(f"line {line.number}: malformed or unsupported key line {line.text!r}")
            name = line.text[1:-1]
            if name in keys:
                raise RegFormatError(f"line {line.number}: key [{name}] appears twice")
            current = keys[name] = {}
            continue
        if current is None:
            raise RegFormatError(f"line {line.number}: a value outside any [key]")
        value_name, rest = _parse_quoted(line.text, line.number)
        if not rest.startswith("="):
            raise RegFormatError(f"line {line.number}: expected '=' after the value name")
        if value_name.lower() in (n.lower() for n in current):
            raise RegFormatError(f"line {line.number}: value {value_name!r} appears twice in one key")
        current[value_name] = _parse_value(rest[1:], line.number)
    return keys
