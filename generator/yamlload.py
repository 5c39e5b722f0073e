"""Safe YAML loading that remembers where every value came from and refuses YAML 1.1 surprises.

PyYAML implements YAML 1.1: `0110` is octal 72, `on`/`no`/`y` are booleans, `1:30` is sexagesimal, and a
duplicate key silently overwrites the first one. An admin who writes `port: 0110` or `security: on` almost
never means what PyYAML reads, so these are reported as errors with the spelling that says what was meant.
We compose the node tree with SafeLoader (no object construction, no `!!python/...` tags) and build plain
values ourselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from generator.errors import Position, Problem, SpecError

Path = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"

# The YAML 1.2 core schema: what a reader of the spec expects these scalars to mean.
_CORE_BOOL = re.compile(r"^(true|True|TRUE|false|False|FALSE)$")
_CORE_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_CORE_FLOAT = re.compile(
    r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$")


@dataclass
class Document:
    """Plain data from a YAML file plus the position of every value and every mapping key."""

    file: str
    data: Any
    values: dict[Path, Position] = field(default_factory=dict)
    keys: dict[Path, Position] = field(default_factory=dict)

    def where(self, path: Path, key: bool = False) -> Position:
        """Position of the value at `path` (of its key with key=True), else of the closest parent."""
        if key and path in self.keys:
            return self.keys[path]
        for p in (path[:i] for i in range(len(path), -1, -1)):
            if p in self.values:
                return self.values[p]
        return Position(self.file)


MAX_DEPTH = 32  # a spec nests five levels deep; PyYAML's composer recurses once per level


MAX_REPORTED = 20  # anchors/aliases reported before giving up on a file (a hostile one has millions)


class _TooDeep(Exception):
    def __init__(self, mark: Any) -> None:
        self.mark = mark


class _TooMany(_TooDeep):
    pass


class _SpecLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases (a spec has no use for them, and aliases are how a
    "billion laughs" document grows to gigabytes once expanded) and caps nesting before Python's recursion
    limit does."""

    def __init__(self, stream: str, file: str) -> None:
        super().__init__(stream)
        self.file = file
        self.depth = 0
        self.problems: list[Problem] = []

    def _refuse(self, mark: Any, what: str) -> None:
        if len(self.problems) >= MAX_REPORTED:
            raise _TooMany(mark)
        self.problems.append(Problem(Position(self.file, mark.line + 1, mark.column + 1),
                                     f"YAML {what} are not allowed in a spec",
                                     "write the value out in full where it is needed"))

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.get_event()  # type: ignore[no-untyped-call]
            self._refuse(event.start_mark, "aliases (*name)")
            return yaml.ScalarNode(_NULL, "", event.start_mark, event.end_mark)
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if getattr(event, "anchor", None) is not None:
            self._refuse(event.start_mark, "anchors (&name)")
            event.anchor = None
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _TooDeep(event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load_yaml(text: str, file: str) -> Document:
    """Parse `text`; raise SpecError listing every problem found (syntax errors stop at the first)."""
    doc, problems = read_yaml(text, file)
    if problems:
        raise SpecError(problems)
    return doc


def _unprintable(text: str, file: str, exc: yaml.reader.ReaderError) -> Problem:
    """Where the character YAML refuses is, by line and column, and how to write it instead."""
    before = text[:exc.position]
    line = before.count("\n") + 1
    column = exc.position - (before.rfind("\n") + 1) + 1
    code = int(exc.character)  # the reader was given text: the character's code point
    return Problem(Position(file, line, column), f"the character U+{code:04X} is not allowed in YAML (a control "
                   "character or a non-character)", f"remove it, or write it as \\u{code:04x} inside double quotes")


def read_yaml(text: str, file: str) -> tuple[Document, list[Problem]]:
    """Parse `text` into a Document and the problems that still leave its data readable (tags, YAML 1.1
    readings, duplicate keys, anchors: each value then stays as written), so the caller can validate it and
    report everything in one run. Raises SpecError for what stops the parse (syntax, nesting, alias floods)."""
    try:
        # The reader checks every character when it is created: a C1 control character (U+0080-U+009F)
        # or U+FFFE is valid UTF-8 that YAML refuses, so this is inside the try as well.
        loader = _SpecLoader(text, file)
    except yaml.reader.ReaderError as exc:
        raise SpecError([_unprintable(text, file, exc)]) from None
    try:
        root = loader.get_single_node()
    except _TooMany as exc:
        raise SpecError([*loader.problems, Problem(
            Position(file, exc.mark.line + 1, exc.mark.column + 1),
            f"more than {MAX_REPORTED} anchors or aliases; stopped reading the file",
            "write every value out in full")]) from None
    except _TooDeep as exc:
        raise SpecError([Problem(Position(file, exc.mark.line + 1, exc.mark.column + 1),
                                 f"the YAML nests deeper than {MAX_DEPTH} levels",
                                 "a spec needs a handful of levels; remove the extra nesting")]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = Position(file, mark.line + 1, mark.column + 1) if mark else Position(file)
        what = exc.problem or exc.context or "invalid YAML"
        raise SpecError([Problem(pos, f"YAML syntax error: {what}", "fix the indentation or quoting")]) from None
    except yaml.YAMLError as exc:  # reader errors: bad bytes, control characters
        raise SpecError([Problem(Position(file), f"cannot read YAML: {exc}", "save the file as UTF-8")]) from None
    finally:
        loader.dispose()
    doc = Document(file=file, data={})
    problems = list(loader.problems)
    if root is not None:
        doc.data = _build(root, (), doc, problems)
    return doc, problems


def _pos(doc: Document, node: yaml.Node) -> Position:
    return Position(doc.file, node.start_mark.line + 1, node.start_mark.column + 1)


def _build(node: yaml.Node, path: Path, doc: Document, problems: list[Problem]) -> Any:
    doc.values[path] = _pos(doc, node)
    if isinstance(node, yaml.MappingNode):
        if node.tag != _MAP:
            problems.append(_tag_problem(doc, node))
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(Problem(_pos(doc, key_node), "complex keys and merge keys (<<) are not supported",
                                        "write each key out in full"))
                continue
            key = str(key_node.value)
            if key in out:
                first = doc.keys[(*path, key)]
                problems.append(Problem(_pos(doc, key_node), f"duplicate key '{key}' (first at line {first.line})",
                                        "remove one of them: YAML would silently keep only the last"))
                continue
            doc.keys[(*path, key)] = _pos(doc, key_node)
            out[key] = _build(value_node, (*path, key), doc, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _SEQ:
            problems.append(_tag_problem(doc, node))
        return [_build(item, (*path, i), doc, problems) for i, item in enumerate(node.value)]
    assert isinstance(node, yaml.ScalarNode)
    return _scalar(node, doc, problems)


def _tag_problem(doc: Document, node: yaml.Node) -> Problem:
    return Problem(_pos(doc, node), f"YAML tag '{node.tag}' is not allowed in a spec",
                   "remove the tag: a spec holds only plain strings, numbers, booleans, lists and mappings")


def _scalar(node: yaml.ScalarNode, doc: Document, problems: list[Problem]) -> Any:
    text = node.value
    if node.style is None and node.tag == _STR and _YAML12_NUMBER.match(text):
        value = _yaml12_number(text)
        problems.append(Problem(_pos(doc, node), f"'{text}' is text in YAML 1.1 but the number {value} in YAML 1.2",
                                f"write {value} for the number, or quote it (\"{text}\") for text"))
        return text
    if node.style is not None or node.tag == _STR:  # quoted, block scalar, or explicit !!str
        if node.tag not in (_STR, "!"):
            problems.append(_tag_problem(doc, node))
        return text
    tag = node.tag
    if tag == _NULL:
        return None
    if tag == _BOOL:
        if _CORE_BOOL.match(text):
            return text.lower() == "true"
        problems.append(Problem(_pos(doc, node), f"'{text}' is a boolean in YAML 1.1 but a string in YAML 1.2",
                                f"write true or false for a yes/no value, or quote it (\"{text}\") for text"))
        return text
    if tag == _INT:
        if _CORE_INT.match(text):
            return int(text)
        problems.append(_yaml11_number(doc, node))
        return text
    if tag == _FLOAT:
        if _CORE_FLOAT.match(text):
            # YAML spells infinity and not-a-number .inf and .nan; float() reads them without the dot.
            return float(text.replace(".", "", 1) if text.lstrip("+-").startswith(".") and text[-1] in "fFnN"
                         else text)
        problems.append(_yaml11_number(doc, node))
        return text
    if tag == _TIMESTAMP:
        return text  # kept as written; fields that take dates parse ISO 8601 themselves
    if tag == _STR:
        return text
    problems.append(_tag_problem(doc, node))
    return text


def _yaml11_number(doc: Document, node: yaml.ScalarNode) -> Problem:
    """A plain scalar YAML 1.1 reads as a number and YAML 1.2 as text (or as another number): 0110 (octal),
    0x1F, 1_000, 1:30 (base 60)."""
    text = node.value
    value = yaml.safe_load(text)
    if ":" in text:  # a time or a ratio, almost always meant as text
        return Problem(_pos(doc, node), f"'{text}' is read as the number {value} by YAML 1.1 (base 60)",
                       f"quote it (\"{text}\")")
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text.lstrip("+"))
    # A leading zero (0110) is usually a decimal number written with one; 0x1F and 1_000 mean what 1.1 reads.
    meant = sign + (digits.lstrip("0") or "0") if re.fullmatch(r"0[0-7]+", digits) else str(value)
    return Problem(_pos(doc, node), f"'{text}' is read as the number {value} by YAML 1.1",
                   f"write the number in plain decimal (e.g. {meant}), or quote it (\"{text}\") if it is text")


# Numbers in YAML 1.2's core schema that YAML 1.1 reads as text (a leading zero with an 8 or 9, an exponent
# without a dot, 0o octal): a reader of the spec expects the number.
_YAML12_NUMBER = re.compile(r"^[-+]?[0-9]+$|^0o[0-7]+$|^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")


def _yaml12_number(text: str) -> int | float:
    if text.startswith("0o"):
        return int(text[2:], 8)
    try:
        return int(text, 10)
    except ValueError:
        return float(text)
