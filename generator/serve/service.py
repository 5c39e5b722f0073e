"""What the web service knows: one validated spec, rendered through the same targets as `build`.

A `Service` is immutable once made. The per-domain answers (Mozilla autoconfig, the AutodiscoverV1 JSON) are
rendered and proven at start; per-address answers (Autodiscover POX, Apple profile) are rendered and proven
on demand by the same `render_account` the build uses, behind a bounded cache. Reloading makes a new Service
and swaps it in whole (see app.py), so a request never sees half of two specs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from generator.accounts import Mailbox, load_accounts, mailbox_for_address, split_address
from generator.build import Plan, SignRequest, check, prepare
from generator.errors import BuildError, Problem, SpecError
from generator.model import to_a_label
from generator.spec import load_spec
from generator.targets import OutputFile, Target
from generator.targets.thunderbird_android import qr_path, qr_shown, render_qr_svg

# Per-address answers kept rendered; each is a few KiB, so a few thousand stay well under 50 MB.
CACHE_SIZE = 4096
# The kinds of file the service hands out, by the target that makes them.
SERVED_KINDS = {"thunderbird": ["autoconfig-xml"], "outlook": ["autodiscover-xml", "autodiscover-json"],
                "apple": ["mobileconfig"]}


@dataclass(frozen=True)
class Answer:
    """Verified bytes plus the strong validator HTTP caches use (ETag = sha256, as in the manifest)."""

    data: bytes
    etag: str

    @classmethod
    def of(cls, data: bytes) -> Answer:
        return cls(data, '"' + hashlib.sha256(data).hexdigest() + '"')


class UnknownDomain(LookupError):
    """The address or host names a domain this spec does not serve (HTTP 404)."""


class BadAddress(ValueError):
    """Not an e-mail address (HTTP 400)."""


class Service:
    """One spec, ready to answer. Build it with `load_service`; it never changes after that."""

    def __init__(self, plan: Plan, mailboxes: Sequence[Mailbox], signed: bool) -> None:
        self.plan = plan
        self.loaded = plan.loaded
        self.spec = plan.loaded.spec
        self.signed = signed
        self.targets: dict[str, Target] = {t.name: t for t in plan.targets}
        self.domains: tuple[str, ...] = tuple(self.spec.provider.domains)
        self._listed = {m.email.lower(): m for m in mailboxes}
        shared: list[OutputFile] = [f for t in plan.targets for f in t.render_shared()]
        self.autoconfig = {f.path.split("/")[1]: Answer.of(f.data) for f in shared if f.kind == "autoconfig-xml"}
        self.autodiscover_json = {f.path.split("/")[1]: Answer.of(f.data) for f in shared
                                  if f.kind == "autodiscover-json"}
        self._autodiscover: Callable[[str], Answer] = lru_cache(CACHE_SIZE)(self._render("outlook",
                                                                                        "autodiscover-xml"))
        # Resolving an address (IDNA, user names) is a third of an uncached answer: remember recent ones.
        self.mailbox: Callable[[str], Mailbox] = lru_cache(CACHE_SIZE)(self._mailbox)
        kind = "mobileconfig-signed" if signed else "mobileconfig"
        self._profile: Callable[[str], Answer] = lru_cache(CACHE_SIZE)(self._render("apple", kind))
        self._android_qr: Callable[[str], bytes] = lru_cache(CACHE_SIZE)(self._render_android_qr)

    # --- lookups ----------------------------------------------------------------------------------------
    def serves(self, target: str) -> bool:
        return target in self.targets

    def _mailbox(self, address: str) -> Mailbox:
        """The listed account, or one made for an unlisted address of a served domain."""
        try:
            local, domain = split_address(address.strip())
        except ValueError as exc:
            raise BadAddress(str(exc)) from None
        listed = self._listed.get(f"{local}@{domain}".lower())
        if listed is not None:
            return listed
        if domain not in self.domains:
            raise UnknownDomain(domain)
        return mailbox_for_address(self.loaded, address)

    def domain_of(self, address: str) -> str:
        """The mail domain (A-label) of an address, for the per-domain answers (autoconfig, the JSON). Only
        the part after the last @ is read: those answers do not depend on the local part, and a client's is
        often not one we would accept for a mailbox (a '+' that query decoding made a space, a quoted name)."""
        local, at, domain = address.strip().rpartition("@")
        if not at or not local:
            raise BadAddress(f"'{address[:64]}' is not an e-mail address (it needs a name, an @ and a domain)")
        try:
            return to_a_label(domain)
        except ValueError as exc:
            raise BadAddress(str(exc)) from None

    def autodiscover(self, address: str) -> Answer:
        """The account's autodiscover.xml, the same bytes as the build's file."""
        return self._autodiscover(self._key(address))

    def profile(self, address: str) -> Answer:
        """The account's Apple profile: signed when signing material is configured, as the build signs it."""
        return self._profile(self._key(address))

    def android_qr(self, address: str) -> bytes | None:
        """The account's Thunderbird for Android QR code (the build's android-qr file, by the same function),
        when the spec turns it on and the address can have one; else None."""
        mailbox = self.mailbox(address)
        return self._android_qr(mailbox.email) if qr_shown(self.spec, mailbox) else None

    def _render_android_qr(self, email: str) -> bytes:
        mailbox = self.mailbox(email)
        return render_qr_svg(qr_path(mailbox), self.spec, mailbox)

    def profile_name(self, address: str) -> str:
        """The download's file name: the build's, which the guides and messages name (an address longer than
        a file name may be is cut and given a hash, as on disk)."""
        return self.mailbox(address).profile_name

    def _key(self, address: str) -> str:
        # Cache key: the canonical address, so 'Mario@Esempio.IT' and 'mario@esempio.it' share one entry.
        return self.mailbox(address).email

    def _render(self, target: str, kind: str) -> Callable[[str], Answer]:
        def render(email: str) -> Answer:
            files = self.targets[target].render_account(self.mailbox(email))
            return Answer.of(next(f.data for f in files if f.kind == kind))
        return render


def served_kinds(plan_targets: Sequence[str], signed: bool) -> list[str]:
    kinds = [k for t in plan_targets for k in SERVED_KINDS.get(t, [])]
    if signed and "mobileconfig" in kinds:
        kinds[kinds.index("mobileconfig")] = "mobileconfig-signed"
    return kinds


def load_service(spec_path: str | Path, sign: SignRequest | None = None) -> Service:
    """Load, validate and lint the spec as `check` does, then render the per-domain answers.

    Raises SpecError (every problem, as `check` reports them) and BuildError (templates, signing material)."""
    loaded = load_spec(spec_path)
    if loaded.spec.passwords.include:
        raise SpecError([Problem(loaded.where("passwords", "include"),
                                 "passwords.include is true, but a web service never hands out a password",
                                 "serve a copy of the spec without the passwords section")])
    # Same targets, lint and errors as `check`; then only the kinds the service answers with.
    probe = prepare(loaded, sign=sign)
    check(probe)
    names = [t.name for t in probe.targets if t.name in SERVED_KINDS]  # guides and messages are not served
    if not names:
        raise BuildError(f"targets.build names none of {', '.join(SERVED_KINDS)}: there is nothing to serve")
    signed = any(t.ctx.signing is not None for t in probe.targets)
    plan = prepare(loaded, sign=sign, kinds=served_kinds(names, signed))
    return Service(plan, load_accounts(loaded), signed)
