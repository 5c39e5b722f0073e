"""Write a merged draft as a commented YAML spec.

Keys come in the model's own order (docs/spec.md), so the same sources always give the same text. Scalars
are written plain only when YAML 1.1 and 1.2 both read them back as the same string; everything else is
double-quoted (`on`, `no`, `0110`, `1:30`, `2026-01-01`, `%EMAILADDRESS%` and text with `: ` or ` #`).
Notes become `#` comments just above the key they are about (or its nearest parent that is written).
"""

from __future__ import annotations

import functools
import json
import re
import textwrap
from typing import Any

import yaml
from pydantic import BaseModel

from generator.importers.draft import Note, SpecPath
from generator.model import Spec
from generator.spec import _unwrap

SCHEMA_LINE = "# yaml-language-server: $schema={schema}"
_PLAIN = re.compile(r"[\w][\w .@%/+()'&,-]*", re.UNICODE)
_INDENT = "  "


# YAML 1.1's booleans (incl. y/n, which PyYAML does not resolve but other YAML 1.1 readers do) and nulls; YAML
# 1.2's numbers (1e3 is a float there, a string for PyYAML).
_RESERVED = re.compile(r"y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|"
                       r"~|null|Null|NULL")
_NUMBER = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)|"
                     r"0o[0-7]+")


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: the same resolver, 10x faster


@functools.lru_cache(maxsize=4096)
def needs_quotes(text: str) -> bool:
    if not text or text != text.strip() or not _PLAIN.fullmatch(text):
        return True
    if _RESERVED.fullmatch(text) or _NUMBER.fullmatch(text):
        return True
    try:
        return bool(yaml.load(text, Loader=_LOADER) != text)
    except yaml.YAMLError:
        return True


def scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if not needs_quotes(text):
        return text
    # A JSON string is a valid YAML double-quoted scalar once what YAML reads differently is escaped too: its
    # extra line breaks, and the characters its reader refuses anywhere in a file (C1 controls, DEL, U+FFFE).
    return _escape_unprintable(json.dumps(text, ensure_ascii=False))


# YAML 1.1's line breaks beyond \n and \r, the BOM, and the complement of YAML's printable set (PyYAML's
# Reader.NON_PRINTABLE; YAML 1.2 §5.1): written raw, the first is read differently, the rest stop the reader.
_UNPRINTABLE = re.compile("[\u2028\u2029\x85\ufeff]|[^\x09\x0a\x0d\x20-\x7e\xa0-\ud7ff\ue000-\ufffd"
                          "\U00010000-\U0010ffff]")


def _escape_unprintable(text: str) -> str:
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _as_lists(value: Any) -> Any:
    """Drafts key list items by index (paths like fallbacks.incoming.0.host): turn those into lists."""
    if isinstance(value, dict):
        if value and all(isinstance(k, int) for k in value):
            return [_as_lists(value[k]) for k in sorted(value)]
        return {k: _as_lists(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_lists(v) for v in value]
    return value


def _model_for(model: type[BaseModel] | None, key: str) -> type[BaseModel] | None:
    if model is None or key not in model.model_fields:
        return None
    inner = _unwrap(model.model_fields[key].annotation)
    return inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None


def _ordered(model: type[BaseModel] | None, mapping: dict[str, Any]) -> list[str]:
    order = list(model.model_fields) if model is not None else []
    known = [k for k in order if k in mapping]
    return known + sorted((k for k in mapping if k not in order), key=str)


class _Writer:
    def __init__(self, notes: list[Note], data: dict[str, Any]) -> None:
        self.lines: list[str] = []
        self.by_path: dict[SpecPath, list[Note]] = {}
        for note in notes:
            self.by_path.setdefault(_existing(data, note.path), []).append(note)

    def comments(self, path: SpecPath, indent: str) -> None:
        for note in self.by_path.pop(path, []):
            # One line per comment: line breaks folded, and what YAML refuses even in a comment shown escaped.
            text = _escape_unprintable(" ".join(f"{note.text}{' — ' + note.hint if note.hint else ''}".split()))
            width = max(60, 116 - len(indent))
            self.lines += [f"{indent}# {line}" for line in textwrap.wrap(text, width, break_long_words=False,
                                                                          break_on_hyphens=False)]

    def mapping(self, model: type[BaseModel] | None, value: dict[str, Any], path: SpecPath, depth: int) -> None:
        indent = _INDENT * depth
        for key in _ordered(model, value):
            item = value[key]
            here = (*path, key)
            self.comments(here, indent)
            sub = _model_for(model, key)
            # Keys are quoted like values: some come from the source (ConsentText's languages), and a key
            # holding a line break or ": " would otherwise write YAML of its own choosing into the spec.
            name = scalar(key)
            if isinstance(item, dict) and item:
                self.lines.append(f"{indent}{name}:")
                self.mapping(sub, item, here, depth + 1)
            elif isinstance(item, list) and item and all(not isinstance(x, dict | list) for x in item):
                self.lines.append(f"{indent}{name}: [{', '.join(scalar(x) for x in item)}]")
            elif isinstance(item, list) and item:
                self.lines.append(f"{indent}{name}:")
                for i, entry in enumerate(item):
                    self.comments((*here, i), indent + _INDENT)
                    self.item(sub, entry, (*here, i), depth + 1)
            elif isinstance(item, dict | list):
                self.lines.append(f"{indent}{name}: {'{}' if isinstance(item, dict) else '[]'}")
            else:
                self.lines.append(f"{indent}{name}: {scalar(item)}")

    def item(self, model: type[BaseModel] | None, entry: dict[str, Any], path: SpecPath, depth: int) -> None:
        start = len(self.lines)
        self.mapping(model, entry, path, depth + 1)
        # "- " takes the place of the first line's indentation (comments stay above the item).
        for i in range(start, len(self.lines)):
            if not self.lines[i].lstrip().startswith("#"):
                self.lines[i] = _INDENT * depth + "- " + self.lines[i].lstrip()
                break


def _existing(data: dict[str, Any], path: SpecPath) -> SpecPath:
    """The longest prefix of `path` that the output has."""
    node: Any = data
    for i, part in enumerate(path):
        inside_list = isinstance(node, list) and isinstance(part, int) and part < len(node)
        if inside_list or (isinstance(node, dict) and part in node):
            node = node[part]
        else:
            return path[:i]
    return path


def emit(data: dict[str, Any], notes: list[Note], header: list[str], schema: str) -> str:
    """The spec as YAML text, ending with a newline."""
    data = _as_lists(data)
    writer = _Writer(notes, data)
    writer.lines.append(SCHEMA_LINE.format(schema=schema))
    writer.lines += [f"# {line}" for line in header]
    writer.comments((), "")
    first = True
    for key in _ordered(Spec, data):
        if not first:
            writer.lines.append("")
        first = False
        writer.mapping(Spec, {key: data[key]}, (), 0)
    return "\n".join(writer.lines) + "\n"
