"""Load a spec file: YAML with positions -> the closed model, every problem reported with file:line:column."""

from __future__ import annotations

import difflib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from generator.errors import Position, Problem, SpecError, encoding_hint, text_position
from generator.model import Spec
from generator.yamlload import Document, read_yaml


@dataclass(frozen=True)
class LoadedSpec:
    """A validated spec with the file it came from (relative paths in it are relative to that file)."""

    spec: Spec
    path: Path
    document: Document

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def where(self, *path: str | int) -> Position:
        return self.document.where(path)


# Inline accounts cost about 90 bytes of memory per byte of YAML (every value keeps its position); the CSV
# streams in constant memory. These bounds keep a spec under ~50 MB and ~2 s, and point to the CSV.
MAX_SPEC_BYTES = 512 * 1024
MAX_INLINE_ACCOUNTS = 5000


def read_regular_file(path: Path, limit: int, what: str, hint: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; SpecError for a device, a FIFO, a folder or a file
    that is too large (checked before reading: /dev/zero never ends)."""
    try:
        with path.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise SpecError([Problem(Position(str(path), 1, 1), f"{what} is not a regular file",
                                         "give the path of an ordinary file")])
            data = handle.read(limit + 1)
    except OSError as exc:
        raise SpecError([Problem(Position(str(path), 1, 1), f"cannot read {what}: {exc.strerror}",
                                 "check the path")]) from None
    if len(data) > limit:
        raise SpecError([Problem(Position(str(path), 1, 1), f"{what} is larger than {limit // 1024} KiB", hint)])
    return data


def load_spec(path: str | Path) -> LoadedSpec:
    """Read and validate a spec file. Raises SpecError with every problem found."""
    path = Path(path)
    raw = read_regular_file(path, MAX_SPEC_BYTES, "the spec",
                            "move the accounts to a CSV file (accounts_csv), which has no size limit")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = text_position(raw, exc.start)
        raise SpecError([Problem(Position(str(path), line, column), f"the spec is not UTF-8 ({exc.reason})",
                                 encoding_hint(raw))]) from None
    doc, problems = read_yaml(text, str(path))
    if not isinstance(doc.data, dict):
        raise SpecError([*problems, Problem(Position(str(path), 1, 1), "the spec must be a YAML mapping at the top "
                                            "level", "start with keys such as provider:, incoming:, outgoing:, "
                                            "accounts:")])
    accounts = doc.data.get("accounts")
    if isinstance(accounts, list) and len(accounts) > MAX_INLINE_ACCOUNTS:
        raise SpecError([Problem(doc.where(("accounts",)), f"{len(accounts)} inline accounts; a spec holds at "
                                 f"most {MAX_INLINE_ACCOUNTS}", "move them to a CSV file (accounts_csv: users.csv "
                                 "with the columns name,email): it streams in constant memory")])
    try:
        spec = validate(Spec, doc.data, doc.where)
    except SpecError as exc:
        # A value the YAML step reported (`port: 0110`, `security: on`) fails the model too, at the same place:
        # one problem per place, the YAML one, which says what was meant.
        reported = {p.position for p in problems}
        problems += [p for p in exc.problems if p.position not in reported]
    else:
        if not problems:
            return LoadedSpec(spec=spec, path=path, document=doc)
    # The accounts' addresses are checked once the spec is valid; checked now too, they come in this run.
    from generator.accounts import address_problems  # accounts builds on this module

    reported = {p.position for p in problems}
    raise SpecError([*problems, *(p for p in address_problems(doc, path.parent) if p.position not in reported)])


M = TypeVar("M", bound=BaseModel)


def validate(model: type[M], data: Any, where: Any) -> M:
    """Validate `data` into `model`; translate every pydantic error into a Problem at its position."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecError(problems_from(exc, model, data, where)) from None


def problems_from(exc: ValidationError, model: type[BaseModel], data: Any, where: Any) -> list[Problem]:
    problems = []
    seen: set[tuple[Any, ...]] = set()
    for err in exc.errors(include_url=False):
        loc = tuple(_clean_loc(err["loc"]))
        key = (loc, err["type"])
        if key in seen:
            continue
        seen.add(key)
        problems.append(_problem(err, loc, model, data, where))
    return problems


def _clean_loc(loc: tuple[Any, ...]) -> list[str | int]:
    # pydantic adds pseudo-locations for tagged unions and function validators ("function-after[...]",
    # "literal['1.2']"); only real keys and indexes lead to a position in the file.
    return [p for p in loc if isinstance(p, int) or not (("[" in p and p.endswith("]")) or p.startswith("function"))]


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "the spec"


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that holds the mapping at `loc` (for 'did you mean' and the list of keys)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        annotation = current.model_fields[part].annotation
        current = _unwrap(annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    for arg in getattr(annotation, "__args__", ()) or ():
        inner = _unwrap(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return annotation


def _problem(err: Any, loc: tuple[Any, ...], model: type[BaseModel], data: Any, where: Any) -> Problem:
    kind = err["type"]
    name = _dotted(loc)
    pos = where(loc)
    value = err.get("input")
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        allowed = sorted(parent.model_fields) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else f"allowed keys here: {', '.join(allowed)}"
        return Problem(where(loc, key=True), f"unknown key '{loc[-1]}' in {_dotted(loc[:-1])}", hint)
    if kind == "missing":
        return Problem(where(loc[:-1]), f"missing required key '{loc[-1]}' in {_dotted(loc[:-1])}",
                       f"add {loc[-1]}: ...")
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        options = [o.strip().strip("'") for o in expected.replace(" or ", ", ").split(",")]
        close = difflib.get_close_matches(str(value).lower(), options, n=1, cutoff=0.5)
        hint = f"use one of: {', '.join(options)}"
        if close:
            hint = f"did you mean '{close[0]}'? ({hint})"
        return Problem(pos, f"{name}: {value!r} is not allowed", hint)
    if kind in ("int_type", "int_from_float", "int_parsing") and isinstance(value, str):
        return Problem(pos, f"{name} must be an integer, got the string {value!r}",
                       "write the number without quotes")
    if kind in ("int_type", "int_from_float"):
        return Problem(pos, f"{name} must be an integer, got {value!r}", "write a whole number such as 995")
    if kind == "bool_type":
        return Problem(pos, f"{name} must be true or false, got {value!r}", "write true or false without quotes")
    if kind == "string_type":
        return Problem(pos, f"{name} must be text, got {value!r}",
                       f"quote the value (\"{value}\")" if value is not None else "give it a value")
    if kind in ("list_type", "dict_type", "model_type"):
        what = "a list" if kind == "list_type" else "a mapping"
        return Problem(pos, f"{name} must be {what}, got {type(value).__name__}", f"write {name} as {what}")
    if kind in ("greater_than_equal", "less_than_equal", "too_short", "too_long"):
        return Problem(pos, f"{name}: {err['msg'].lower()}, got {value!r}", "change the value")
    if kind == "value_error":
        msg, _, hint = str(err.get("ctx", {}).get("error", err["msg"])).partition(" — ")  # what — how to fix
        return Problem(pos, f"{name}: {msg}", hint)
    return Problem(pos, f"{name}: {err['msg']}", "")
