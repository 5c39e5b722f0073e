"""What every target provides, and what it is given."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import jinja2

from generator.accounts import Mailbox
from generator.errors import Problem
from generator.model import Spec
from generator.render import make_environment
from generator.signing import SigningMaterial
from generator.spec import LoadedSpec
from generator.stencil import Family, Stencils

# Root of every UUIDv5 this tool derives; never change it, or every deployed profile gets a new identity.
UUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_DNS, "mailprofile.generator")


def stable_uuid(*parts: str) -> str:
    """Upper-case UUIDv5 from stable names (Apple writes PayloadUUIDs upper-case): what
    str(uuid.uuid5(UUID_NAMESPACE, "\\x1f".join(parts))).upper() gives (RFC 9562 §5.5: SHA-1 of namespace + name,
    version and variant bits set), written out because uuid.UUID's checks cost twice the hash on every profile.
    tests/test_apple.py holds the two equal."""
    digest = hashlib.sha1(_NAMESPACE_BYTES + "\x1f".join(parts).encode("utf-8")).digest()
    h = bytes((*digest[:6], (digest[6] & 0x0F) | 0x50, digest[7], (digest[8] & 0x3F) | 0x80, *digest[9:16])).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}".upper()


_NAMESPACE_BYTES = UUID_NAMESPACE.bytes


Verify = Literal["fast", "full"]  # see RenderContext.verify


@dataclass(frozen=True, slots=True)
class OutputFile:
    """One rendered, verified file. `path` is relative to the output root, with '/' separators."""

    path: str
    data: bytes
    target: str
    kind: str
    account: str | None
    secret: bool = False  # carries a password: written with mode 0600 and reported


@dataclass
class RenderContext:
    loaded: LoadedSpec
    templates: Path | None = None
    signing: SigningMaterial | None = None
    mdm: str | None = None  # console name: generic per-domain profiles with the console's variables
    kinds: frozenset[str] | None = None  # build only these kinds of file (None: all)
    base_url: str | None = None  # the service's URL (guides link and QR-code the profile; wins over the spec)
    targets: frozenset[str] = frozenset()  # the targets of this build (a guide tells of Apple profiles only with one)
    # "fast": shapes proven once, values filled in (docs/verification.md); "full": every file parsed back.
    verify: Verify = "fast"
    _envs: dict[str, jinja2.Environment] = field(default_factory=dict)

    @property
    def spec(self) -> Spec:
        return self.loaded.spec

    @property
    def stencils_allowed(self) -> bool:
        """Stencils only for the packaged templates: they branch on whether a value is present, never on
        its text, which the shape key records; an admin's --templates could do anything, so full path."""
        return self.verify == "fast" and self.templates is None

    def environment(self, target: str, filters: Mapping[str, Callable[..., Any]]) -> jinja2.Environment:
        """One environment per target (its own filters), overrides from --templates first."""
        if target not in self._envs:
            self._envs[target] = make_environment(self.templates, filters)
        return self._envs[target]


class Target:
    """Base class. Subclasses set `name`, implement `render_account` and optionally `render_shared`/`lint`."""

    name: ClassVar[str]

    def __init__(self, ctx: RenderContext) -> None:
        self.ctx = ctx
        self.spec = ctx.spec

    def wants(self, kind: str) -> bool:
        """Whether this build asks for files of `kind` (targets skip rendering the others)."""
        return self.ctx.kinds is None or kind in self.ctx.kinds

    def lint(self) -> list[Problem]:
        """Problems specific to this target: what it cannot carry (warnings) or cannot express (errors)."""
        return []

    def render_account(self, mailbox: Mailbox) -> list[OutputFile]:
        """Render and verify every file for one mailbox. Raises VerificationError on any mismatch."""
        raise NotImplementedError

    def render_after(self, mailbox: Mailbox, earlier: list[OutputFile]) -> list[OutputFile]:
        """Like render_account, with the verified files the targets before this one made for the same mailbox
        (a message attaches exactly those bytes). Most targets ignore them."""
        return self.render_account(mailbox)

    def render_shared(self) -> list[OutputFile]:
        """Files that are not per account (per domain, per provider). Rendered and verified too."""
        return []

    # --- several files from one shape check (stencil.Family) ----------------------------------------------
    _family: Family | None = None

    def stencils_for(self, env: Any) -> dict[str, Stencils] | None:
        """This target's stencils per kind of file (None: every file takes the full path)."""
        return None

    def family_texts(self, env: Any, kinds: Sequence[str], values: Callable[[Any], tuple[Any, ...]],
                     source: Any) -> dict[str, str | None]:
        """Each wanted one of `kinds`, filled from `source` by the target's family (values(source) gives their
        values in the order of `kinds`), or None where it takes the full path."""
        wanted = [k for k in kinds if self.wants(k)]
        stencils = self.stencils_for(env)
        if stencils is None or not wanted:
            return dict.fromkeys(wanted)
        if self._family is None:
            self._family = Family.picking(values, kinds, wanted, stencils)
        return dict(zip(wanted, self._family.fill(source), strict=True))
