"""Combine drafts: group them by provider (a shared provider id, mail domain or incoming server), then merge key
by key. A value one source states beats a value another source guessed (Apple's SSL/STARTTLS, a provider id
taken from a domain) and the note says so; two stated values that differ are a conflict: the first source
given on the command line wins, and the conflict becomes a comment at that key and a warning.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from generator.errors import Position
from generator.importers.draft import Draft, Note, SpecPath
from generator.model import to_a_label

# Values merged as a whole (an ordered list of servers, or one server, is one decision, not a sum of fragments).
WHOLE = {("imap_alternative",), ("fallbacks", "incoming"), ("fallbacks", "outgoing"),
         ("targets", "apple", "consent_text"), ("targets", "thunderbird", "enforce")}


@dataclass
class Merged:
    data: dict[str, Any]
    notes: list[Note]
    origins: dict[SpecPath, Position]
    sources: list[tuple[str, str]] = field(default_factory=list)  # (file, kind), in order, once each


def group(drafts: list[Draft]) -> list[list[Draft]]:
    """Drafts of the same provider together (connected by a stated id, a shared domain or the same incoming
    server), each group in input order."""
    groups: list[tuple[set[str], list[Draft]]] = []
    for d in drafts:
        keys = {f"domain:{_name(x)}" for x in d.get(("provider", "domains"), [])}
        host = d.get(("incoming", "host"))
        if host and "%" not in str(host):
            keys.add(f"host:{_name(host)}")  # one incoming server, one provider (serving several domains)
        if ("provider", "id") not in d.guessed and d.get(("provider", "id")):
            keys.add(f"id:{d.get(('provider', 'id'))}")
        joined = [g for g in groups if g[0] & keys]
        if not joined:
            groups.append((set(keys), [d]))
            continue
        first = joined[0]
        first[0].update(keys)
        first[1].append(d)
        for other in joined[1:]:
            first[0].update(other[0])
            first[1].extend(other[1])
            groups.remove(other)
    order = {id(d): i for i, d in enumerate(drafts)}  # by identity: equal drafts are still two sources
    return [sorted(g[1], key=lambda d: order[id(d)]) for g in groups]


def _name(value: Any) -> str:
    """A domain or host name as the model will hold it (A-labels, lower case), to tell when two sources name the
    same one: 'BÜCHER.example' and 'xn--bcher-kva.example' are one domain."""
    try:
        return to_a_label(str(value))
    except ValueError:  # an invalid name (or a placeholder) is compared as written; the model reports it
        return str(value).lower()


def _address(value: Any) -> str:
    local, _, domain = str(value).rpartition("@")
    return f"{local.lower()}@{_name(domain)}"


def _canon(value: Any, key: Any = None) -> Any:
    """`value` with its names and addresses in the model's form: what decides whether two sources agree."""
    if isinstance(value, dict):
        return {k: _canon(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_canon(v, key) for v in value]
    if isinstance(value, str) and key in ("host", "domains"):
        return _name(value)
    if isinstance(value, str) and key in ("email", "notify"):
        return _address(value)
    return value


def merge(drafts: list[Draft]) -> Merged:
    base = drafts[0]
    data = copy.deepcopy(base.data)
    origins = dict(base.origins)
    guessed = set(base.guessed)
    notes: list[Note] = []
    sources = [(base.source, base.kind)]
    provider = data.get("provider")
    if isinstance(provider, dict) and isinstance(provider.get("domains"), list):
        provider["domains"] = _union([], provider["domains"])
    if isinstance(data.get("accounts"), list):  # one source may list a mailbox twice too
        data["accounts"], listed = [], data["accounts"]
        _accounts(data["accounts"], listed, base, notes)
    for d in drafts[1:]:
        if (d.source, d.kind) not in sources:
            sources.append((d.source, d.kind))
        _merge(data, d.data, (), d, origins, guessed, notes)
    # A draft's note about its own guess goes when another source's value was kept at that key.
    kept = [n for d in drafts for n in d.notes
            if not (n.path in d.guessed and origins.get(n.path) != d.origins.get(n.path))]
    return Merged(data, _dedupe(kept + notes), origins, sources)


def _dedupe(notes: list[Note]) -> list[Note]:
    seen: set[tuple[SpecPath, str]] = set()
    out = []
    for n in notes:
        if (n.path, n.text) not in seen:
            seen.add((n.path, n.text))
            out.append(n)
    return out


def _origin(origins: dict[SpecPath, Position], path: SpecPath) -> Position | None:
    """Where a value came from; for a value merged whole (a server), where its first key came from."""
    if path in origins:
        return origins[path]
    return next((pos for p, pos in origins.items() if p[: len(path)] == path), None)


def _where(origins: dict[SpecPath, Position], path: SpecPath, fallback: str) -> str:
    pos = _origin(origins, path)
    return str(pos) if pos else fallback


def _merge(into: dict[Any, Any], other: dict[Any, Any], path: SpecPath, d: Draft,
           origins: dict[SpecPath, Position], guessed: set[SpecPath], notes: list[Note]) -> None:
    for key, value in other.items():
        here = (*path, key)
        if key not in into:
            into[key] = copy.deepcopy(value)
            _adopt(here, value, d, origins, guessed)
            continue
        same = _canon(into[key], key) == _canon(value, key)
        if here == ("provider", "domains"):
            into[key] = _union(into[key], value)
        elif here == ("accounts",):
            _accounts(into[key], value, d, notes)
        elif isinstance(value, dict) and isinstance(into[key], dict) and here not in WHOLE:
            _merge(into[key], value, here, d, origins, guessed, notes)
        elif not same and here == ("incoming", "username") and d.get(("accounts",)):
            _per_account_users(str(value), d, notes)
        elif not same:
            _conflict(into, key, value, here, d, origins, guessed, notes)
        elif here in guessed and here not in d.guessed:  # a source confirms the guess: no longer a guess
            origins[here] = d.origins.get(here, Position(d.source))
            guessed.discard(here)


def _adopt(path: SpecPath, value: Any, d: Draft, origins: dict[SpecPath, Position], guessed: set[SpecPath]) -> None:
    for p, pos in d.origins.items():
        if p[: len(path)] == path:
            origins[p] = pos
    guessed.update(p for p in d.guessed if p[: len(path)] == path)


def _conflict(into: dict[Any, Any], key: Any, value: Any, here: SpecPath, d: Draft,
              origins: dict[SpecPath, Position], guessed: set[SpecPath], notes: list[Note]) -> None:
    kept, kept_at = into[key], _where(origins, here, "an earlier source")
    new_at = _where(d.origins, here, d.source)
    name = ".".join(str(p) for p in here)
    if here in guessed and here not in d.guessed:
        into[key] = copy.deepcopy(value)
        origins[here] = d.origins.get(here, Position(d.source))
        guessed.discard(here)
        notes.append(Note(here, f"{name}: {_show(value)} as {new_at} says (the guess {_show(kept)} from {kept_at} "
                          "dropped)", d.origins.get(here), warn=False))
        return
    if here in d.guessed:
        return  # a stated value beats a guess, and the first of two guesses stays (its note says so)
    notes.append(Note(here, f"conflict: {name} is {_show(kept)} in {kept_at} but {_show(value)} in {new_at}; "
                      "kept the first (sources count in the order given)", _origin(d.origins, here),
                      hint="check which is right and edit the spec"))


def _per_account_users(pattern: str, d: Draft, notes: list[Note]) -> None:
    """This draft's mailboxes follow another user-name pattern than the spec's: keep their real user names
    per account instead of reporting a conflict (each account is still exactly what its source says)."""
    for account in d.data["accounts"]:
        if "username" not in account:
            email = account["email"]
            local, domain = email.rsplit("@", 1)
            account["username"] = (pattern.replace("%EMAILADDRESS%", email).replace("%EMAILLOCALPART%", local)
                                   .replace("%EMAILDOMAIN%", domain).replace("%REALNAME%", account["name"]))
            notes.append(Note(("accounts",), f"{email}: user name {account['username']} does not follow the "
                              "spec's incoming.username pattern, so it is written on the account",
                              d.origins.get(("incoming", "username")), warn=False))


def _show(value: Any) -> str:
    if isinstance(value, dict) and "host" in value and "port" in value:  # a server: enough to tell two apart
        return f"{value['host']}:{value['port']}"
    if isinstance(value, dict):
        return "{…}"
    return repr(value) if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def _union(domains: list[Any], more: list[Any]) -> list[Any]:
    """`domains` and then those of `more` it does not name yet, each as first written."""
    known = {_name(x) for x in domains}
    out = list(domains)
    for x in more:
        if _name(x) not in known:
            known.add(_name(x))
            out.append(x)
    return out


def _accounts(into: list[dict[str, Any]], more: list[dict[str, Any]], d: Draft, notes: list[Note]) -> None:
    known = {_address(a["email"]): a for a in into}
    for account in more:
        existing = known.get(_address(account["email"]))
        if existing is None:
            into.append(dict(account))
            known[_address(account["email"])] = into[-1]
            continue
        for key, value in account.items():
            if key not in existing:
                existing[key] = value
            elif _canon(existing[key], key) != _canon(value, key):
                notes.append(Note(("accounts",), f"conflict: {account['email']} has {key} {_show(existing[key])} "
                                  f"in an earlier source but {_show(value)} in {d.source}; kept the first",
                                  d.origins.get(("accounts",)), hint="edit the account"))
