"""`mailprofile import`: turn what an admin already has into a commented spec.

Sources (one module each): Mozilla autoconfig / ISPDB XML, Apple .mobileconfig (plain or signed), automx2's
SQLite database, Thunderbird prefs.js / user.js / mozilla.cfg / policies.json, Outlook PRF and autodiscover.xml.
Every source is untrusted: size limits before parsing, defusedxml, no network, located errors (SpecError) for
anything wrong. Drafts of one provider are merged (merge.py), written as YAML (emit.py), and the text is proven
the way `check` would: loaded, validated into the model and linted for its targets, before anything is printed.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from generator.errors import Position, Problem, SpecError
from generator.importers import (
    autoconfig_xml,
    autodiscover_xml,
    automx2_db,
    cms,
    mobileconfig,
    outlook_prf,
    thunderbird_prefs,
)
from generator.importers.draft import Draft, Note
from generator.importers.emit import emit
from generator.importers.merge import Merged, group, merge
from generator.model import Spec
from generator.spec import LoadedSpec, validate
from generator.yamlload import load_yaml

DEFAULT_SCHEMA = "mailprofile.schema.json"


@dataclass
class ImportResult:
    text: str
    warnings: list[Problem] = field(default_factory=list)
    info: list[str] = field(default_factory=list)  # one line per source: what it was (and its signature)
    provider: str = ""
    accounts: int = 0


def sniff(path: Path) -> str:
    """Which importer reads this file, from its first bytes (never the extension alone)."""
    try:
        # Only regular files: opening a FIFO without a writer blocks for ever, and a pipe (`<(curl …)`,
        # /dev/stdin fed by a pipe) would lose these first bytes before the importer reopens it. stat()
        # does not block.
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            kind = ("a folder" if stat.S_ISDIR(mode) else "a named pipe (FIFO)" if stat.S_ISFIFO(mode)
                    else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket")
            raise SpecError([Problem(Position(str(path)), f"not a regular file but {kind}",
                                     "save the source to a file first (e.g. curl -o source.xml URL) and import "
                                     "that file")])
        with path.open("rb") as handle:
            head = handle.read(4096)
    except OSError as exc:
        raise SpecError([Problem(Position(str(path)), f"cannot read the file: {exc.strerror}",
                                 "check the path")]) from None
    if automx2_db.is_sqlite(head):
        return "automx2"
    if outlook_prf.is_prf(head):
        return "prf"
    if head.startswith(b"bplist00") or cms.is_cms(head):
        return "mobileconfig"
    wide = _utf16(head)
    if wide is not None:
        # Windows editors save "Unicode" text as UTF-16: expat reads such XML itself (BOM or not), so only
        # the sniffing needs the text; Thunderbird reads prefs files as UTF-8 only.
        head = wide.encode("utf-8")
        if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
            return "mobileconfig" if b"<plist" in head else "autodiscover" if \
                autodiscover_xml.is_autodiscover(head) else "autoconfig"
        raise SpecError([Problem(Position(str(path)), "the file is UTF-16 text that is not XML",
                                 "save it as UTF-8 (Thunderbird reads prefs.js, user.js, mozilla.cfg and "
                                 "policies.json only as UTF-8)")])
    if head[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
        raise SpecError([Problem(Position(str(path)), "the file is UTF-32, which no source format uses",
                                 "save it as UTF-8")])
    if head.startswith(b"bplist00") or cms.is_cms(head) or b"<plist" in head:
        return "mobileconfig"
    if b"<clientConfig" in head:
        return "autoconfig"
    if autodiscover_xml.is_autodiscover(head):
        return "autodiscover"
    if b"<" in head[:200] and head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return "autoconfig"  # some other XML: the autoconfig reader says what it expected
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") and b'"policies"' in head:
        return "prefs"  # Thunderbird's policies.json: its Preferences policy holds the same prefs
    if any(word in head for word in (b"user_pref(", b"pref(", b"defaultPref(", b"lockPref(")):
        return "prefs"
    raise SpecError([Problem(Position(str(path)), "not a source mailprofile can import",
                             "give a Mozilla autoconfig XML, an Apple .mobileconfig, an automx2 SQLite database, "
                             "Thunderbird prefs (prefs.js, user.js, mozilla.cfg, policies.json) or an Outlook .prf")])


def _utf16(head: bytes) -> str | None:
    """The text of a UTF-16 head (with a BOM, or BOM-less XML starting with '<'), else None."""
    if head[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
        return None  # UTF-32: its little-endian BOM starts like UTF-16's
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        codec = "utf-16"
    elif head[:2] == b"<\x00":  # BOM-less UTF-16 XML (XML 1.0 appendix F)
        codec = "utf-16-le"
    elif head[:2] == b"\x00<":
        codec = "utf-16-be"
    else:
        return None
    return head[: len(head) // 2 * 2].decode(codec, errors="ignore")


def read_source(path: Path, verify: bool = False) -> tuple[list[Draft], str]:
    kind = sniff(path)
    if kind == "automx2":
        return automx2_db.read(path), f"{path}: {automx2_db.KIND}"
    if kind == "mobileconfig":
        drafts, signature = mobileconfig.read(path, verify)
        return drafts, f"{path}: {mobileconfig.KIND}" + (f", {signature}" if signature else ", unsigned")
    if kind == "autoconfig":
        return autoconfig_xml.read(path), f"{path}: {autoconfig_xml.KIND}"
    if kind == "autodiscover":
        return autodiscover_xml.read(path), f"{path}: {autodiscover_xml.KIND}"
    if kind == "prf":
        return outlook_prf.read(path), f"{path}: {outlook_prf.KIND}"
    return thunderbird_prefs.read(path), f"{path}: {thunderbird_prefs.KIND}"


def import_sources(paths: list[Path], verify: bool = False, provider: str | None = None,
                   schema: str = DEFAULT_SCHEMA) -> ImportResult:
    """Read every source, merge the chosen provider, return the spec text (proven) with its warnings."""
    drafts: list[Draft] = []
    problems: list[Problem] = []
    info: list[str] = []
    for path in paths:
        try:
            found, line = read_source(path, verify)
        except SpecError as exc:
            problems += exc.problems  # report every broken source in one run
            continue
        drafts += found
        info.append(line)
    if problems:
        raise SpecError(problems)
    groups = group(drafts)
    chosen = _choose(groups, provider)
    merged = merge(chosen)
    _complete(merged)
    spec = _validate(merged)
    header = ["Imported by `mailprofile import` from:", *[f"  {src} ({kind})" for src, kind in merged.sources],
              "Comments below say what the sources hold that this spec cannot, and which values were guessed.",
              "Check them, then run: mailprofile check <this file>"]
    text = emit(merged.data, merged.notes, header, schema)
    try:
        _prove(text)
    except SpecError as exc:
        # A target that cannot express what the sources say (Apple and OAuth2, Thunderbird's autoconfig and an
        # incoming server without authentication) is left out of targets.build, with the reason; anything
        # else is a real problem of the imported values.
        if not _drop_targets(merged, text, spec):
            raise SpecError([Problem(p.position, f"the imported spec would not pass check: {p.message}", p.hint)
                             for p in exc.problems]) from None
        text = emit(merged.data, merged.notes, header, schema)
        _prove(text)
    warnings = [Problem(n.origin, n.text, n.hint, "warning") for n in merged.notes if n.warn]
    return ImportResult(text, warnings, info, spec.provider.id, len(spec.accounts))


def _choose(groups: list[list[Draft]], provider: str | None) -> list[Draft]:
    def names(g: list[Draft]) -> set[str]:
        out = {str(d.get(("provider", "id"))) for d in g}
        return out | {x for d in g for x in d.get(("provider", "domains"), [])}

    if provider is not None:
        matching = [g for g in groups if provider in names(g)]
        if not matching:
            raise SpecError([Problem(None, f"no source describes the provider '{provider}'",
                                     "choose one of: " + "; ".join(_label(g) for g in groups))])
        return matching[0]
    if len(groups) > 1:
        raise SpecError([Problem(None, f"the sources describe {len(groups)} providers: "
                                 + "; ".join(_label(g) for g in groups),
                                 "pick one with --provider ID (a spec describes one provider)")])
    return groups[0]


def _label(g: list[Draft]) -> str:
    d = next((x for x in g if x.get(("provider", "id"))), g[0])
    domains = ", ".join(d.get(("provider", "domains"), [])) or "no domain"
    return f"{d.get(('provider', 'id')) or 'an unnamed provider'} ({domains}, from {d.source})"


def _complete(m: Merged) -> None:
    """What a spec needs that sources may not say: accounts, and targets that can carry the method."""
    data = m.data
    if not data.get("provider", {}).get("domains"):
        raise SpecError([Problem(Position(src), "no source names a mail domain (this one holds servers but no "
                                 "address)", "import it together with a source that has the mailboxes or the "
                                 "provider: a profile, PRF, prefs or the autoconfig XML") for src, _ in m.sources])
    data = m.data
    if not data.get("accounts"):
        domain = data["provider"]["domains"][0]
        data["accounts"] = [{"name": "Example User", "email": f"user@{domain}"}]
        m.notes.append(Note(("accounts",), "the sources list no mailboxes: this example account only lets "
                            "`check` pass", None, hint="replace it with your accounts, or with accounts_csv: FILE"))


def _drop_targets(m: Merged, text: str, spec: Spec) -> bool:
    """Leave out the targets whose lint refuses the imported values; False when every target fails (the
    problem is then not one of a target)."""
    from generator.build import prepare

    failing: dict[str, list[str]] = {}
    for name in spec.targets.build:
        try:
            prepare(_loaded(text), only=[name])
        except SpecError as exc:
            failing[name] = [p.message for p in exc.problems]
    if not failing or len(failing) == len(spec.targets.build):
        return False
    m.data.setdefault("targets", {})["build"] = [t for t in spec.targets.build if t not in failing]
    for target, messages in failing.items():
        m.notes.append(Note(("targets", "build"), f"{target} is left out of targets.build: {'; '.join(messages)}",
                            None))
    return True


def _validate(m: Merged) -> Spec:
    """The merged values must fit the model; a value that does not is the source's fault, located there."""
    from generator.importers.emit import _as_lists

    try:
        return Spec.model_validate(_as_lists(m.data))
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(p for p in err["loc"] if isinstance(p, int) or "[" not in str(p))
            where = _origin(m, loc)
            message = str(err.get("ctx", {}).get("error", err["msg"]))
            name = ".".join(str(p) for p in loc)
            value = err.get("input")
            shown = "" if isinstance(value, dict | list) else f" (value {value!r} from this source)"
            problems.append(Problem(where, f"{name}: {message}{shown}",
                                    "fix the source, or import it and edit the spec by hand"))
        raise SpecError(problems) from None


def _origin(m: Merged, loc: tuple[Any, ...]) -> Position:
    """Where the value at `loc` came from; for a section (a check across its keys), where its first key did;
    else the first source: a problem always names a file."""
    for i in range(len(loc), 0, -1):
        if loc[:i] in m.origins:
            return m.origins[loc[:i]]
    inside = [pos for path, pos in m.origins.items() if path[:len(loc)] == loc]
    if inside:
        return min(inside)
    return Position(m.sources[0][0])


def _loaded(text: str) -> LoadedSpec:
    """The text loaded exactly as `check` loads a file: YAML with positions, then the model."""
    name = "<imported spec>"
    doc = load_yaml(text, name)
    return LoadedSpec(spec=validate(Spec, doc.data, doc.where), path=Path(name), document=doc)


def _prove(text: str) -> None:
    """What `check` would say: the model and every target's lint (prepare raises SpecError on an error)."""
    from generator.build import prepare  # build imports the targets: only needed here

    prepare(_loaded(text))
