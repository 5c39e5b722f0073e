"""The pipeline: lint -> stream accounts -> render + verify every target (in parallel) -> write into a
temporary folder and/or zip -> swap them in. Nothing reaches the output unless every account and every
target rendered and verified; a failed run leaves the previous output untouched.

Memory stays flat as the account list grows: accounts stream from the spec/CSV in chunks to worker
processes, a bounded number of chunks is in flight, each worker writes the files it rendered straight into
the new tree, and the manifest is spooled to a temporary file. Output order is the spec's account order
whatever the parallelism.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import multiprocessing
import os
import signal
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from itertools import chain, islice
from pathlib import Path
from typing import Any, Literal

from generator.accounts import AccountSource, Mailbox
from generator.cpus import worker_count
from generator.errors import BuildError, OptionError, Problem, SpecError
from generator.lint import lint_spec
from generator.model import ALL_TARGETS
from generator.output import GENERATOR, MANIFEST, MANIFEST_FORMAT, DirSink, OutOfInodes, Output
from generator.render import check_template_folder
from generator.signing import SigningMaterial, load_signing_material
from generator.spec import LoadedSpec
from generator.targets import OutputFile, RenderContext, Target, target_classes
from generator.targets.base import Verify
from generator.targets.mdm import CONSOLES

Layout = Literal["account", "per-target"]
Status = Literal["created", "unchanged", "changed", "removed"]

# What a script needs to mail or upload a file (Content-Type). Thunderbird wants text/xml or application/xml
# for autoconfig (FORMATS §3); iOS/macOS recognise application/x-apple-aspen-config as a profile.
MEDIA_TYPES = {
    "mobileconfig": "application/x-apple-aspen-config",
    "mobileconfig-signed": "application/x-apple-aspen-config",
    "mobileconfig-mdm": "application/x-apple-aspen-config",
    "user.js": "application/javascript", "mozilla.cfg": "application/javascript",
    "autoconfig.js": "application/javascript", "policies.json": "application/json",
    "autoconfig-xml": "text/xml", "autodiscover-xml": "text/xml", "autodiscover-json": "application/json",
    "prf": "text/plain", "reg": "text/plain", "android-qr": "image/svg+xml",
    "guide-html": "text/html; charset=utf-8", "guide-text": "text/plain; charset=utf-8", "guide-qr": "image/png",
    "guide-domain-html": "text/html; charset=utf-8", "guide-domain-text": "text/plain; charset=utf-8",
    "eml": "message/rfc822",
}

# Which target makes each kind of file (for --kinds).
KIND_TARGET = {
    "mobileconfig": "apple", "mobileconfig-signed": "apple", "mobileconfig-mdm": "apple",
    "user.js": "thunderbird", "mozilla.cfg": "thunderbird", "autoconfig.js": "thunderbird",
    "policies.json": "thunderbird", "autoconfig-xml": "thunderbird", "android-qr": "thunderbird",
    "prf": "outlook", "reg": "outlook", "autodiscover-xml": "outlook", "autodiscover-json": "outlook",
    "guide-html": "guide", "guide-text": "guide", "guide-qr": "guide", "guide-domain-html": "guide",
    "guide-domain-text": "guide", "eml": "message",
}
CHUNK = 64  # accounts per task sent to a worker process


@dataclass(frozen=True)
class FileStatus:
    path: str
    status: Status
    secret: bool = False


@dataclass(frozen=True)
class SignRequest:
    """Signing material named on the command line (wins over targets.apple.signing in the spec)."""

    certificate: Path
    key: Path
    chain: Path | None = None


@dataclass
class Plan:
    """Validated spec + the targets to build + the warnings to show. Created by `prepare`."""

    loaded: LoadedSpec
    targets: list[Target]
    warnings: list[Problem] = field(default_factory=list)
    mdm: str | None = None
    sign: SignRequest | None = None
    templates: Path | None = None

    def inputs(self) -> list[tuple[str, Path]]:
        """Every file or folder the build reads (none may lie inside a destination it replaces)."""
        loaded, spec = self.loaded, self.loaded.spec
        found: list[tuple[str, Path | None]] = [("the spec", loaded.path)]
        if spec.accounts_csv is not None:
            found.append(("accounts_csv", loaded.base_dir / spec.accounts_csv))
        if spec.passwords.from_file is not None:
            found.append(("the passwords file", loaded.base_dir / spec.passwords.from_file))
        found.append(("the --templates folder", self.templates))
        sign = self.sign
        cfg = spec.targets.apple.signing
        if sign is None and cfg is not None and self.mdm is None:
            sign = SignRequest(loaded.base_dir / cfg.certificate, loaded.base_dir / cfg.key,
                               loaded.base_dir / cfg.chain if cfg.chain else None)
        if sign is not None:
            found += [("the signing certificate", sign.certificate), ("the signing key", sign.key),
                      ("the signing chain", sign.chain)]
        return [(what, resolved(path, what)) for what, path in found if path is not None]


@dataclass
class BuildOptions:
    out: Path | None = None
    zip: Path | None = None
    layout: Layout = "account"
    keep_going: bool = False
    jobs: int = 0  # 0: one worker per core
    list_limit: int | None = 200  # keep per-file statuses for display up to this many files (None: all)
    progress: Callable[[int], None] | None = None  # called with the number of accounts just written


@dataclass
class BuildReport:
    out: Path | None
    zip: Path | None = None
    accounts: int = 0
    files_written: int = 0
    bytes: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("created", "changed", "unchanged",
                                                                           "removed"), 0))
    files: list[FileStatus] = field(default_factory=list)  # up to list_limit entries
    secret_files: list[str] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)  # accounts left out by keep_going
    notes: list[str] = field(default_factory=list)  # what was recovered from an interrupted earlier build

    def count(self, status: Status) -> int:
        return self.counts[status]


def target_names(loaded: LoadedSpec, only: Sequence[str] | None) -> list[str]:
    names = list(only) if only else list(loaded.spec.targets.build)
    if "message" in names:  # a message attaches the profile and the guide verified in the same build
        names += ["apple", "guide"]
    unknown = [n for n in names if n not in ALL_TARGETS]
    if unknown:
        raise OptionError(f"unknown target {', '.join(unknown)}: choose from {', '.join(ALL_TARGETS)}")
    available = target_classes()
    missing = [n for n in names if n not in available]
    if missing:
        raise BuildError(f"target {', '.join(missing)} is not available in this version")
    return sorted(set(names), key=ALL_TARGETS.index)


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
                                 passphrase.encode("utf-8") if passphrase else None, passphrase_env=env_name)


def prepare(loaded: LoadedSpec, only: Sequence[str] | None = None, templates: Path | None = None,
            sign: SignRequest | None = None, mdm: str | None = None, kinds: Sequence[str] | None = None,
            base_url: str | None = None, verify: Verify = "fast") -> Plan:
    """Choose targets, load signing material and lint. Raises SpecError (with every error) if the spec cannot
    be built as it is, BuildError for unusable templates or signing material.

    `kinds` narrows the build to some kinds of file (e.g. only autodiscover-xml for a web server); the
    targets that make them are chosen unless `only` names them already."""
    asked = list(kinds or ())
    if kinds and "eml" in kinds:  # what a message is composed from is built (and listed) with it
        kinds = [*kinds, "mobileconfig", "mobileconfig-signed", "guide-html", "guide-text"]
    if kinds:
        unknown = [k for k in kinds if k not in KIND_TARGET]
        if unknown:
            raise OptionError(f"unknown kind {', '.join(unknown)}: choose from {', '.join(KIND_TARGET)}")
        owners = sorted({KIND_TARGET[k] for k in kinds}, key=ALL_TARGETS.index)
        if only and not set(owners) <= set(only):
            raise OptionError(f"--kinds {','.join(kinds)} needs the targets {', '.join(owners)}, which --only leaves "
                             "out")
        only = owners
    if mdm is not None:
        if mdm not in CONSOLES:
            raise OptionError(f"unknown MDM console {mdm}: choose from {', '.join(CONSOLES)}")
        if only and list(only) != ["apple"]:
            raise OptionError("MDM mode builds generic Apple profiles only; drop --only or use --only apple")
        only = ["apple"]
    names = target_names(loaded, only)
    if templates is not None:
        check_template_folder(templates)
    if sign is not None and mdm is not None:
        raise OptionError("MDM consoles want unsigned profiles (they re-sign or wrap them): drop --sign-cert, "
                         "--sign-key and --sign-chain")
    # targets.apple.signing is for the per-account profiles the same spec builds without --mdm: a console
    # profile is never signed, so its identity (and passphrase) is not even loaded.
    signing = load_signing(loaded, sign) if mdm is None else None
    if signing is not None and "apple" not in names:
        raise OptionError("signing applies to Apple profiles, but the apple target is not being built")
    _check_kinds_can_be_made(loaded, asked, signing is not None, mdm, base_url)
    ctx = RenderContext(loaded, templates=templates, signing=signing, mdm=mdm,
                        kinds=frozenset(kinds) if kinds else None, base_url=base_url, verify=verify,
                        targets=frozenset(names))
    classes = target_classes()
    targets = [classes[name](ctx) for name in names]
    problems = lint_spec(loaded) + list(signing.warnings if signing is not None else ())
    for target in targets:
        problems += target.lint()
    if mdm is None and not loaded.spec.accounts and loaded.spec.accounts_csv is None:
        # A spec without accounts still makes sense: the per-domain files (autoconfig XML, the Autodiscover
        # JSON) for a web server, and `mailprofile serve`, which answers any address of the domains.
        problems.append(Problem(loaded.where(), "the spec has no accounts: only per-domain files are built",
                                "add an accounts list or accounts_csv for per-account files (or use --mdm)",
                                "warning"))
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        source = AccountSource(loaded)
        source.check_all()  # report account problems in the same run
        raise SpecError(errors + source.problems)
    return Plan(loaded, targets, sorted(problems, key=Problem.sort_key), mdm, sign, templates)


def _check_kinds_can_be_made(loaded: LoadedSpec, kinds: Sequence[str], signing: bool, mdm: str | None,
                             base_url: str | None) -> None:
    """A kind asked for with --kinds that this build cannot make is an error, not a build of no files: into
    an existing output, that build removed every file of the previous one and exited 0."""
    needs = {"mobileconfig-signed": (signing, "it is made with a signing identity: give --sign-cert and --sign-key "
                                     "(or set targets.apple.signing)"),
             "mobileconfig-mdm": (mdm is not None, "it is made by --mdm CONSOLE: add it"),
             "mobileconfig": (mdm is None, "--mdm makes only mobileconfig-mdm: drop --mdm or ask for that kind"),
             "guide-qr": (bool(base_url or loaded.spec.delivery.base_url),
                          "the code links to the service: give --base-url (or set delivery.base_url)")}
    for kind in kinds:
        possible, fix = needs.get(kind, (True, ""))
        if not possible:
            raise OptionError(f"--kinds {kind}: this build makes no such file — {fix}")


def check(plan: Plan) -> int:
    """Validate every account without rendering. Returns the account count; raises SpecError."""
    if plan.mdm is not None:
        return 0
    source = AccountSource(plan.loaded)
    count = source.check_all()
    if source.problems:
        raise SpecError(source.problems)
    return count


def render_mailbox(targets: Sequence[Target], mailbox: Mailbox) -> list[OutputFile]:
    files: list[OutputFile] = []
    for target in targets:
        files += target.render_after(mailbox, files)
    return files


# --- rendering and writing ---------------------------------------------------------------------------------
# Workers are forked from the process that prepared the plan and opened the output, so they inherit the
# validated spec, the Jinja environments, the signing key and the folder being built without pickling them:
# mailboxes go out; each worker renders, verifies and writes its accounts' files into the new tree itself,
# and sends back only their manifest lines (plus the bytes, when a zip is being written: the zip has one
# writer, the main process, which keeps the account order). File creation costs as much as rendering once
# rendering is stencilled; done in the workers it overlaps with the other worker's rendering.


# One file as the main process needs it after a worker wrote it: (path, status, secret, size, manifest line,
# the bytes for the zip or None). A plain tuple: it crosses the pipe 8 times an account, and pickling a
# dataclass cost ~37 us an account against ~2 us for tuples.
Written = tuple[str, Status, bool, int, str, "bytes | None"]


@dataclass(frozen=True)
class Writer:
    """Where and how a process writes the files it renders: the new tree (if a folder is being built), the
    layout, and whether the bytes go back to the main process for the zip."""

    tree: DirSink | None
    layout: Layout
    keep_data: bool

    def write(self, f: OutputFile, name: str | None) -> Written:
        path = layout_path(f, self.layout)
        status: Status = self.tree.add(path, f.data, f.secret) if self.tree is not None else "created"
        return (path, status, f.secret, len(f.data), manifest_line(f, path, name),
                f.data if self.keep_data else None)


_json_string = json.encoder.encode_basestring  # json.dumps(s, ensure_ascii=False) of a str, in C


def manifest_line(f: OutputFile, path: str, name: str | None) -> str:
    """The file's manifest entry: json.dumps(entry, ensure_ascii=False) of
    {account, target, kind, path, sha256, bytes, media_type[, name][, secret]}, written out by hand (a
    generic dumps of the dict was ~6 us a file; tests/test_build.py holds the two equal)."""
    account = "null" if f.account is None else _json_string(f.account)
    line = (f'{{"account": {account}, "target": {_json_string(f.target)}, "kind": {_json_string(f.kind)}, '
            f'"path": {_json_string(path)}, "sha256": "{hashlib.sha256(f.data).hexdigest()}", '
            f'"bytes": {len(f.data)}, '
            f'"media_type": {_json_string(MEDIA_TYPES.get(f.kind, "application/octet-stream"))}')
    if name is not None:
        line += f', "name": {_json_string(name)}'
    return line + (', "secret": true}' if f.secret else "}")


_WORKER_TARGETS: list[Target] = []
_WORKER_WRITER: Writer | None = None


def _worker_init() -> None:
    """A worker leaves Ctrl-C to the main process (which stops the pool and reports once) and dies with it
    (PR_SET_PDEATHSIG): a killed build must not leave workers printing BrokenPipe tracebacks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the CLI's SIGTERM-as-Ctrl-C is the main process's only
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1 (linux/prctl.h)


def _render_and_write(targets: Sequence[Target], writer: Writer, mailbox: Mailbox) -> list[Written]:
    return [writer.write(f, mailbox.name) for f in render_mailbox(targets, mailbox)]


def _work(chunk: list[Mailbox]) -> list[list[Written]]:
    assert _WORKER_WRITER is not None
    return [_render_and_write(_WORKER_TARGETS, _WORKER_WRITER, m) for m in chunk]


def _chunks(source: Iterator[Mailbox]) -> Iterator[list[Mailbox]]:
    while chunk := list(islice(source, CHUNK)):
        yield chunk


def written_accounts(plan: Plan, source: AccountSource, writer: Writer, jobs: int) -> Generator[list[Written]]:
    """The written files of each account, in account order, rendered, verified and written by `jobs`
    processes (>= 1: cpus.worker_count resolves -j) with a bounded number of chunks in flight (back-pressure
    keeps memory flat however long the list). Close it (contextlib.closing) so that the workers are gone
    before the caller cleans up."""
    if plan.mdm is not None:
        return
    chunks = _chunks(iter(source))
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    # chain(), never (first, second, *chunks): unpacking would read the whole account list into memory.
    stream = chain([first], [second] if second is not None else [], chunks)
    if second is None or jobs == 1:
        for chunk in stream:
            for mailbox in chunk:
                yield _render_and_write(plan.targets, writer, mailbox)
        return
    global _WORKER_TARGETS, _WORKER_WRITER
    _WORKER_TARGETS, _WORKER_WRITER = plan.targets, writer
    # Ctrl-C must not land inside the pool's own machinery (a KeyboardInterrupt raised while the task queue's
    # lock is held can hang the pool's shutdown): the handler only notes it, and the loop raises it between
    # two chunks, where leaving the pool is clean.
    interrupted: list[int] = []
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, lambda signum, _frame: interrupted.append(signum))

    def check() -> None:
        if interrupted:
            raise KeyboardInterrupt

    try:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"),
                                 initializer=_worker_init) as pool:
            pending: deque[Future[list[list[Written]]]] = deque()
            try:
                for chunk in stream:
                    check()
                    pending.append(_submit(pool, chunk))
                    if len(pending) >= 4 * jobs:
                        results = _result(pending.popleft())
                        check()
                        yield from results
                while pending:
                    results = _result(pending.popleft())
                    check()
                    yield from results
            except BuildError:
                check()  # a signal to the whole process group took the workers too: an interruption, said so
                raise
            finally:
                # Chunks not started are dropped; the running ones finish before the caller cleans up.
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        _WORKER_TARGETS, _WORKER_WRITER = [], None
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


WORKER_DIED = ("a worker process died while building (killed from outside, e.g. by the out-of-memory killer) — "
               "run again; with fewer workers (-j) if memory is short")


def _submit(pool: ProcessPoolExecutor, chunk: list[Mailbox]) -> Future[list[list[Written]]]:
    """Queue a chunk. A worker that died is noticed by whichever comes first, this or _result: the pool
    refuses new work once it knows."""
    try:
        return pool.submit(_work, chunk)
    except BrokenProcessPool:
        raise BuildError(WORKER_DIED) from None


def _result(future: Future[list[list[Written]]]) -> list[list[Written]]:
    """A chunk's files; a worker that died (killed from outside: the out-of-memory killer, an admin's kill)
    is an error, where multiprocessing.Pool would have waited for its result for ever."""
    try:
        return future.result()
    except BrokenProcessPool:
        raise BuildError(WORKER_DIED) from None


def layout_path(f: OutputFile, layout: Layout) -> str:
    """Where a file goes. 'per-target' puts every file of one kind in one folder (what an admin uploads in
    bulk): apple/mobileconfig/<address>.mobileconfig, thunderbird/user.js/<address>.user.js, ..."""
    if layout == "account" or f.account is None:
        return f.path
    slug, _, rest = f.path.partition("/")  # an account's files live under its file-safe name
    name = rest.rsplit("/", 1)[-1]
    if not name.startswith(slug):
        name = f"{slug}.{name}"
    return f"{f.target}/{f.kind}/{name}"


def build(plan: Plan, options: BuildOptions | Path) -> BuildReport:
    """Render, verify and write the whole build atomically into options.out and/or options.zip."""
    if isinstance(options, Path):
        options = BuildOptions(out=options)
    if options.out is None and options.zip is None:
        raise BuildError("nowhere to write: give --out DIR, --zip FILE or both")
    report = BuildReport(out=resolved(options.out, "--out") if options.out else None,
                         zip=resolved(options.zip, "--zip") if options.zip else None, warnings=list(plan.warnings))
    output = Output(report.out, report.zip, plan.inputs())
    report.notes = output.notes
    try:
        with tempfile.TemporaryFile("w+b") as spool, output:
            _build_into(plan, options, report, output, spool)
            output.commit()
    except OSError as exc:
        raise BuildError(describe_os_error(exc)) from None
    except KeyboardInterrupt:
        if not output.committed:
            raise
        # Ctrl-C during the swap waits for it; after it, the run did write: not "nothing was written".
        report.notes.append("interrupted after the new output was in place: it is complete (a build into the "
                            "same place removes what is left of the previous one)")
    return report


def resolved(path: Path, what: str) -> Path:
    """The absolute path with every link followed; a link loop is a BuildError (resolve() raises RuntimeError
    on Python 3.11/3.12, OSError from 3.13)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):
        raise BuildError(f"{what} {path}: the symbolic links on this path form a loop; fix or remove them") from None


def describe_os_error(exc: OSError) -> str:
    """One line: what failed, on which path, and what to do ("No space left on device" → free some space)."""
    where = exc.filename if exc.filename is not None else ""
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    what = exc.strerror or str(exc)
    advice = {errno.ENOSPC: "free some space or write elsewhere", errno.EDQUOT: "free some space or write elsewhere",
              errno.EACCES: "check the permissions of the destination",
              errno.EPERM: "check the permissions (or immutable attribute) of the destination",
              errno.EROFS: "the destination is on a read-only file system; write elsewhere",
              errno.ENAMETOOLONG: "choose a shorter --out path"}.get(exc.errno or 0, "")
    if isinstance(exc, OutOfInodes):  # df -h shows free space: say which resource ran out
        advice = "delete files (old outputs, benchmark folders) or write to another file system"
    return f"cannot write {where}: {what}" + (f" — {advice}" if advice else "")


def _build_into(plan: Plan, options: BuildOptions, report: BuildReport, output: Output, spool: Any) -> None:
    source = AccountSource(plan.loaded)
    writer = Writer(output.dir, options.layout, keep_data=output.zip is not None)
    # closing(): on an error the pool is stopped (its workers gone) before the output is cleaned up.
    jobs, reduced = worker_count(options.jobs, "-j")
    if reduced is not None:
        report.notes.append(reduced)
    with contextlib.closing(written_accounts(plan, source, writer, jobs)) as accounts:
        for files in accounts:
            for w in files:
                _record(w, output, spool, report, options)
            report.accounts += 1
            if options.progress is not None:
                options.progress(1)
    for target in plan.targets:
        for f in target.render_shared():
            _record(writer.write(f, None), output, spool, report, options)
    if source.problems and not options.keep_going:
        raise SpecError(source.problems)
    unread = source.unread
    if unread is not None:  # the accounts after it are unknown: "the valid ones" cannot be built
        said = replace(unread, hint=f"{unread.hint} (--keep-going cannot leave this out: the rows after it "
                       "were not read)")
        raise SpecError([said if p is unread else p for p in source.problems])
    report.skipped = source.problems
    targets = [t.name for t in plan.targets]
    # The manifest holds the sha256 of every file: of one with a password, that is enough to test guesses
    # of the password offline (all else in the file follows from the spec). As secret as those files.
    secret = bool(report.secret_files)
    for sink in output.sinks:
        sink.add_stream(MANIFEST, _manifest(plan, report, targets, options.layout, spool), secret)
    for sink in output.sinks:
        for path in sink.removed():
            report.counts["removed"] += 1
            _keep(report, options, path, "removed")


def _keep(report: BuildReport, options: BuildOptions, path: str, status: Status, secret: bool = False) -> None:
    """A file's status for display, while the list is under its limit (built only then: 800,000 files)."""
    if options.list_limit is None or len(report.files) < options.list_limit:
        report.files.append(FileStatus(path, status, secret))


def _record(w: Written, output: Output, spool: Any, report: BuildReport, options: BuildOptions) -> None:
    """What the main process does for each written file: the zip member, the report, the manifest line."""
    path, status, secret, size, line, data = w
    if output.zip is not None:
        assert data is not None
        output.zip.add(path, data, secret)
    report.counts[status] += 1
    report.files_written += 1
    report.bytes += size
    if secret:
        report.secret_files.append(path)
    _keep(report, options, path, status, secret)
    spool.write(f"{line}\n".encode())


def _manifest(plan: Plan, report: BuildReport, targets: list[str], layout: Layout, spool: Any) -> Iterator[bytes]:
    """manifest.json, streamed from the spool: one file entry per line, diff-friendly, never whole in memory."""
    # The spec's file name as UTF-8 text: a name that is not UTF-8 on disk (sch\xe9ol.yaml, copied from a
    # Latin-1 system) shows its odd bytes as \xe9 instead of stopping the build when the manifest is encoded.
    spec_name = os.fsencode(plan.loaded.path.name).decode("utf-8", "backslashreplace")
    head = {"generator": GENERATOR, "format": MANIFEST_FORMAT, "spec": spec_name, "targets": targets,
            "layout": layout, "mdm": plan.mdm, "accounts": report.accounts}
    if report.skipped:  # --keep-going left accounts out: a script reading the manifest can tell a partial build
        head["skipped"] = len(report.skipped)
    yield (json.dumps(head, ensure_ascii=False)[:-1] + ', "files": [\n').encode("utf-8")
    # The spool holds one entry per line, each ending in a newline (JSON escapes any newline inside a value):
    # the entries joined with ",\n" are the spool with every newline but the last one turned into ",\n".
    # Done 64 KiB at a time (800,000 entries one by one took seconds at the end of a large build).
    spool.seek(0)
    carry = b""
    while block := spool.read(1 << 16):
        block = carry + block
        carry = block[-1:]
        yield block[:-1].replace(b"\n", b",\n")
    yield b"\n]}\n"

