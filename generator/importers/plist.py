"""Property lists from untrusted bytes, with the position of every value.

XML plists go through the guarded parser in xmltree.py (a DOCTYPE naming `plist` is allowed and never
fetched; entities are refused), then this small reader, which knows plist's eight value types and records
each value's line so errors can point at it. Binary plists (`bplist00`) are read by plistlib behind the same
size limit; their errors point at the key path, since a binary file has no lines.
"""

from __future__ import annotations

import base64
import binascii
import plistlib
from datetime import UTC, datetime
from typing import Any

from generator.errors import Position
from generator.importers.draft import MAX_XML_DEPTH, fail
from generator.importers.xmltree import Element, parse_xml

PlistPath = tuple[str | int, ...]
_MAX_INT_DIGITS = 20  # plists hold 64-bit integers; a longer literal is an attack on int()


class Plist:
    """A parsed plist: `value`, and `where(path)` for the position of the value at a key path."""

    def __init__(self, value: Any, file: str, positions: dict[PlistPath, Position]) -> None:
        self.value, self.file, self.positions = value, file, positions

    def where(self, path: PlistPath) -> Position:
        if not self.positions:  # a binary plist has no lines: name the key path instead
            return Position(self.file, detail=self.label(path))
        for i in range(len(path), -1, -1):
            if path[:i] in self.positions:
                return self.positions[path[:i]]
        return Position(self.file)

    def label(self, path: PlistPath) -> str:
        out = ""
        for p in path:
            out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
        return out or "the top level"


def parse_plist(data: bytes, file: str) -> Plist:
    if data.startswith(b"bplist00"):
        try:
            value = plistlib.loads(data, fmt=plistlib.FMT_BINARY)
        except (plistlib.InvalidFileException, ValueError, TypeError, KeyError, IndexError, OverflowError,
                RecursionError, MemoryError) as exc:
            raise fail(Position(file), f"not a valid binary plist ({type(exc).__name__}: {exc})",
                       "export the profile again, or convert it with `plutil -convert xml1`") from None
        _check_binary(value, file, 0, set())
        return Plist(value, file, {})
    root = parse_xml(data, file, allowed_doctype="plist")
    if root.tag != "plist":
        raise fail(root.position, f"the root element is <{root.tag}>, not <plist>",
                   "give an Apple configuration profile (.mobileconfig)")
    items = [c for c in root.children]
    if len(items) != 1:
        raise fail(root.position, f"<plist> must hold exactly one value, it holds {len(items)}",
                   "check that the file is complete")
    positions: dict[PlistPath, Position] = {}
    return Plist(_value(items[0], (), positions), file, positions)


def _check_binary(value: Any, file: str, depth: int, seen: set[int]) -> None:
    """What the XML reader guarantees by construction: string keys and bounded nesting. A binary plist can
    refer to one object many times (plistlib returns the same Python object), so each container is walked
    once: without `seen`, 100 references at each of 10 levels would be 100^10 visits."""
    if id(value) in seen:
        return
    if isinstance(value, dict | list):
        seen.add(id(value))
    if depth > MAX_XML_DEPTH:
        raise fail(Position(file), f"the binary plist nests values more than {MAX_XML_DEPTH} deep",
                   "check that this is the right file")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise fail(Position(file), f"the binary plist has a dictionary key that is not a string ({key!r})",
                           "export the profile again")
            _check_binary(item, file, depth + 1, seen)
    elif isinstance(value, list):
        for item in value:
            _check_binary(item, file, depth + 1, seen)


def _value(el: Element, path: PlistPath, positions: dict[PlistPath, Position]) -> Any:
    positions[path] = el.position
    tag, text = el.tag, el.text
    if tag == "dict":
        out: dict[str, Any] = {}
        children = el.children
        if len(children) % 2:
            raise fail(el.position, "<dict> has a <key> without a value", "every <key> needs a value after it")
        for key_el, value_el in zip(children[::2], children[1::2], strict=True):
            if key_el.tag != "key":
                raise fail(key_el.position, f"<{key_el.tag}> where a <key> was expected", "check the <dict>")
            key = key_el.text
            if key in out:
                raise fail(key_el.position, f"the key '{key}' appears twice in one <dict>",
                           "remove one: devices keep only one of them")
            out[key] = _value(value_el, (*path, key), positions)
        return out
    if tag == "array":
        return [_value(child, (*path, i), positions) for i, child in enumerate(el.children)]
    if el.children:
        raise fail(el.position, f"<{tag}> cannot contain elements", "check the plist")
    if tag == "string":
        return text
    if tag == "integer":
        stripped = text.strip()
        digits = stripped.lstrip("+-")
        if not digits.isdigit() or len(digits) > _MAX_INT_DIGITS:
            raise fail(el.position, f"<integer> '{stripped[:30]}' is not an integer", "write a whole number")
        return int(stripped)
    if tag == "real":
        try:
            return float(text.strip())
        except ValueError:
            raise fail(el.position, f"<real> '{text.strip()[:30]}' is not a number", "write a number") from None
    if tag in ("true", "false"):
        return tag == "true"
    if tag == "date":
        try:
            return datetime.strptime(text.strip(), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise fail(el.position, f"<date> '{text.strip()[:30]}' is not an ISO 8601 UTC date",
                       "write it as 2027-06-30T00:00:00Z") from None
    if tag == "data":
        try:
            return base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise fail(el.position, "<data> is not base64", "check the plist") from None
    raise fail(el.position, f"<{tag}> is not a plist value", "use dict, array, string, integer, real, true, "
               "false, date or data")
