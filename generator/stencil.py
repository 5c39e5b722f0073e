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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

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
    tokens = [_TOKEN.format(i) for i in range(len(strings))]
    probe = substitute(value, iter(tokens))
    text = render(probe)
    if check(probe, text):
        return None
    pieces = _TOKENS.split(text)
    segments, slots = tuple(pieces[0::2]), tuple(int(s) for s in pieces[1::2])
    if set(slots) != set(range(len(strings))):  # a string the file does not show: nothing to fill
        return None
    # Which context each gap is in: the escape that reproduces a rendering whose strings carry the
    # characters every context carries.
    common = "".join(c for c in fmt.specials if all(ctx.carriable(c) for ctx in fmt.contexts))
    hostile = [t + common for t in tokens]
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
    own = [t + "".join(c for c in fmt.specials if all(ctx.carriable(c) for ctx in cs))
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


def compile_filler(value: Any, stencil: Stencil, name: str = "") -> Filler:
    """`stencil` compiled for the shape of `value`: a function that, for any value, returns MISS unless the
    value has exactly that shape (shape(v)[0] == shape(value)[0]), and otherwise does what `Stencils.fill`
    does with the stencil: None if a string fails its checks, else the filled text.

    The function is generated Python, one statement per node of the shape: the type and length or keys of
    every container, the type and value of every scalar and `Fixed` word, the emptiness of every string, in
    the order `shape` walks them. That is what `shape` would compute, without building the key (the walk was a
    quarter of a stencilled build). Each string equal to the one `value` has there (a server name, the same for
    every account) reuses its checked and escaped form. Every constant reaches the code through its
    namespace, never as source text. tests/test_stencil.py checks it against `shape` on arbitrary nests."""
    consts: dict[str, Any] = {"MISS": MISS, "dict": dict, "list": list, "tuple": tuple, "str": str}
    lines = ["def filler(v):"]
    names = iter(range(1 << 30))
    strings: list[tuple[str, str]] = []  # (variable, the string `value` has there)

    def const(obj: Any) -> str:
        name = f"k{len(consts)}"
        consts[name] = obj
        return name

    def walk(node: Any, expr: str) -> None:
        var = f"x{next(names)}"
        lines.append(f"    {var} = {expr}")
        kind = type(node)
        if kind is str:
            lines.append(f"    if type({var}) is not str or {'not ' if node else ''}{var}: return MISS")
            strings.append((var, node))
        elif kind is dict:
            lines.append(f"    if type({var}) is not dict or list({var}) != {const(list(node))}: return MISS")
            for k, child in node.items():
                walk(child, f"{var}[{const(k)}]")
        elif kind is list or kind is tuple:
            lines.append(f"    if type({var}) is not {kind.__name__} or len({var}) != {len(node)}: return MISS")
            for i, child in enumerate(node):
                walk(child, f"{var}[{i}]")
        elif node is None:
            lines.append(f"    if {var} is not None: return MISS")
        elif kind in _SCALARS:
            lines.append(f"    if type({var}) is not {const(kind)} or {var} != {const(node)}: return MISS")
        else:
            raise TypeError(f"no shape for {kind.__name__}")

    walk(value, "v")
    if len(strings) != len(stencil.checks):
        raise ValueError("the stencil was not learnt from this shape")
    escaped: dict[tuple[int, int], str] = {}
    for (var, seen), checks in zip(strings, stencil.checks, strict=True):
        passes = " and ".join(f"{const(check)}({var})" for check in checks)
        if all(check(seen) for check in checks):
            lines.append(f"    if {var} != {const(seen)} and not ({passes}): return None")
        else:
            lines.append(f"    if not ({passes}): return None")
    parts = [const(stencil.segments[0])]
    for gap, (slot, escape) in enumerate(zip(stencil.slots, stencil.escapes, strict=True)):
        var, seen = strings[slot]
        call = f"{const(escape)}({var})"
        if all(check(seen) for check in stencil.checks[slot]):
            done = escaped.setdefault((slot, id(escape)), const(escape(seen)))
            call = f"({done} if {var} == {const(seen)} else {call})"
        parts += [call, const(stencil.segments[gap + 1])]
    lines.append(f"    return ''.join(({', '.join(parts)},))")
    # Our own generated code: every name in it is ours, every constant is passed by name in `consts`.
    exec(compile("\n".join(lines), f"<stencil filler: {name}>", "exec"), consts)
    filler: Filler = consts["filler"]
    return filler


_RECENT = 4  # compiled fillers tried before the shape key is computed


@dataclass
class Stencils:
    """The stencils of one kind of file, learnt as shapes appear (at most MAX_SHAPES)."""

    fmt: Format
    render: Callable[[Any], str]
    check: Callable[[Any, str], list[str]]
    _known: dict[Any, Filler | None] = field(default_factory=dict)
    _recent: list[Filler] = field(default_factory=list)  # the shapes seen last, most recent first

    def fill(self, value: Any) -> str | None:
        """The file for `value` from its shape's proven stencil, or None: take the full path."""
        for filler in self._recent:
            text = filler(value)
            if text is not MISS:
                return text  # type: ignore[return-value]
        key, _ = shape(value)
        if key in self._known:
            filler_ = self._known[key]
        elif len(self._known) < MAX_SHAPES:
            stencil = learn(value, self.render, self.check, self.fmt)
            filler_ = self._known[key] = compile_filler(value, stencil, self.fmt.name) if stencil is not None else None
        else:
            return None
        if filler_ is None:
            return None
        self._recent = [filler_, *self._recent[:_RECENT - 1]]
        text = filler_(value)
        assert text is not MISS
        return text  # type: ignore[return-value]


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
