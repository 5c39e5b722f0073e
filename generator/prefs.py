"""Mozilla prefs files: the string escaper for user.js, and strict readers that prove what we wrote.

Facts (FORMATS.md §2, seen in Thunderbird 140/153): the prefs parser accepts only the escapes
`\\" \\' \\\\ \\n \\r \\xNN \\uNNNN`; `\\t`, `\\/`, `\\b`, `\\f` make the whole pref a parse error that Thunderbird
drops silently, `\\u0000` is refused, `\\xNN` above 0x7F yields invalid UTF-8, raw UTF-8 round-trips. So the
writer escapes only `\\`, `"`, LF and CR and writes everything else raw; the reader raises where Thunderbird
would drop a pref, so a bad file can never pass verification.

The grammar (modules/libpref/parser/src/lib.rs): `pref|user_pref|sticky_pref ( "name" , value [, locked|sticky] ) ;`
with comments `//`, `#` and `/* */`. `lockPref`/`defaultPref` are *not* part of it: they are JavaScript
functions of the enterprise .cfg, read by `read_cfg` below.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

PrefValue = str | int | bool

# Mozilla stores int prefs as a signed 32-bit value; the parser rejects anything outside.
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
PREFS_FUNCTIONS = ("pref", "user_pref", "sticky_pref")
CFG_FUNCTIONS = ("defaultPref", "lockPref", "pref")


class PrefsSyntaxError(ValueError):
    """The file holds something Thunderbird's prefs parser (or .cfg reader) would reject or drop."""

    def __init__(self, line: int, column: int, message: str) -> None:
        self.line, self.column = line, column
        super().__init__(f"line {line}, column {column}: {message}")


@dataclass(frozen=True, slots=True)
class PrefCall:
    function: str
    name: str
    value: PrefValue
    line: int


def prefs_string(value: str) -> str:
    """A double-quoted prefs-file string literal. Backslash first, or the other escapes get doubled."""
    if "\x00" in value:
        raise ValueError("a NUL character cannot be stored in a Thunderbird pref")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def prefs_value(value: PrefValue) -> str:
    """Any pref value as a prefs-file literal (bool before int: bool is an int in Python)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise ValueError(f"{value} does not fit a 32-bit int pref")
        return str(value)
    return prefs_string(value)


def js_value(value: PrefValue) -> str:
    """A JavaScript literal for the .cfg. JSON is valid JavaScript there (FORMATS §2); ASCII-only output
    keeps the file independent of how Thunderbird guesses the .cfg encoding."""
    return json.dumps(value, ensure_ascii=True)


_SPACE = re.compile(r"[ \t\r\n]+")
_PLAIN_DQ = re.compile(r'[^"\\]+')
_PLAIN_SQ = re.compile(r"[^'\\]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT = re.compile(r"[+-]?[0-9]+")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text, self.i = text, 0

    def where(self, i: int | None = None) -> tuple[int, int]:
        i = self.i if i is None else i
        line = self.text.count("\n", 0, i) + 1
        return line, i - (self.text.rfind("\n", 0, i) + 1) + 1

    def fail(self, message: str, i: int | None = None) -> PrefsSyntaxError:
        return PrefsSyntaxError(*self.where(i), message)

    def skip(self) -> None:
        """Whitespace and comments."""
        t = self.text
        while self.i < len(t):
            c = t[self.i]
            if c in " \t\r\n":
                self.i = _SPACE.match(t, self.i).end()  # type: ignore[union-attr]  # matches at least c
            elif t.startswith("//", self.i) or c == "#":
                end = t.find("\n", self.i)
                self.i = len(t) if end < 0 else end + 1
            elif t.startswith("/*", self.i):
                end = t.find("*/", self.i + 2)
                if end < 0:
                    raise self.fail("unterminated /* comment")
                self.i = end + 2
            else:
                return

    def expect(self, token: str) -> None:
        self.skip()
        if not self.text.startswith(token, self.i):
            found = self.text[self.i:self.i + 10] or "end of file"
            raise self.fail(f"expected '{token}', found '{found}'")
        self.i += len(token)

    def word(self) -> str:
        self.skip()
        m = _NAME.match(self.text, self.i)
        if not m:
            raise self.fail(f"expected a name, found '{self.text[self.i:self.i + 10]}'")
        self.i = m.end()
        return m.group()

    def prefs_string(self) -> str:
        """A prefs-grammar string: only the escapes Mozilla's parser accepts."""
        self.skip()
        t, start = self.text, self.i
        if self.i >= len(t) or t[self.i] not in "\"'":
            raise self.fail("expected a string")
        quote = t[self.i]
        self.i += 1
        out: list[str] = []
        while True:
            if self.i >= len(t):
                raise self.fail("unterminated string", start)
            c = t[self.i]
            if c == quote:
                self.i += 1
                return "".join(out)
            if c != "\\":
                # A run of plain characters at once (the scanner is on every build's hot path).
                run = (_PLAIN_DQ if quote == '"' else _PLAIN_SQ).match(t, self.i)
                end = run.end() if run else self.i + 1
                out.append(t[self.i:end])
                self.i = end
                continue
            esc = t[self.i + 1:self.i + 2]
            if esc in ("\"", "'", "\\"):
                out.append(esc)
                self.i += 2
            elif esc == "n":
                out.append("\n")
                self.i += 2
            elif esc == "r":
                out.append("\r")
                self.i += 2
            elif esc == "x":
                code = self._hex(2)
                if code > 0x7F:
                    raise self.fail(f"\\x{code:02x} above 0x7F gives invalid UTF-8 in Thunderbird")
                out.append(self._char(code))
            elif esc == "u":
                code = self._hex(4)
                if 0xD800 <= code <= 0xDBFF and t.startswith("\\u", self.i):
                    low = self._hex(4)
                    if not 0xDC00 <= low <= 0xDFFF:
                        raise self.fail("a high surrogate must be followed by a low surrogate")
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                elif 0xD800 <= code <= 0xDFFF:
                    raise self.fail("lone surrogate in \\u escape")
                out.append(self._char(code))
            else:
                raise self.fail(f"'\\{esc}' is not an escape Thunderbird's prefs parser accepts (the pref "
                                "would be dropped)")

    def _hex(self, digits: int) -> int:
        s = self.text[self.i + 2:self.i + 2 + digits]
        if len(s) != digits or not re.fullmatch(r"[0-9A-Fa-f]+", s):
            raise self.fail(f"malformed \\{self.text[self.i + 1]} escape")
        self.i += 2 + digits
        return int(s, 16)

    def _char(self, code: int) -> str:
        if code == 0:
            raise self.fail("NUL is refused in pref strings")
        return chr(code)

    def value(self) -> PrefValue:
        self.skip()
        t = self.text
        if self.i < len(t) and t[self.i] in "\"'":
            return self.prefs_string()
        m = _INT.match(t, self.i)
        if m:
            number = int(m.group())
            if not _INT_MIN <= number <= _INT_MAX:
                raise self.fail(f"integer {number} out of range")
            self.i = m.end()
            return number
        name = self.word()
        if name in ("true", "false"):
            return name == "true"
        raise self.fail(f"expected a string, an integer, true or false, found '{name}'")


_GAP = r"(?:[ \t\r\n]+|//[^\n]*|\#[^\n]*|/\*.*?\*/)*"  # whitespace and comments
_STRING = r""""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'"""
_STATEMENT = re.compile(rf"""{_GAP}(?P<fn>[A-Za-z_][A-Za-z0-9_]*)[ \t\r\n]*\([ \t\r\n]*(?P<name>{_STRING})[ \t\r\n]*,
    [ \t\r\n]*(?P<value>{_STRING}|[+-]?[0-9]+|true|false)[ \t\r\n]*\)[ \t\r\n]*;""", re.S | re.X)
_TAIL = re.compile(_GAP + r"\Z", re.S | re.X)
_SIMPLE_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "r": "\r"}


class _NotSimple(Exception):
    """The fast reader met something it leaves to the exact scanner (which either accepts it or explains)."""


def _fast_string(token: str) -> str:
    body = token[1:-1]
    if "\\" not in body:
        return body
    out, i = [], 0
    while (j := body.find("\\", i)) >= 0:
        out.append(body[i:j])
        esc = body[j + 1:j + 2]
        if esc not in _SIMPLE_ESCAPES:
            raise _NotSimple  # \x, \u and the illegal ones: the scanner decodes or rejects them exactly
        out.append(_SIMPLE_ESCAPES[esc])
        i = j + 2
    out.append(body[i:])
    return "".join(out)


def _fast_read(text: str, functions: tuple[str, ...]) -> list[PrefCall]:
    """The same grammar as the scanner, one regular expression per statement: files we wrote are read at
    C speed; anything unusual (attributes, \\x/\\u escapes, every error) raises _NotSimple and the exact
    scanner takes over, so diagnostics stay precise."""
    calls: list[PrefCall] = []
    pos, line, counted = 0, 1, 0
    while (m := _STATEMENT.match(text, pos)) is not None:
        fn = m.group("fn")
        if fn not in functions:
            raise _NotSimple
        start = m.start("fn")
        line += text.count("\n", counted, start)
        counted = start
        raw = m.group("value")
        if raw[0] in "\"'":
            value: PrefValue = _fast_string(raw)
        elif raw in ("true", "false"):
            value = raw == "true"
        else:
            value = int(raw)
            if not _INT_MIN <= value <= _INT_MAX:
                raise _NotSimple
        calls.append(PrefCall(fn, _fast_string(m.group("name")), value, line))
        pos = m.end()
    if not _TAIL.match(text, pos):
        raise _NotSimple
    return calls


def read_prefs(data: bytes | str, functions: tuple[str, ...] = PREFS_FUNCTIONS) -> list[PrefCall]:
    """Every pref call of a prefs file (user.js, prefs.js, defaults/pref/*.js), strictly.

    `functions` narrows what is allowed (user.js should only hold user_pref)."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data  # raw UTF-8 is what Mozilla reads
    try:
        return _fast_read(text, functions)
    except _NotSimple:
        return _scan(text, functions)


def _scan(text: str, functions: tuple[str, ...]) -> list[PrefCall]:
    s = _Scanner(text)
    calls: list[PrefCall] = []
    while True:
        s.skip()
        if s.i >= len(text):
            return calls
        line = s.where()[0]
        start = s.i
        function = s.word()
        if function not in functions:
            raise s.fail(f"'{function}' is not allowed here (expected {' or '.join(functions)})", start)
        s.expect("(")
        name = s.prefs_string()
        s.expect(",")
        value = s.value()
        s.skip()
        if text.startswith(",", s.i):
            s.i += 1
            attr = s.word()
            if function != "pref" or attr not in ("locked", "sticky"):
                raise s.fail(f"attribute '{attr}' is not allowed on {function}")
        s.expect(")")
        s.expect(";")
        calls.append(PrefCall(function, name, value, line))


def read_cfg(data: bytes | str) -> list[PrefCall]:
    """The enterprise mozilla.cfg: Thunderbird skips the first line, the rest is JavaScript. We accept only
    the subset we write: `defaultPref|lockPref|pref("name", value);` with JSON-escaped string arguments."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    first_newline = text.find("\n")
    if first_newline < 0:
        return []
    body = text[first_newline + 1:]
    calls: list[PrefCall] = []
    call_re = re.compile(r'(defaultPref|lockPref|pref)\(("(?:[^"\\]|\\.)*"), (.*)\);\n')
    for number, line in enumerate(body.splitlines(keepends=True), start=2):
        stripped = line.strip()
        if not stripped or stripped.startswith("//"):
            continue
        if not line.endswith("\n"):
            line += "\n"
        m = call_re.fullmatch(line)
        if not m:
            raise PrefsSyntaxError(number, 1, f"not a pref call: {stripped[:60]!r}")
        try:
            name = json.loads(m.group(2))
            value = json.loads(m.group(3))
        except json.JSONDecodeError as exc:
            raise PrefsSyntaxError(number, 1, f"bad JavaScript literal ({exc.msg})") from None
        if not isinstance(value, str | int | bool) or isinstance(value, float):
            raise PrefsSyntaxError(number, 1, f"a pref value must be a string, integer or boolean: {value!r}")
        calls.append(PrefCall(m.group(1), name, value, number))
    return calls


def as_dict(calls: list[PrefCall]) -> dict[str, PrefValue]:
    """name -> value; a later call wins, as in Thunderbird. Raises PrefsSyntaxError for a pref set twice: our
    files set each once, and a proof of the last call alone would miss what the first did (a lockPref
    followed by a defaultPref of the same value leaves the pref locked; an earlier user_pref shows up in
    about:config history and in a reader that keeps the first)."""
    found: dict[str, PrefCall] = {}
    for call in calls:
        first = found.get(call.name)
        if first is not None:
            raise PrefsSyntaxError(call.line, 1, f"{call.name!r} is set a second time (first at line {first.line})")
        found[call.name] = call
    return {name: call.value for name, call in found.items()}
