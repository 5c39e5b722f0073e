"""Outlook profile files (.prf): the value filter the template uses, the encoding, and a strict reader.

A PRF is an INI file (FORMATS.md §4). Outlook reads it like Windows' profile-string API, which (per the
GetPrivateProfileString documentation) trims blanks around a value and drops one pair of matching quotes
around it; a value that needs either is therefore wrapped in one extra pair of double quotes.

Encoding: UTF-16LE with a BOM and CRLF. Windows' INI reader takes Unicode only from a UTF-16LE file and reads
anything else in the ANSI code page, which would garble 'Zoë Ünal' (not yet confirmed on a real Outlook: see
docs/outlook.md).

The reader types each [AccountN] value with the mapping section of the account (`PT_LONG` -> int,
`PT_UNICODE` -> str), and refuses an account key without a mapping, because Outlook silently ignores such a
key (FORMATS.md §4): a typo there would otherwise go unnoticed.
"""

from __future__ import annotations

import re

BOM = b"\xff\xfe"

PrfValue = str | int
PrfSections = dict[str, dict[str, str]]


class PrfFormatError(ValueError):
    """A PRF (or a value for one) that does not follow the format."""


def prf_value(value: str | int) -> str:
    """One INI value as text, quoted when the profile-string reader would otherwise change it."""
    if isinstance(value, bool):
        raise PrfFormatError(f"map booleans to 0/1 before writing a PRF value, got {value!r}")
    text = str(value)
    if re.search(r"[\x00\r\n]", text):
        raise PrfFormatError(f"a PRF value cannot contain NUL or line breaks: {text!r}")
    if text != text.strip() or (len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'"):
        return f'"{text}"'
    return text


def unquote(raw: str) -> str:
    """What Windows' profile-string reader returns for the raw text after `=`."""
    text = raw.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def prf_long(value: int) -> str:
    """A PT_LONG bit field in hex, as Microsoft's PRF samples write LeaveOnServer (0x000E0003)."""
    return f"0x{value:08X}"


def encode_prf(text: str) -> bytes:
    if "\r" in text:
        raise PrfFormatError("rendered PRF text must use LF line ends; CRLF is added on encoding")
    return BOM + text.replace("\n", "\r\n").encode("utf-16-le")


def read_sections(data: bytes) -> PrfSections:
    """Bytes -> {section: {key: value}} (values unquoted as Windows does), refusing duplicates and bad bytes.

    Line by line, as Windows' profile-string API reads INI files: `[section]`, `key=value` (split at the first
    `=`), `;` comments. Stricter than Windows where Windows would silently pick one reading (duplicates,
    indented lines)."""
    if not data.startswith(BOM):
        raise PrfFormatError("a PRF must start with the UTF-16LE byte order mark FF FE")
    try:
        text = data[len(BOM):].decode("utf-16-le")
    except UnicodeDecodeError:
        raise PrfFormatError("the PRF is not valid UTF-16LE") from None
    if re.search(r"\r(?!\n)|(?<!\r)\n", text):
        raise PrfFormatError("every PRF line must end with CRLF")
    out: PrfSections = {}
    section: dict[str, str] | None = None
    for number, line in enumerate(text.split("\r\n"), start=1):
        if not line or line.startswith(";"):
            continue
        if line[0] in " \t":
            raise PrfFormatError(f"line {number}: starts with blanks (a continuation line in INI; Windows would "
                                 "not read it as the file means)")
        if line.startswith("["):
            if not line.endswith("]"):
                raise PrfFormatError(f"line {number}: a section header must end with ]")
            name = line[1:-1]
            if name in out:
                raise PrfFormatError(f"line {number}: section [{name}] appears twice")
            section = out[name] = {}
            continue
        key, sep, raw = line.partition("=")
        key = key.strip()
        if not sep or not key:
            raise PrfFormatError(f"line {number}: expected key=value, found {line[:40]!r}")
        if section is None:
            raise PrfFormatError(f"line {number}: {key} comes before any [section]")
        if key in section:
            raise PrfFormatError(f"line {number}: {key} appears twice in its section")
        section[key] = unquote(raw)
    return out


def _number(text: str) -> int:
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", text):
        return int(text, 16)
    if re.fullmatch(r"[0-9]+", text):
        return int(text)
    raise PrfFormatError(f"{text!r} is not a number")


def typed_account(sections: PrfSections, account: str) -> dict[str, PrfValue]:
    """The [AccountN] values typed by the mapping section its `[Internet Account List]` entry names."""
    mapping_name = sections.get("Internet Account List", {}).get(account)
    if mapping_name is None or mapping_name not in sections:
        raise PrfFormatError(f"[Internet Account List] does not map {account} to a mapping section")
    mapping = sections[mapping_name]
    out: dict[str, PrfValue] = {}
    for key, text in sections.get(account, {}).items():
        if key == "UniqueService":
            out[key] = text
            continue
        prop = mapping.get(key)
        if prop is None:
            raise PrfFormatError(f"[{account}] {key} has no mapping in [{mapping_name}]: Outlook would ignore it")
        kind = prop.split(",")[0]
        if kind == "PT_LONG":
            try:
                out[key] = _number(text)
            except PrfFormatError as exc:
                raise PrfFormatError(f"[{account}] {key}: {exc}") from None
        elif kind == "PT_UNICODE":
            out[key] = text
        else:
            raise PrfFormatError(f"[{mapping_name}] {key}: unsupported property type {kind}")
    return out
