"""automx2's SQLite database -> one draft per provider.

Schema (rseichter/automx2 src/automx2/model.py, copied as facts into tests/fixtures/import/README.md):
provider(id, name, short_name); domain(id, name UNIQUE, provider_id, ldapserver_id NULL);
server(id, prio default 10, name, port, type imap|pop|smtp, socket_type default STARTTLS, user_name default
%EMAILADDRESS%, authentication default 'plain') linked to domains through server_domain; davserver and
ldapserver. Servers are ordered by prio (lower first), as automx2 orders them in its answers.

The database is opened read-only and immutable (nothing can be written, no journal is replayed), with
`trusted_schema` off so a hostile file cannot run SQL functions from its schema. The LDAP bind password is
never selected.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import quote

from generator.errors import Position
from generator.importers.autoconfig_xml import AUTH as XML_AUTH
from generator.importers.draft import MAX_SQLITE_BYTES, Draft, fail

KIND = "automx2 database"
SQLITE_MAGIC = b"SQLite format 3\x00"
SOCKET = {"ssl": "ssl", "tls": "ssl", "starttls": "starttls", "plain": "none", "none": "none"}
TYPES = {"imap": "imap", "pop": "pop3", "pop3": "pop3", "smtp": "smtp"}
AUTH = {k.lower(): v for k, v in XML_AUTH.items()}
_MAX_ROWS = 10_000
REQUIRED = {"provider": {"id", "name", "short_name"}, "domain": {"id", "name", "provider_id"},
            "server": {"id", "prio", "name", "port", "type", "socket_type", "user_name", "authentication"},
            "server_domain": {"server_id", "domain_id"}}


def is_sqlite(head: bytes) -> bool:
    return head.startswith(SQLITE_MAGIC)


def read(path: Path) -> list[Draft]:
    file = str(path)
    where = Position(file)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise fail(where, f"cannot read the file: {exc.strerror}", "check the path") from None
    if size > MAX_SQLITE_BYTES:
        raise fail(where, f"the database is {size:,} bytes, more than the {MAX_SQLITE_BYTES:,} this importer reads",
                   "copy only the automx2 tables into a smaller database")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro&immutable=1"
    try:
        con = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise fail(where, f"cannot open the database: {exc}", "give automx2's SQLite file") from None
    try:
        con.execute("PRAGMA trusted_schema = OFF")
        con.execute("PRAGMA query_only = ON")
        return _drafts(con, file)
    except sqlite3.DatabaseError as exc:
        raise fail(where, f"the database cannot be read: {exc}", "check that the file is complete and is "
                   "automx2's database") from None
    finally:
        con.close()


def _rows(con: sqlite3.Connection, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    rows = con.execute(sql + f" LIMIT {_MAX_ROWS + 1}", args).fetchall()
    if len(rows) > _MAX_ROWS:
        raise sqlite3.DatabaseError(f"more than {_MAX_ROWS:,} rows in one table")
    return rows


def _drafts(con: sqlite3.Connection, file: str) -> list[Draft]:
    tables = {r[0] for r in _rows(con, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table, columns in REQUIRED.items():
        if table not in tables:
            raise fail(Position(file), f"the database has no table '{table}' (tables: "
                       f"{', '.join(sorted(tables)) or 'none'})", "give automx2's database (automx2 2019 or later)")
        have = {r[1] for r in con.execute(f"PRAGMA table_info('{table}')").fetchall()}
        if not columns <= have:
            raise fail(Position(file), f"table '{table}' lacks the columns {', '.join(sorted(columns - have))}",
                       "give automx2's database")
    drafts = []
    for pid, name, short in _rows(con, "SELECT id, name, short_name FROM provider ORDER BY id"):
        draft = _provider(con, file, tables, pid, str(name), str(short or ""))
        if draft is not None:
            drafts.append(draft)
    if not drafts:
        raise fail(Position(file), "no provider in the database has a domain with servers",
                   "add domains and servers in automx2 first")
    return drafts


def _provider(con: sqlite3.Connection, file: str, tables: set[str], pid: int, name: str,
              short: str) -> Draft | None:
    def at(table: str, row: int) -> Position:  # a database has no lines: name the table row
        return Position(file, detail=f"{table} id={row}")
    domains = _rows(con, "SELECT id, name FROM domain WHERE provider_id = ? ORDER BY id", pid)
    if not domains:
        return None
    d = Draft(source=file, kind=KIND)
    names = [str(n) for _, n in domains]
    d.set(("provider", "id"), names[0], at("provider", pid), guessed=True)
    d.note(("provider", "id"), f"provider id taken from the first domain ({names[0]}): automx2 numbers providers",
           at("provider", pid), warn=False)
    d.set(("provider", "display_name"), name, at("provider", pid))
    if short and short != name:
        d.set(("provider", "short_name"), short, at("provider", pid))
    d.set(("provider", "domains"), names, at("domain", domains[0][0]))
    ids = [i for i, _ in domains]
    marks = ",".join("?" * len(ids))
    servers = _rows(con, "SELECT DISTINCT s.id, s.prio, s.name, s.port, s.type, s.socket_type, s.user_name, "
                    "s.authentication FROM server s JOIN server_domain sd ON sd.server_id = s.id "
                    f"WHERE sd.domain_id IN ({marks}) ORDER BY s.prio, s.id", *ids)
    incoming = [s for s in servers if TYPES.get(str(s[4]).lower()) in ("imap", "pop3")]
    outgoing = [s for s in servers if TYPES.get(str(s[4]).lower()) == "smtp"]
    for s in servers:
        if str(s[4]).lower() not in TYPES:
            d.note(("provider",), f"server {s[2]} of type {s[4]} skipped", at("server", s[0]))
    if not incoming or not outgoing:
        raise fail(at("provider", pid), f"provider '{name}' lacks an {'incoming' if not incoming else 'SMTP'} "
                   "server", "add one in automx2, or import another source for this provider")
    first_user = str(incoming[0][6] or "%EMAILADDRESS%")
    for i, row in enumerate(incoming):
        _server(d, ("incoming",) if i == 0 else ("fallbacks", "incoming", i - 1), row, True, first_user, at)
    for i, row in enumerate(outgoing):
        _server(d, ("outgoing",) if i == 0 else ("fallbacks", "outgoing", i - 1), row, False, first_user, at)
    if "ldapserver" in tables:
        ldap = _rows(con, "SELECT l.id, l.name, l.port, l.search_base FROM ldapserver l JOIN domain dm ON "
                     f"dm.ldapserver_id = l.id WHERE dm.id IN ({marks}) GROUP BY l.id ORDER BY l.id", *ids)
        for lid, host, port, base in ldap:
            # Never SELECT bind_password: it stays in automx2's database.
            d.note(("accounts",), f"automx2 looks up names and user names in LDAP ({host}:{port}, base {base}): "
                   "not carried; its bind password is never copied", at("ldapserver", lid),
                   hint="export the mailboxes from LDAP into accounts_csv (name,email[,username])")
    if "davserver" in tables and "davserver_domain" in tables:
        dav = _rows(con, "SELECT DISTINCT v.id, v.type, v.url FROM davserver v JOIN davserver_domain dd ON "
                    f"dd.davserver_id = v.id WHERE dd.domain_id IN ({marks}) ORDER BY v.id", *ids)
        for vid, kind, url in dav:
            d.note(("provider",), f"{kind} server {url} is not carried (the spec describes mail only)",
                   at("davserver", vid))
    return d


def _server(d: Draft, path: tuple[str | int, ...], row: tuple[Any, ...], incoming: bool, first_user: str,
            at: Any) -> None:
    sid, _prio, host, port, kind, socket, user, auth = row
    where = at("server", sid)
    if incoming:
        d.set((*path, "protocol"), TYPES[str(kind).lower()], where)
    d.set((*path, "host"), str(host), where)
    if not isinstance(port, int) or not 0 < port < 65536:
        raise fail(where, f"server {host} has port {port!r}", "set a port from 1 to 65535 in automx2")
    d.set((*path, "port"), port, where)
    security = SOCKET.get(str(socket).lower())
    if security is None:
        raise fail(where, f"server {host} has socket_type {socket!r}", "use SSL, STARTTLS or PLAIN")
    d.set((*path, "security"), security, where)
    method = AUTH.get(str(auth).lower())
    if method is None:
        raise fail(where, f"server {host} has authentication {auth!r}", "use plain, password-encrypted, NTLM, "
                   "GSSAPI, OAuth2 or none")
    d.set((*path, "authentication"), method, where)
    if security == "none" and method not in ("none", "gssapi"):
        d.set((*path, "allow_insecure"), True, where)
        d.note((*path, "allow_insecure"), f"automx2 offers {host}:{port} without encryption: allow_insecure keeps "
               "it; remove the server if clients should not use it", where)
    user = str(user or "%EMAILADDRESS%")
    if incoming:
        if (path == ("incoming",) and user != "%EMAILADDRESS%") or (path != ("incoming",) and user != first_user):
            d.set((*path, "username"), user, where)
    elif user == first_user:
        d.set((*path, "same_credentials"), True, where)
    else:
        d.set((*path, "same_credentials"), False, where)
        d.set((*path, "username"), user, where)
