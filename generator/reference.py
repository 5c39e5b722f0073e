"""The spec reference (docs/spec.md), generated from the model so it cannot drift from what is accepted."""

from __future__ import annotations

import json
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from generator.model import Spec


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (list,):
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"mapping {_type_name(args[0])} → {_type_name(args[1])}"
    if args and type(None) in args:
        return " \\| ".join(_type_name(a) for a in args if a is not type(None)) + " (optional)"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    return getattr(annotation, "__name__", str(annotation))


def _default(field: Any) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "(section defaults)"
        return f"`{json.dumps(value)}`"
    if field.default is PydanticUndefined or field.default is None:
        return "—"
    return f"`{json.dumps(field.default)}`"


def _models(model: type[BaseModel], seen: list[type[BaseModel]]) -> list[type[BaseModel]]:
    if model in seen:
        return seen
    seen.append(model)
    for field in model.model_fields.values():
        stack = [field.annotation]
        while stack:
            ann = stack.pop()
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                _models(ann, seen)
            stack.extend(typing.get_args(ann))
    return seen


def spec_reference() -> str:
    lines = ["# Spec reference", "",
             "Generated from `generator/model.py` by `python -m generator.reference > docs/spec.md`; a test keeps",
             "it in sync. Unknown keys are errors; types are strict (no quoted numbers, no yes/no for booleans).", ""]
    for model in _models(Spec, []):
        lines += [f"## {model.__name__}", ""]
        if model.__doc__ and model is not Spec:
            lines += [model.__doc__.strip().splitlines()[0], ""]
        lines += ["| key | type | default | meaning |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            lines.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | "
                         f"{(field.description or '').replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines + limits())


def limits() -> list[str]:
    """Every bound the tool enforces, from the constants themselves (so this table cannot drift)."""
    from generator import accounts, csvfile, render, spec, yamlload

    kib = 1024
    rows = [
        ("spec file", f"a regular file of at most {spec.MAX_SPEC_BYTES // kib} KiB, UTF-8", "2 (located at :1:1)"),
        ("inline accounts", f"at most {spec.MAX_INLINE_ACCOUNTS:,}; more belong in `accounts_csv`, which streams",
         "2"),
        ("YAML", f"no anchors or aliases; nesting at most {yamlload.MAX_DEPTH} levels; no tags; no duplicate keys; "
                 "no YAML 1.1 readings (0110, 0995, on/no, 1:30)", "2"),
        ("CSV files (accounts, passwords)", f"regular files, UTF-8; RFC 4180 records (a quoted field may span "
         f"lines); a line at most {csvfile.MAX_LINE_BYTES // kib} KiB, a record at most "
         f"{csvfile.MAX_RECORD_BYTES // kib} KiB", "2"),
        ("passwords", "one row per address; no control characters (U+0000-U+001F, U+007F-U+009F)", "2"),
        ("address as a file name", f"addresses longer than {accounts.NAME_BYTES} bytes get a folder and file name cut "
         "to that length plus `~` and 16 hex digits of their SHA-256 (the manifest keeps the address)", "-"),
        ("bracketed host", "`[...]` must hold an IPv6 address, without a zone index", "2"),
        ("`--templates` files", f"inside the folder (links out of it are refused), regular files of at most "
         f"{render.MAX_TEMPLATE_BYTES // kib} KiB; each a packaged template's name or a file one of them includes, "
         "imports or extends (hidden files are skipped)", "1"),
        ("`--templates` rendering", f"`*` builds at most {render.MAX_SEQUENCE:,} items, `**` exponents at most 64, "
         f"`%` widths below 10000; per file at most {render.MAX_RENDER_MEMORY >> 20} MiB of memory, "
         f"{render.MAX_RENDER_SECONDS} s of CPU, {render.MAX_OUTPUT_CHARS >> 20} M characters of output", "1"),
        ("`--out`", "missing, empty, or a mailprofile output (its manifest.json names `mailprofile` and a known "
         "format); none of the build's inputs inside it; one build at a time", "1"),
        ("`--zip`", "missing, or a zip written by mailprofile; not inside `--out`", "1"),
    ]
    out = ["## Limits", "",
           "What the tool refuses, and with which exit status (2: the spec or a file it names; 1: the build).",
           "A refused run writes nothing.", "", "| what | bound | exit |", "|---|---|---|"]
    out += [f"| {what} | {bound} | {code} |" for what, bound, code in rows]
    return [*out, ""]


if __name__ == "__main__":
    print(spec_reference(), end="")
