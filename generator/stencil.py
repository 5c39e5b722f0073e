"""Prove a file's shape once, then fill in each account's values (docs/verification.md explains why this
proves as much as parsing every file back).

A *shape* is everything about the data a template lays out except the text of its strings: keys, order,
every number, boolean and date, which strings are present and empty, and the `Fixed` words. The template is
rendered for a shape once with a unique token in every string and proven like any file (parsed back and
compared); the text between the tokens becomes the stencil. Renders with every special character of the
format appended to the tokens, proven the same way, show which context (and so which escaping) each gap is
in. An account's file is the stencil with its strings, escaped for each gap's context, in the tokens'
places; each string is first checked to lie in the set of characters those contexts carry unchanged (XML's
Char production without CR, say), otherwise the account takes the full path (render, parse back, compare).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

_TOKEN = "mpSLOT{:05d}x"
_TOKENS = re.compile(r"mpSLOT(\d{5})x")
MAX_SHAPES = 64  # shapes remembered per file kind; a build with more takes the full path for the rest


class Fixed(str):
    """A string that belongs to the shape (a pref name, lockPref or defaultPref): laid out as it is, in the
    shape key, never a slot."""

    __slots__ = ()


@dataclass(frozen=True)
class Context:
    """One place a string can sit in a format: the escaping it receives there, and the strings that this
    escaping carries through the format's parser unchanged (anything else takes the full path)."""

    name: str
    escape: Callable[[str], str]
    carriable: Callable[[str], bool]


@dataclass(frozen=True)
class Format:
    """The contexts of one kind of file, and the characters that probe them: every character an escape
    changes, sequences that end a comment, CDATA or string in the format family, and non-ASCII (2, 3 and 4
    UTF-8 bytes). A slot is probed with those of them that every one of its contexts carries."""

    name: str
    contexts: tuple[Context, ...]
    specials: str


_RECORDS: set[type] = set()  # NamedTuple classes a shape walks
R = TypeVar("R")


def record(cls: type[R]) -> type[R]:
    """Class decorator: a NamedTuple whose shape is its class and its fields' shapes, walked like a tuple's
    items (a family's source, say, read by field name)."""
    _RECORDS.add(cls)
    return cls


def shape(value: Any) -> tuple[Any, list[str]]:
    """(a hashable shape key, the strings in document order) of a nest of dicts, lists and scalars.

    The key is a flat tuple in a prefix code: every item starts with a marker, so two different nests never
    give the same key (False and 0 are equal in Python, which is why scalars carry their type)."""
    key: list[Any] = []
    strings: list[str] = []
    _walk(value, key, strings)
    return tuple(key), strings


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_DICT, _LIST, _TUPLE, _END, _EMPTY, _TEXT = (_Marker(n) for n in ("dict", "list", "tuple", "end", "''", "str"))
_SCALARS = (int, bool, float, datetime, Fixed, type(None))


def _walk(value: Any, key: list[Any], strings: list[str]) -> None:
    kind = type(value)
    if kind is str:
        strings.append(value)
        key.append(_TEXT if value else _EMPTY)
    elif kind is dict:
        key.append(_DICT)
        for k, v in value.items():
            key.append(k)
            _walk(v, key, strings)
        key.append(_END)
    elif kind is list or kind is tuple:
        key.append(_LIST if kind is list else _TUPLE)
        for v in value:
            _walk(v, key, strings)
        key.append(_END)
    elif kind in _RECORDS:  # the class fixes the number of fields
        key.append(kind)
        for v in value:
            _walk(v, key, strings)
    elif kind in _SCALARS:
        key.append(kind)
        key.append(value)
    else:
        raise TypeError(f"no shape for {kind.__name__}")


def substitute(value: Any, strings: Iterator[str]) -> Any:
    """`value` with its strings replaced, in document order, by the next ones from `strings`."""
    kind = type(value)
    if kind is str:
        return next(strings)
    if kind is dict:
        return {k: substitute(v, strings) for k, v in value.items()}
    if kind is list:
        return [substitute(v, strings) for v in value]
    if kind is tuple:
        return tuple(substitute(v, strings) for v in value)
    if kind in _RECORDS:
        return kind(*(substitute(v, strings) for v in value))
    return value


@dataclass(frozen=True)
class Stencil:
    """The text of one shape around its string slots: segments[0] slot segments[1] slot ... segments[-1],
    with the escaping each gap receives and, per string, the checks its value must pass."""

    segments: tuple[str, ...]
    slots: tuple[int, ...]  # which string goes into each gap
    escapes: tuple[Callable[[str], str], ...]  # the escaping of each gap
    checks: tuple[tuple[Callable[[str], bool], ...], ...]  # per string: every context it appears in carries it

    def carries(self, strings: list[str]) -> bool:
        for value, checks in zip(strings, self.checks, strict=True):
            for check in checks:
                if not check(value):
                    return False
        return True

    def fill(self, strings: list[str]) -> str:
        segments = self.segments
        parts = [segments[0]]
        for i, (slot, escape) in enumerate(zip(self.slots, self.escapes, strict=True)):
            parts.append(escape(strings[slot]))
            parts.append(segments[i + 1])
        return "".join(parts)


def learn(value: Any, render: Callable[[Any], str], check: Callable[[Any, str], list[str]],
          fmt: Format) -> Stencil | None:
    """The stencil of `value`'s shape, or None when the shape cannot be proven safe to fill.

    `render` lays a value out with the template; `check` parses a rendering back and returns every
    difference from the value it was rendered from (the full path's proof)."""
    _, strings = shape(value)
    # A token for each non-empty string. An empty one stays empty, as it is in every value of this shape (the
    # key records emptiness): the probes take the template's branches for exactly this shape.
    tokens = [_TOKEN.format(i) if s else "" for i, s in enumerate(strings)]
    probe = substitute(value, iter(tokens))
    text = render(probe)
    if check(probe, text):
        return None
    pieces = _TOKENS.split(text)
    segments, slots = tuple(pieces[0::2]), tuple(int(s) for s in pieces[1::2])
    if set(slots) != {i for i, t in enumerate(tokens) if t}:  # a string the file does not show: nothing to fill
        return None
    # Which context each gap is in: the escape that reproduces a rendering whose strings carry the
    # characters every context carries.
    common = "".join(c for c in fmt.specials if all(ctx.carriable(c) for ctx in fmt.contexts))
    hostile = [t + common if t else "" for t in tokens]
    probe2 = substitute(value, iter(hostile))
    text2 = render(probe2)
    if check(probe2, text2):
        return None
    contexts = _align(text2, segments, [hostile[s] for s in slots], fmt.contexts)
    if contexts is None:
        return None
    per_string: list[set[Context]] = [set() for _ in strings]
    for slot, ctx in zip(slots, contexts, strict=True):
        per_string[slot].add(ctx)
    stencil = Stencil(segments, slots, tuple(c.escape for c in contexts),
                      tuple(tuple(c.carriable for c in sorted(cs, key=lambda c: c.name)) for cs in per_string))
    # Then each string with every special character that all of its own contexts carry (newlines in a
    # string literal, say, which a comment cannot hold): the fill must equal the template's rendering.
    own = [t + "".join(c for c in fmt.specials if all(ctx.carriable(c) for ctx in cs)) if t else ""
           for t, cs in zip(tokens, per_string, strict=True)]
    for strings_ in (hostile, own):
        probe_ = substitute(value, iter(strings_))
        rendered = render(probe_)
        if check(probe_, rendered) or stencil.fill(strings_) != rendered:
            return None
    return stencil


def _align(text: str, segments: tuple[str, ...], values: list[str],
           contexts: tuple[Context, ...]) -> list[Context] | None:
    """The context of each gap of `text`, found by which escape of the gap's value fits between its
    segments; None if one fits nowhere."""
    found: list[Context] = []
    pos = len(segments[0])
    for value, after in zip(values, segments[1:], strict=True):
        for ctx in contexts:
            escaped = ctx.escape(value)
            if text.startswith(escaped, pos) and text.startswith(after, pos + len(escaped)):
                found.append(ctx)
                pos += len(escaped) + len(after)
                break
        else:
            return None
    return found if pos == len(text) else None


class _Miss:
    """What a compiled filler returns for a value of another shape."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISS"


MISS = _Miss()
Filler = Callable[[Any], "str | _Miss | None"]


class _Code:
    """Generated Python for one shape (see compile_filler): the statements that check that a value has the
    shape, then the checked, filled text of each file. Every constant reaches the code through its
    namespace, never as source text."""

    def __init__(self) -> None:
        self.consts: dict[str, Any] = {"MISS": MISS, "dict": dict, "list": list, "tuple": tuple, "str": str}
        self.lines = ["def filler(v):"]
        self.strings: list[tuple[str, str]] = []  # (variable, the string the value has there), document order
        self._count = 0

    def const(self, obj: Any) -> str:
        name = f"k{len(self.consts)}"
        self.consts[name] = obj
        return name

    def check_shape(self, node: Any, expr: str) -> None:
        """Statements that return MISS unless the value at `expr` has the shape of `node`."""
        var = f"x{self._count}"
        self._count += 1
        lines = self.lines
        lines.append(f"    {var} = {expr}")
        kind = type(node)
        if kind is str:
            lines.append(f"    if type({var}) is not str or {'not ' if node else ''}{var}: return MISS")
            self.strings.append((var, node))
        elif kind is dict:
            lines.append(f"    if type({var}) is not dict or list({var}) != {self.const(list(node))}: return MISS")
            for k, child in node.items():
                self.check_shape(child, f"{var}[{self.const(k)}]")
        elif kind is list or kind is tuple:
            lines.append(f"    if type({var}) is not {kind.__name__} or len({var}) != {len(node)}: return MISS")
            for i, child in enumerate(node):
                self.check_shape(child, f"{var}[{i}]")
        elif kind in _RECORDS:
            lines.append(f"    if type({var}) is not {self.const(kind)}: return MISS")
            for i, child in enumerate(node):
                self.check_shape(child, f"{var}[{i}]")
        elif node is None:
            lines.append(f"    if {var} is not None: return MISS")
        elif kind in _SCALARS:
            lines.append(f"    if type({var}) is not {self.const(kind)} or {var} != {self.const(node)}: return MISS")
        else:
            raise TypeError(f"no shape for {kind.__name__}")

    def filled(self, stencil: Stencil, strings: list[tuple[str, str, bool]]) -> tuple[list[str], str]:
        """(the conditions under which every string passes its checks, the expression of the filled text) for
        `strings` as (expression, the string the learning value had there, whether it varies: a constant is
        checked and escaped here, once). A varying string equal to the one the learning value had there (a
        server name, the same for every account) reuses its checked and escaped form."""
        if len(strings) != len(stencil.checks):
            raise ValueError("the stencil was not learnt from this shape")
        conditions = []
        for (expr, seen, varies), checks in zip(strings, stencil.checks, strict=True):
            if not checks:  # in no gap: an empty string of the shape, or one the file does not show
                continue
            passes = " and ".join(f"{self.const(check)}({expr})" for check in checks)
            if not varies:
                if not all(check(seen) for check in checks):
                    conditions.append("False")
            elif all(check(seen) for check in checks):
                conditions.append(f"({expr} == {self.const(seen)} or ({passes}))")
            else:
                conditions.append(f"({passes})")
        if "False" in conditions:  # a constant this file cannot carry: it always takes the full path
            return ["False"], "None"
        # The text as literal pieces (segments, constants escaped here) and expressions; adjacent literals
        # are joined here, once.
        pieces: list[str | tuple[str]] = [stencil.segments[0]]
        escaped: dict[tuple[int, int], str] = {}
        for gap, (slot, escape) in enumerate(zip(stencil.slots, stencil.escapes, strict=True)):
            expr, seen, varies = strings[slot]
            if not varies:
                pieces.append(escape(seen))
            else:
                call = f"{self.const(escape)}({expr})"
                if all(check(seen) for check in stencil.checks[slot]):
                    done = escaped.setdefault((slot, id(escape)), self.const(escape(seen)))
                    call = f"({done} if {expr} == {self.const(seen)} else {call})"
                pieces.append((call,))
            pieces.append(stencil.segments[gap + 1])
        parts: list[str] = []
        literal: list[str] = []
        for piece in pieces:
            if isinstance(piece, str):
                literal.append(piece)
                continue
            if literal:
                parts.append(self.const("".join(literal)))
                literal = []
            parts.append(piece[0])
        if literal:
            parts.append(self.const("".join(literal)))
        return conditions, f"''.join(({', '.join(parts)},))"

    def compile(self, name: str) -> Any:
        # Our own generated code: every name in it is ours, every constant is passed by name in `consts`.
        exec(compile("\n".join(self.lines), name, "exec"), self.consts)
        return self.consts["filler"]


def compile_filler(value: Any, stencil: Stencil, name: str = "") -> Filler:
    """`stencil` compiled for the shape of `value`: a function that, for any value, returns MISS unless the
    value has exactly that shape (shape(v)[0] == shape(value)[0]), and otherwise does what `Stencils.fill`
    does with the stencil: None if a string fails its checks, else the filled text.

    The function is generated Python, one statement per node of the shape: the type and length or keys of
    every container, the type and value of every scalar and `Fixed` word, the class of every `record`, the
    emptiness of every string, in the order `shape` walks them. That is what `shape` would compute, without
    building the key (the walk was a quarter of a stencilled build). tests/test_stencil.py checks it against
    `shape` on arbitrary nests."""
    code = _Code()
    code.check_shape(value, "v")
    conditions, text = code.filled(stencil, [(var, seen, True) for var, seen in code.strings])
    code.lines += [f"    if not {condition}: return None" for condition in conditions]
    code.lines.append(f"    return {text}")
    filler: Filler = code.compile(f"<stencil filler: {name}>")
    return filler


FamilyFiller = Callable[[Any], "tuple[str | None, ...] | _Miss"]
# Two token sets for `origins`, unlike each other in length, case, script and spacing, so that a derive which
# measures, cases or classifies a string gives the two different results.
_TOKEN_SETS: tuple[Callable[[int], str], ...] = (lambda i: f"mpSLOT{i:05d}x",
                                                 lambda i: f"\u00c9 {i} \u03a9\U0001f600 y-{i}\u2026")


def origins(source: Any, derive: Callable[[Any], tuple[Any, ...]]) -> list[list[int | str]] | None:
    """For each value `derive(source)` gives, where each of its strings comes from: the index of one of
    `source`'s strings, or a constant. None unless `derive` is seen to move strings and nothing else: with
    `source`'s non-empty strings replaced by tokens (twice, by two unlike sets), each value keeps its shape and
    holds, at each string, the whole token of the same source string in both, or the same constant as with the
    real strings."""
    _, strings = shape(source)
    real = [shape(v) for v in derive(source)]
    probes, indexes = [], []
    for make in _TOKEN_SETS:
        tokens = [make(i) if s else "" for i, s in enumerate(strings)]
        indexes.append({t: i for i, t in enumerate(tokens) if t})
        probes.append([shape(v) for v in derive(substitute(source, iter(tokens)))])
    found: list[list[int | str]] = []
    for (key, seen), (key_x, from_x), (key_y, from_y) in zip(real, *probes, strict=True):
        if not key == key_x == key_y:
            return None
        where: list[int | str] = []
        for s, x, y in zip(seen, from_x, from_y, strict=True):
            i = indexes[0].get(x)
            if i is not None and indexes[1].get(y) == i and strings[i] == s:
                where.append(i)
            elif x == y == s:
                where.append(s)
            else:
                return None
        found.append(where)
    return found


def compile_family(source: Any, derive: Callable[[Any], tuple[Any, ...]], stencils: Sequence[Stencil | None],
                   name: str = "") -> FamilyFiller | None:
    """One function for several files laid out from one value: for any value, MISS unless it has the shape of
    `source`, otherwise for each file what compile_filler(derive(source)[i], stencils[i]) returns for
    derive(value)[i] (None for a file without a stencil), without calling `derive` or walking its values. None
    when `derive` is not seen to only move strings (see `origins`)."""
    where = origins(source, derive)
    if where is None or len(where) != len(stencils):
        return None
    code = _Code()
    code.check_shape(source, "v")
    results = []
    for i, (stencil, origin) in enumerate(zip(stencils, where, strict=True)):
        results.append(f"t{i}")
        if stencil is None:
            code.lines.append(f"    t{i} = None")
            continue
        strings = [(*code.strings[o], True) if isinstance(o, int) else (code.const(o), o, False) for o in origin]
        conditions, text = code.filled(stencil, strings)
        code.lines.append(f"    t{i} = {text} if {' and '.join(conditions) or 'True'} else None")
    code.lines.append(f"    return ({', '.join(results)},)")
    filler: FamilyFiller = code.compile(f"<stencil family: {name}>")
    return filler


_RECENT = 4  # compiled fillers tried before the shape key is computed


@dataclass
class Stencils:
    """The stencils of one kind of file, learnt as shapes appear (at most MAX_SHAPES)."""

    fmt: Format
    render: Callable[[Any], str]
    check: Callable[[Any, str], list[str]]
    _known: dict[Any, tuple[Stencil, Filler] | None] = field(default_factory=dict)
    _recent: list[Filler] = field(default_factory=list)  # the shapes seen last, most recent first

    def fill(self, value: Any) -> str | None:
        """The file for `value` from its shape's proven stencil, or None: take the full path."""
        for filler in self._recent:
            text = filler(value)
            if text is not MISS:
                return text  # type: ignore[return-value]
        known = self._learnt(value)
        if known is None:
            return None
        filler_ = known[1]
        self._recent = [filler_, *self._recent[:_RECENT - 1]]
        text = filler_(value)
        assert text is not MISS
        return text  # type: ignore[return-value]

    def stencil(self, value: Any) -> Stencil | None:
        """The proven stencil of `value`'s shape (learnt the first time), or None."""
        known = self._learnt(value)
        return known[0] if known is not None else None

    def _learnt(self, value: Any) -> tuple[Stencil, Filler] | None:
        key, _ = shape(value)
        if key in self._known:
            return self._known[key]
        if len(self._known) >= MAX_SHAPES:
            return None
        stencil = learn(value, self.render, self.check, self.fmt)
        known = (stencil, compile_filler(value, stencil, self.fmt.name)) if stencil is not None else None
        self._known[key] = known
        return known


@dataclass
class Family:
    """Files laid out from one value by `derive` (user.js, mozilla.cfg and policies.json from an account's
    strings), each by its own `Stencils`: one shape check of that value for all of them, instead of building each
    file's value and checking its shape (docs/verification.md, "One check for several files")."""

    derive: Callable[[Any], tuple[Any, ...]]
    members: tuple[Stencils, ...]
    _known: dict[Any, FamilyFiller | None] = field(default_factory=dict)
    _recent: list[FamilyFiller] = field(default_factory=list)

    @classmethod
    def picking(cls, values: Callable[[Any], tuple[Any, ...]], kinds: Sequence[str], wanted: Sequence[str],
                stencils: dict[str, Stencils]) -> Family:
        """The family of the `wanted` ones of `kinds`, whose values `values` gives in the order of `kinds`."""
        picks = [kinds.index(k) for k in wanted]

        def derive(source: Any) -> tuple[Any, ...]:
            made = values(source)
            return tuple(made[i] for i in picks)

        return cls(derive, tuple(stencils[k] for k in wanted))

    def fill(self, source: Any) -> tuple[str | None, ...]:
        """Each file for `source`, or None where that file takes the full path."""
        for filler in self._recent:
            texts = filler(source)
            if texts is not MISS:
                return texts  # type: ignore[return-value]
        key, _ = shape(source)
        if key in self._known:
            filler_ = self._known[key]
        elif len(self._known) < MAX_SHAPES:
            stencils = [m.stencil(v) for m, v in zip(self.members, self.derive(source), strict=True)]
            names = "+".join(m.fmt.name for m in self.members)
            filler_ = self._known[key] = compile_family(source, self.derive, stencils, names)
        else:
            filler_ = None
        if filler_ is None:  # each file by itself, as without the family
            return tuple(m.fill(v) for m, v in zip(self.members, self.derive(source), strict=True))
        self._recent = [filler_, *self._recent[:_RECENT - 1]]
        texts = filler_(source)
        assert texts is not MISS
        return texts  # type: ignore[return-value]


# --- the contexts of this project's formats ----------------------------------------------------------------

_SURROGATES = re.compile("[\ud800-\udfff]")
# XML 1.0 Char production (https://www.w3.org/TR/xml/#charsets) without CR, which a parser reads as LF.
_XML_CARRIES = re.compile("[\t\n\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
# What ends a // comment: LF and CR for Mozilla's prefs parser, U+2028/U+2029 too for JavaScript (.cfg).
_LINE_END = re.compile("[\n\r\u2028\u2029\x00\ud800-\udfff]")


def xml_carriable(value: str) -> bool:
    return _XML_CARRIES.fullmatch(value) is not None


def text_carriable(value: str) -> bool:
    """Encodable as UTF-8 and storable in a pref (a NUL is not)."""
    return "\x00" not in value and _SURROGATES.search(value) is None


def line_carriable(value: str) -> bool:
    """One line of an INI or .reg file: no NUL (ends the value), no line break, UTF-16-encodable."""
    return _LINE_END.search(value) is None


def comment_carriable(value: str) -> bool:
    return _LINE_END.search(value) is None


# Raw text after // up to the end of the line (user.js and mozilla.cfg name the account in their headers).
LINE_COMMENT = Context("line comment", lambda s: s, comment_carriable)
NON_ASCII = " é€😀"
XML_SPECIALS = "&<>\"'\t\n --> ]]> \\" + NON_ASCII
INI_SPECIALS = "\"'=;[]\\%\t " + NON_ASCII
JS_SPECIALS = "\"'\\\n\r\t\u2028\u2029 */ --> </script> \x7f\x01" + NON_ASCII
