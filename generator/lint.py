"""Checks that look at the spec as a whole: mismatched ports and security, passwords in plain text.

Target-specific checks (what a client format cannot carry) live in each target's `lint()`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata

import idna

from generator.errors import Position, Problem
from generator.model import IncomingServer, Server, bare_host, user_template
from generator.spec import LoadedSpec

# Well-known ports (IANA): implicit TLS on 993/995/465, plain text or STARTTLS on 143/110/25/587.
IMPLICIT_TLS_PORTS = {993: "imap", 995: "pop3", 465: "smtp"}
STARTTLS_PORTS = {143: "imap", 110: "pop3", 25: "smtp", 587: "smtp"}


def _servers(loaded: LoadedSpec) -> list[tuple[tuple[str | int, ...], Server, str]]:
    spec = loaded.spec
    out: list[tuple[tuple[str | int, ...], Server, str]] = [
        (("incoming",), spec.incoming, spec.incoming.protocol), (("outgoing",), spec.outgoing, "smtp")]
    if spec.imap_alternative is not None:
        out.append((("imap_alternative",), spec.imap_alternative, "imap"))
    out += [(("fallbacks", "incoming", i), s, s.protocol) for i, s in enumerate(spec.fallbacks.incoming)]
    out += [(("fallbacks", "outgoing", i), s, "smtp") for i, s in enumerate(spec.fallbacks.outgoing)]
    return out


def lint_spec(loaded: LoadedSpec) -> list[Problem]:
    problems: list[Problem] = []
    for path, server, protocol in _servers(loaded):
        name = ".".join(str(p) for p in path)
        at = loaded.where(*path, "port")
        if server.port in IMPLICIT_TLS_PORTS and server.security != "ssl":
            problems.append(Problem(loaded.where(*path, "security"),
                                    f"{name}: port {server.port} is the implicit-TLS port, but security is "
                                    f"'{server.security}'", "use security: ssl, or check the port", "warning"))
        if server.port in STARTTLS_PORTS and server.security == "ssl":
            problems.append(Problem(loaded.where(*path, "security"),
                                    f"{name}: port {server.port} is normally plain text or STARTTLS, but security "
                                    "is 'ssl'", "use security: starttls, or check the port", "warning"))
        expected = IMPLICIT_TLS_PORTS.get(server.port) or STARTTLS_PORTS.get(server.port)
        if expected and expected != protocol:
            problems.append(Problem(at, f"{name}: port {server.port} is {_article(expected)} {expected.upper()} port, "
                                    f"but this is {_article(protocol)} {protocol.upper()} server", "check the port",
                                    "warning"))
        sends_secret = server.authentication not in ("none", "gssapi")
        if server.security == "none" and sends_secret and not server.allow_insecure:
            problems.append(Problem(loaded.where(*path, "security"),
                                    f"{name}: {server.authentication} authentication without encryption "
                                    f"{_EXPOSED[server.authentication]}",
                                    "use ssl or starttls, or set allow_insecure: true on this server if you "
                                    "really mean it"))
        if server.allow_insecure and server.security != "none":
            problems.append(Problem(loaded.where(*path, "allow_insecure"),
                                    f"{name}: allow_insecure has no effect on an encrypted server",
                                    "remove allow_insecure", "warning"))
        if isinstance(server, IncomingServer) and server.authentication == "none":
            problems.append(Problem(loaded.where(*path, "authentication"),
                                    f"{name}: an incoming server without authentication is unusual",
                                    "check authentication", "warning"))
    problems += _shared_endpoints(loaded)
    problems += _plain_text_first(loaded)
    probe = _probe_domains(loaded)
    for path, server, _protocol in _servers(loaded):
        problems += _unreachable(loaded, path, server, probe)
    spec = loaded.spec
    if spec.outgoing.port == 25:
        # Port 25 is relay between servers (RFC 5321); clients submit on 587 or 465 (RFC 6409, RFC 8314).
        # Consumer ISPs and many networks block outgoing port 25, so a laptop that works at the office cannot
        # send from home. As a fallback, as the provider guides list it for legacy clients, it is normal.
        problems.append(Problem(loaded.where("outgoing", "port"),
                                "outgoing: port 25 is for mail between servers; many ISPs and networks block it "
                                "for clients, which then cannot send away from the office",
                                "use submission: port 587 with security: starttls, or 465 with ssl (keep 25 as a "
                                "fallback if legacy clients need it)", "warning"))
    for i, domain in enumerate(spec.provider.domains):
        problems += _look_alike(domain, loaded.where("provider", "domains", i), "provider.domains")
    for path, server, _protocol in _servers(loaded):
        problems += _look_alike(server.host, loaded.where(*path, "host"), ".".join(str(p) for p in path) + ".host")
    if spec.outgoing.same_credentials and "username" in loaded.document.data.get("outgoing", {}):
        problems.append(Problem(loaded.where("outgoing", "username"),
                                "outgoing.username is ignored: same_credentials uses the incoming user name",
                                "remove outgoing.username, or set same_credentials: false", "warning"))
    return problems


# What each method gives away on an unencrypted connection. CRAM-MD5 and NTLM send a response, not the
# password, but one that can be tried against guesses offline; Outlook's files cannot even express
# encrypted-password and send the password itself (targets/outlook.py).
_EXPOSED = {"password": "sends the password readably over the network",
            "encrypted-password": "lets anyone on the network record the exchange and guess the password offline "
                                  "(and Outlook, which cannot express it, sends the password itself)",
            "ntlm": "lets anyone on the network record the exchange and guess the password offline",
            "oauth2": "sends the access token readably over the network: whoever reads it logs in as the user"}


def _article(protocol: str) -> str:
    return "an" if protocol == "imap" else "a"


_Entry = tuple[str, Server, str]  # (dotted name, server, protocol)


def _pattern(host: str) -> tuple[str, str] | None:
    """A host with one %EMAILDOMAIN% as (before, after), lower-case; None for a host without one."""
    before, mark, after = host.lower().partition("%emaildomain%")
    return (before, after) if mark else None


def _splits(host: str, domains: set[str]) -> list[tuple[str, str]]:
    """The (before, after) patterns a literal host is an expansion of: every run of its labels that is one of
    the provider's domains, cut out. At most labels² look-ups, whatever the number of domains."""
    labels = host.lower().split(".")
    return [(".".join(labels[:a]) + "." if a else "", "." + ".".join(labels[b:]) if b < len(labels) else "")
            for a in range(len(labels)) for b in range(a + 1, len(labels) + 1) if ".".join(labels[a:b]) in domains]


def _shared_endpoints(loaded: LoadedSpec) -> list[Problem]:
    """Two servers of the spec at the same host and port. One port speaks one protocol, and either starts with
    TLS (ssl) or does not (starttls, none): a second protocol or TLS mode there cannot work. The same server
    listed twice is only tried twice; the same port again without encryption after STARTTLS is the downgrade
    an attacker who strips STARTTLS makes clients take, with the password readable.

    A host with %EMAILDOMAIN% meets a literal host where the literal is that pattern filled with one of the
    domains; hosts are compared as patterns, never expanded per domain (thousands of domains times thousands
    of fallbacks would be millions of names)."""
    domains = set(loaded.spec.provider.domains)
    literal: dict[tuple[str, int], _Entry] = {}  # host, port -> first server there
    patterns: dict[tuple[str, str, int], _Entry] = {}  # before, after, port -> first server with that pattern
    literal_by_pattern: dict[tuple[str, str, int], tuple[str, _Entry]] = {}  # ... -> first literal host matching
    problems: list[Problem] = []
    for path, server, protocol in _servers(loaded):
        name, port = ".".join(str(p) for p in path), server.port
        entry = (name, server, protocol)
        met: list[tuple[str, _Entry]] = []  # (the shared host as shown, the earlier server)
        pattern = _pattern(server.host)
        if pattern is None or "%emaildomain%" in pattern[1]:  # literal, or a pattern too odd to match: as is
            host = server.host.lower()
            first = literal.setdefault((host, port), entry)
            if first is not entry:
                met.append((host, first))
            for before, after in _splits(host, domains) if pattern is None else []:
                if (before, after, port) in patterns:
                    met.append((host, patterns[before, after, port]))
                literal_by_pattern.setdefault((before, after, port), (host, entry))
        else:
            key = (*pattern, port)
            first = patterns.setdefault(key, entry)
            if first is not entry:
                met.append((server.host.lower(), first))
            if key in literal_by_pattern:
                met.append(literal_by_pattern[key])
        for host, (first_name, other, other_protocol) in met:
            problem = _endpoint_problem(loaded, path, name, server, protocol, f"{host}:{port}", first_name, other,
                                        other_protocol)
            if problem is not None:
                problems.append(problem)
                break  # one problem per server
    return problems


def _endpoint_problem(loaded: LoadedSpec, path: tuple[str | int, ...], name: str, server: Server, protocol: str,
                      endpoint: str, first_name: str, other: Server, other_protocol: str) -> Problem | None:
    if other_protocol != protocol:
        return Problem(loaded.where(*path, "port"),
                       f"{name}: {endpoint} is already {first_name}, {_article(other_protocol)} "
                       f"{other_protocol.upper()} server; one port speaks one protocol",
                       "check the host and port (IMAP: 993 or 143, POP3: 995 or 110, SMTP: 465 or 587)")
    if (other.security == "ssl") != (server.security == "ssl"):
        return Problem(loaded.where(*path, "security"),
                       f"{name}: {endpoint} is already {first_name} with security '{other.security}'; a port "
                       f"either starts with TLS (ssl) or does not (starttls, none), so '{server.security}' cannot "
                       "work there too", "check the port and security")
    if (server.security, server.authentication, user_template(loaded.spec, server)) == (
            other.security, other.authentication, user_template(loaded.spec, other)):
        return Problem(loaded.where(*path), f"{name}: the same server as {first_name} ({endpoint}, same security, "
                       "authentication and user name); clients would only try it twice", f"remove {name}",
                       "warning")
    if server.security == "none" and other.security == "starttls" and server.authentication not in ("none",
                                                                                                   "gssapi"):
        return Problem(loaded.where(*path, "security"),
                       f"{name}: {endpoint} without encryption, after {first_name} with STARTTLS on the same port: "
                       "whoever blocks STARTTLS on the way makes clients fall back to sending the password "
                       "readably", f"remove {name}, or give the plain-text fallback its own host or port",
                       "warning")
    return None


# Names that never resolve on the internet (RFC 2606, RFC 6761, RFC 8375) or only on one local network
# (mDNS .local, RFC 6762; the suffixes home routers and company DNS use; ICANN reserved .internal for this).
_RESERVED_SUFFIXES = ("example", "example.com", "example.net", "example.org", "test", "invalid")
_LOCAL_SUFFIXES = ("local", "lan", "home", "home.arpa", "internal", "intranet", "corp", "localdomain")


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host is, if it is one: also the short and hex IPv4 forms (127.1, 0x7f.0.0.1) that the
    C library's resolver (inet_aton, behind getaddrinfo) reads as addresses before any DNS lookup."""
    try:
        return ipaddress.ip_address(bare_host(host))
    except ValueError:
        pass
    if re.fullmatch(r"[0-9a-fx.]+", host.lower()) and re.search(r"\d", host.rsplit(".", 1)[-1]):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _not_public(host: str) -> str | None:
    """Why clients out on the internet cannot reach `host` (one expanded host name or IP literal), or None."""
    ip = _ip(host)
    if ip is not None:
        if str(ip) != bare_host(host):
            host = f"{host} (the address {ip})"
        if ip.is_loopback:
            return f"{host} is a loopback address: on each user's device it is that device itself"
        if not ip.is_global:
            return f"{host} is not a public address: clients reach it only inside that network"
        return None
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return f"{host} is the user's own device (RFC 6761), not the mail server"
    if any(name == s or name.endswith("." + s) for s in _RESERVED_SUFFIXES):
        return f"{host} is a name reserved for examples and tests (RFC 2606): it never resolves"
    if "." not in name:
        return f"{host} is a single label: it resolves, if at all, only through a local network's search domain"
    if any(name == s or name.endswith("." + s) for s in _LOCAL_SUFFIXES):
        return f"{host} is a local-network name: it resolves only inside that network"
    return None


def _probe_domains(loaded: LoadedSpec) -> list[str]:
    """The domains a %EMAILDOMAIN% host is tried with: the first, and the first that is not public itself
    (school.test), whose name ends every host made from it. Not every domain: thousands of domains times
    thousands of fallbacks would be millions of names."""
    domains = loaded.spec.provider.domains
    return list(dict.fromkeys(domains[:1] + [d for d in domains if _not_public(d) is not None][:1]))


def _unreachable(loaded: LoadedSpec, path: tuple[str | int, ...], server: Server, probe: list[str]) -> list[Problem]:
    """A host clients cannot reach from wherever they are, and a TLS server named by an IP address (clients
    check the server's certificate against the host they were given, and certificates name hosts: an IP
    address matches only a certificate that lists it, which public CAs rarely issue)."""
    name = ".".join(str(p) for p in path)
    out: list[Problem] = []
    hosts = [server.host.replace("%EMAILDOMAIN%", d) for d in probe] if "%EMAILDOMAIN%" in server.host else \
        [server.host]
    for host in hosts:
        why = _not_public(host)
        if why is not None:
            out.append(Problem(loaded.where(*path, "host"), f"{name}.host: {why}",
                               "give the host name users' devices reach the server by, as published in DNS",
                               "warning"))
            break
    if server.security != "none" and _ip(server.host) is not None:
        out.append(Problem(loaded.where(*path, "host"),
                           f"{name}.host: with security '{server.security}' clients check the server's "
                           f"certificate against {server.host}, and a certificate names host names, seldom IP "
                           "addresses: the connection would fail verification",
                           "give the host name the certificate is issued for", "warning"))
    return out


def _plain_text_first(loaded: LoadedSpec) -> list[Problem]:
    """A plain-text server ahead of an encrypted one of the same direction. Clients take the servers in the
    spec's order (autoconfig and autodiscover list them so; Thunderbird's account setup uses the first that
    answers), so the password goes out readably whenever the plain-text one answers, and the encrypted one is
    never reached. The provider guide's order is the other way: SSL servers, then the discouraged plain ones."""
    spec = loaded.spec
    problems: list[Problem] = []
    for direction, primary, fallbacks in (("incoming", spec.incoming, spec.fallbacks.incoming),
                                          ("outgoing", spec.outgoing, spec.fallbacks.outgoing)):
        ordered: list[tuple[tuple[str | int, ...], Server]] = [((direction,), primary)]
        ordered += [(("fallbacks", direction, i), s) for i, s in enumerate(fallbacks)]
        for n, (path, server) in enumerate(ordered):
            if server.security != "none" or server.authentication in ("none", "gssapi"):
                continue
            later = next((p for p, s in ordered[n + 1:] if s.security != "none"), None)
            if later is not None:
                name, other = ".".join(str(p) for p in path), ".".join(str(p) for p in later)
                problems.append(Problem(loaded.where(*path, "security"),
                                        f"{name} is plain text but comes before the encrypted {other}: clients "
                                        "try the servers in this order, so they send the password readably and "
                                        "never reach the encrypted one",
                                        "put the encrypted server first (as incoming/outgoing) and the plain-text "
                                        "one after it, as a fallback", "warning"))
    return problems


def _scripts(label: str) -> list[str]:
    """The scripts of the letters in a label, by the first word of each character's Unicode name."""
    found: list[str] = []
    for ch in label:
        if ch.isalpha():
            script = unicodedata.name(ch, "UNKNOWN").split(" ")[0]
            if script not in found:
                found.append(script)
    return found


def _look_alike(name: str, at: Position, what: str) -> list[Problem]:
    """A label that mixes scripts (Cyrillic 'а' among Latin letters) is how look-alike domains are made."""
    if "xn--" not in name:
        return []
    out = []
    for label in name.split("."):
        if not label.startswith("xn--"):
            continue
        try:
            unicode_label = idna.decode(label)
        except idna.IDNAError:
            continue
        scripts = _scripts(unicode_label)
        if len(scripts) > 1:
            out.append(Problem(at, f"{what}: '{unicode_label}' ({label}) mixes {' and '.join(scripts)} letters, as "
                               "look-alike names do", "check that this is the real name, spelled as intended",
                               "warning"))
    return out
