"""What every importer produces: a spec-shaped draft with the source position of each value, the values
that were guessed, and the notes (losses, guesses, source comments) that become YAML comments and warnings.

Importers never print and never build the model themselves: `merge.py` combines drafts, `emit.py` writes
YAML, and the final text is validated by the same loader `check` uses.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.errors import Position, Problem, SpecError

SpecPath = tuple[str | int, ...]

# Size limits, checked before anything is parsed (the file is never read past them). Real inputs are far
# smaller: ISPDB entries are 1-5 KB, a mail profile with a certificate chain under 100 KB, a Thunderbird
# prefs.js with many accounts a few hundred KB.
MAX_XML_BYTES = 1 << 20
MAX_PROFILE_BYTES = 4 << 20
MAX_PREFS_BYTES = 8 << 20
MAX_SQLITE_BYTES = 64 << 20
# A mail profile holds a handful of payloads; a profile with hundreds is not a mail profile we should read.
MAX_PAYLOADS = 200
MAX_XML_ELEMENTS = 50_000
MAX_XML_DEPTH = 32


@dataclass(frozen=True)
class Note:
    """A comment for the spec at `path` (nearest existing key), and a warning on stderr when `warn`."""

    path: SpecPath
    text: str
    origin: Position | None
    warn: bool = True
    hint: str = ""


@dataclass
class Draft:
    """One account-or-provider's worth of spec data from one place in one source."""

    source: str  # the file, as given on the command line
    kind: str  # "Mozilla autoconfig", "Apple profile", ...
    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[SpecPath, Position] = field(default_factory=dict)
    guessed: set[SpecPath] = field(default_factory=set)
    notes: list[Note] = field(default_factory=list)

    def set(self, path: SpecPath, value: Any, origin: Position | None, guessed: bool = False) -> None:
        node: dict[Any, Any] = self.data
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = spec_host(value) if path[-1] == "host" else value
        if origin is not None:
            self.origins[path] = origin
        if guessed:
            self.guessed.add(path)

    def get(self, path: SpecPath, default: Any = None) -> Any:
        node: Any = self.data
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def note(self, path: SpecPath, text: str, origin: Position | None, warn: bool = True, hint: str = "") -> None:
        self.notes.append(Note(path, text, origin, warn, hint))


def spec_host(value: Any) -> Any:
    """A host as the spec writes it: an IPv6 literal in brackets. Host-name fields (autoconfig XML,
    Autodiscover, Thunderbird prefs, PRF) hold it bare, and our own discovery files write it so
    (model.bare_host)."""
    if isinstance(value, str) and ":" in value and not value.startswith("["):
        try:
            ipaddress.IPv6Address(value)
        except ValueError:
            return value
        return f"[{value}]"
    return value


def fail(where: Position, what: str, how: str) -> SpecError:
    """A located error about a source file (raised, translated at the CLI edge)."""
    return SpecError([Problem(where, what, how)])


def read_limited(path: Path, limit: int, what: str) -> bytes:
    """The file's bytes, refusing before reading when it is larger than `limit` (also for pipes and devices:
    at most limit + 1 bytes are ever read)."""
    where = Position(str(path))
    try:
        size = path.stat().st_size
        if path.is_file() and size > limit:
            raise fail(where, f"{what} is {size:,} bytes, more than the {limit:,} this importer reads",
                       "check that this is the right file (real ones are far smaller)")
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise fail(where, f"cannot read the file: {exc.strerror}", "check the path") from None
    if len(data) > limit:
        raise fail(where, f"{what} is more than the {limit:,} bytes this importer reads",
                   "check that this is the right file (real ones are far smaller)")
    return data
