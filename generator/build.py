"""The pipeline: lint -> stream accounts -> render + verify every target -> write into a temporary folder ->
swap it in place of the output folder. Nothing reaches the output folder unless every account and every
target rendered and verified; a failed run leaves the previous output untouched."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from generator import __version__
from generator.accounts import AccountSource, Mailbox
from generator.errors import BuildError, Problem, SpecError
from generator.lint import lint_spec
from generator.model import ALL_TARGETS
from generator.signing import SigningMaterial, load_signing_material
from generator.spec import LoadedSpec
from generator.targets import OutputFile, RenderContext, Target, target_classes

MANIFEST = "manifest.json"
Status = Literal["created", "unchanged", "changed", "removed"]


@dataclass(frozen=True)
class FileStatus:
    path: str
    status: Status
    secret: bool = False


@dataclass
class Plan:
    """Validated spec + the targets to build + the warnings to show. Created by `prepare`."""

    loaded: LoadedSpec
    targets: list[Target]
    warnings: list[Problem] = field(default_factory=list)


@dataclass
class BuildReport:
    out: Path
    accounts: int = 0
    files: list[FileStatus] = field(default_factory=list)
    bytes: int = 0
    warnings: list[Problem] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)  # accounts left out by --keep-going

    def count(self, status: Status) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def secret_files(self) -> list[str]:
        return [f.path for f in self.files if f.secret and f.status != "removed"]


def target_names(loaded: LoadedSpec, only: Sequence[str] | None) -> list[str]:
    names = list(only) if only else list(loaded.spec.targets.build)
    unknown = [n for n in names if n not in ALL_TARGETS]
    if unknown:
        raise BuildError(f"unknown target {', '.join(unknown)}: choose from {', '.join(ALL_TARGETS)}")
    available = target_classes()
    missing = [n for n in names if n not in available]
    if missing:
        raise BuildError(f"target {', '.join(missing)} is not available in this version")
    return sorted(set(names), key=ALL_TARGETS.index)


@dataclass(frozen=True)
class SignRequest:
    """Signing material named on the command line (wins over targets.apple.signing in the spec)."""

    certificate: Path
    key: Path
    chain: Path | None = None


def load_signing(loaded: LoadedSpec, request: SignRequest | None) -> SigningMaterial | None:
    """Load and check the signing identity from the CLI request or the spec; None when not signing."""
    cfg = loaded.spec.targets.apple.signing
    env_name = cfg.passphrase_env if cfg else "MAILPROFILE_SIGN_PASSPHRASE"
    if request is None and cfg is not None:
        base = loaded.base_dir
        request = SignRequest(base / cfg.certificate, base / cfg.key, base / cfg.chain if cfg.chain else None)
    if request is None:
        return None
    passphrase = os.environ.get(env_name)
    return load_signing_material(request.certificate, request.key, request.chain,
                                 passphrase.encode("utf-8") if passphrase else None)


def prepare(loaded: LoadedSpec, only: Sequence[str] | None = None, templates: Path | None = None,
            sign: SignRequest | None = None) -> Plan:
    """Choose targets, load signing material and lint. Raises SpecError (with every error) if the spec cannot
    be built as it is, BuildError for unusable templates or signing material."""
    names = target_names(loaded, only)
    signing = load_signing(loaded, sign)
    if signing is not None and "apple" not in names:
        raise BuildError("signing applies to Apple profiles, but the apple target is not being built")
    ctx = RenderContext(loaded, templates=templates, signing=signing)
    classes = target_classes()
    targets = [classes[name](ctx) for name in names]
    problems = lint_spec(loaded)
    for target in targets:
        problems += target.lint()
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        source = AccountSource(loaded)
        source.check_all()  # report account problems in the same run
        raise SpecError(errors + source.problems)
    return Plan(loaded, targets, sorted(problems, key=Problem.sort_key))


def check(plan: Plan) -> int:
    """Validate every account without rendering. Returns the account count; raises SpecError."""
    source = AccountSource(plan.loaded)
    count = source.check_all()
    if source.problems:
        raise SpecError(source.problems)
    return count


def render_mailbox(targets: Sequence[Target], mailbox: Mailbox) -> list[OutputFile]:
    files: list[OutputFile] = []
    for target in targets:
        files += target.render_account(mailbox)
    return files


def render_all(plan: Plan, source: AccountSource) -> Iterator[OutputFile]:
    """Every file of the build, in a deterministic order: accounts in spec order, then shared files."""
    for mailbox in source:
        yield from render_mailbox(plan.targets, mailbox)
    for target in plan.targets:
        yield from target.render_shared()


def build(plan: Plan, out: Path, keep_going: bool = False,
          progress: Callable[[int], None] | None = None) -> BuildReport:
    """Render, verify and write the whole build atomically into `out`."""
    out = out.resolve()
    _check_output_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    report = BuildReport(out=out, warnings=list(plan.warnings))
    try:
        source = AccountSource(plan.loaded)
        entries = _write_files(tmp, render_all(plan, source), report, progress)
        if source.problems and not keep_going:
            raise SpecError(source.problems)
        report.skipped = source.problems
        report.accounts = _count_accounts(entries)
        manifest = {"generator": f"mailprofile {__version__}", "spec": plan.loaded.path.name,
                    "targets": [t.name for t in plan.targets], "accounts": report.accounts, "files": entries}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        report.files = _statuses(out, entries)
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _count_accounts(entries: list[dict[str, Any]]) -> int:
    return len({e["account"] for e in entries if e["account"] is not None})


def _write_files(tmp: Path, files: Iterator[OutputFile], report: BuildReport,
                 progress: Callable[[int], None] | None) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    last_account = None
    for f in files:
        if f.path in seen:
            raise BuildError(f"two outputs share the path {f.path}")
        seen.add(f.path)
        dest = tmp / f.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Files that carry a password are created 0600 from the start: no window in which others can read.
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if f.secret else 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(f.data)
        report.bytes += len(f.data)
        entry = {"account": f.account, "target": f.target, "kind": f.kind, "path": f.path,
                 "sha256": hashlib.sha256(f.data).hexdigest(), "bytes": len(f.data)}
        if f.secret:
            entry["secret"] = True
        entries.append(entry)
        if progress is not None and f.account is not None and f.account != last_account:
            last_account = f.account
            progress(1)
    return entries


def _check_output_folder(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise BuildError(f"refusing to replace {out}: it is not empty and has no {MANIFEST}, so it is not a "
                         "mailprofile output; choose another --out folder")


def _statuses(out: Path, entries: list[dict[str, Any]]) -> list[FileStatus]:
    statuses = []
    new_paths = set()
    for e in entries:
        new_paths.add(e["path"])
        old = out / e["path"]
        if not old.is_file():
            status: Status = "created"
        else:
            status = "unchanged" if hashlib.sha256(old.read_bytes()).hexdigest() == e["sha256"] else "changed"
        statuses.append(FileStatus(e["path"], status, bool(e.get("secret"))))
    if out.is_dir():
        for old in sorted(p for p in out.rglob("*") if p.is_file()):
            rel = old.relative_to(out).as_posix()
            if rel != MANIFEST and rel not in new_paths:
                statuses.append(FileStatus(rel, "removed"))
    return statuses


def _swap(tmp: Path, out: Path) -> None:
    """Replace `out` by `tmp` with renames (each atomic on one file system)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)
    if not out.exists():
        os.rename(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.rmdir(old)
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
