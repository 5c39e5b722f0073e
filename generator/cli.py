"""The command line. The only place that prints, and the one boundary where typed errors become text and
exit codes: 0 success, 1 build failure (templates, output folder, verification), 2 invalid spec or usage."""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from generator import __version__
from generator.accounts import estimate_accounts
from generator.build import KIND_TARGET, BuildOptions, Layout, Plan, SignRequest, build, check, prepare
from generator.errors import BuildError, OptionError, Problem, SpecError, VerificationError
from generator.model import ALL_TARGETS, Spec, base_url_value
from generator.output import MANIFEST
from generator.spec import load_spec
from generator.targets.base import Verify
from generator.targets.mdm import CONSOLES

EXIT_BUILD = 1
EXIT_SPEC = 2


def _targets(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def _names_in(choices: Sequence[str], what: str) -> Callable[[click.Context, click.Parameter, str | None], str | None]:
    """A callback refusing a name outside `choices` as a usage error (exit 2, as click's own choices), with
    the list to choose from."""

    def callback(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
        unknown = [name for name in _targets(value) or [] if name not in choices]
        if unknown:
            raise click.BadParameter(f"unknown {what} {', '.join(unknown)}: choose from {', '.join(choices)}")
        return value

    return callback


def _echo_problems(problems: Sequence[Problem]) -> None:
    for p in problems:
        click.echo(f"{p.severity}: {p}", err=True)


def _fail_spec(exc: SpecError) -> None:
    _echo_problems(exc.problems)
    n = len(exc.problems)
    click.echo(f"{n} error{'s' if n != 1 else ''}: nothing was written", err=True)
    sys.exit(EXIT_SPEC)


def _plan(spec_path: str, only: str | None, templates: Path | None, sign: SignRequest | None = None,
          mdm: str | None = None, kinds: str | None = None, base_url: str | None = None,
          verify: Verify = "fast") -> Plan:
    try:
        return prepare(load_spec(spec_path), _targets(only), templates, sign, mdm, _targets(kinds), base_url,
                       verify)
    except SpecError as exc:
        _fail_spec(exc)
    except BuildError as exc:
        click.echo(f"error: {exc}", err=True)
        click.echo("nothing was written", err=True)
        sys.exit(EXIT_SPEC if isinstance(exc, OptionError) else EXIT_BUILD)  # options are input, as the spec is
    raise AssertionError("unreachable")


ONLY_HELP = f"Comma-separated targets to build instead of the spec's targets.build ({', '.join(ALL_TARGETS)})."


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mailprofile")
def main() -> None:
    """Turn one YAML account spec into e-mail client configuration files.

    \b
    mailprofile check examples/provider-pop3.yaml
    mailprofile build examples/provider-pop3.yaml --out out/
    mailprofile schema > mailprofile.schema.json
    """


@main.command(name="check")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--only", metavar="TARGET,...", help=ONLY_HELP, callback=_names_in(ALL_TARGETS, "target"))
def check_command(spec: str, only: str | None) -> None:
    """Validate SPEC and lint it for every target; write nothing."""
    plan = _plan(spec, only, None)
    try:
        count = check(plan)
    except SpecError as exc:
        _echo_problems(plan.warnings)
        _fail_spec(exc)
    _echo_problems(plan.warnings)
    click.echo(f"{spec}: ok, {count} account{'s' if count != 1 else ''}, targets "
               f"{', '.join(t.name for t in plan.targets)}, {len(plan.warnings)} warning"
               f"{'s' if len(plan.warnings) != 1 else ''}")


@main.command(name="build")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder; replaced as a whole when the build succeeds.")
@click.option("--zip", "zip_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also (or instead) write the whole build as one reproducible zip archive.")
@click.option("--layout", type=click.Choice(["account", "per-target"]), default="account", show_default=True,
              help="account: OUT/<address>/<target>/...; per-target: OUT/<target>/<kind>/<address>... (bulk upload).")
@click.option("--only", metavar="TARGET,...", help=ONLY_HELP, callback=_names_in(ALL_TARGETS, "target"))
@click.option("--kinds", metavar="KIND,...", callback=_names_in(list(KIND_TARGET), "kind"),
              help=f"Build only these kinds of file ({', '.join(KIND_TARGET)}).")
@click.option("--mdm", type=click.Choice(sorted(CONSOLES)),
              help="Build one generic Apple profile per domain with this console's per-user variables.")
@click.option("--templates", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Folder of your own templates; files there override the packaged ones, file by file.")
@click.option("--keep-going", is_flag=True,
              help="Write the valid accounts even if some are invalid (they are listed); default: write nothing.")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=0, show_default=True,
              help="Worker processes; 0 = one per CPU this process may use (affinity and cgroup CPU quota, as "
                   "in containers); at most twice that.")
@click.option("--list/--no-list", "list_files", default=None,
              help="Print a line per file (default: when the build has at most 200 files).")
@click.option("-q", "--quiet", is_flag=True, help="No per-file lines and no progress bar.")
@click.option("--sign-cert", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write signed profiles with this certificate (PEM/DER; may include the chain).")
@click.option("--sign-key", type=click.Path(dir_okay=False, path_type=Path),
              help="The signing key; its passphrase is read from MAILPROFILE_SIGN_PASSPHRASE (or the variable "
                   "named in targets.apple.signing.passphrase_env).")
@click.option("--sign-chain", type=click.Path(dir_okay=False, path_type=Path),
              help="Intermediate certificates (PEM) to include in each signature.")
@click.option("--base-url", callback=lambda _c, _p, v: check_base_url(v), metavar="URL",
              help="URL of the mailprofile service: guides link and QR-code URL/apple/<address>.mobileconfig "
                   "(overrides delivery.base_url).")
@click.option("--verify", type=click.Choice(["fast", "full"]), default="fast", show_default=True,
              help="fast: prove each file shape once and check each value (docs/verification.md); full: also parse "
                   "every file back.")
def build_command(spec: str, out: Path | None, zip_path: Path | None, layout: Layout, only: str | None,
                  kinds: str | None, mdm: str | None, templates: Path | None, keep_going: bool, jobs: int,
                  list_files: bool | None, quiet: bool, sign_cert: Path | None, sign_key: Path | None,
                  sign_chain: Path | None, base_url: str | None, verify: Verify) -> None:
    """Build every target of SPEC into OUT (OUT/<address>/..., OUT/domains/..., OUT/manifest.json)."""
    if out is None and zip_path is None:
        raise click.UsageError("give --out DIR, --zip FILE, or both")
    if (sign_cert is None) != (sign_key is None) or (sign_chain is not None and sign_cert is None):
        raise click.UsageError("--sign-cert and --sign-key go together (--sign-chain needs both)")
    sign = SignRequest(sign_cert, sign_key, sign_chain) if sign_cert and sign_key else None
    started = time.monotonic()
    plan = _plan(spec, only, templates, sign, mdm, kinds, base_url, verify)
    _echo_problems(plan.warnings)
    limit = None if list_files else 200
    options = BuildOptions(out=out, zip=zip_path, layout=layout, keep_going=keep_going, jobs=jobs,
                           list_limit=limit)
    bar = Progress(estimate_accounts(plan.loaded)) if not quiet and sys.stderr.isatty() else None
    options.progress = bar.advance if bar else None
    stopped_by = _stop_on_sigterm_as_on_ctrl_c()
    try:
        report = build(plan, options)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: nothing was written", err=True)
        sys.exit(128 + (stopped_by[-1] if stopped_by else signal.SIGINT))
    except SpecError as exc:
        _fail_spec(exc)
    except VerificationError as exc:
        click.echo(f"error: {exc.path}: the rendered file does not say what the spec says:", err=True)
        for m in exc.mismatches:
            click.echo(f"  {m}", err=True)
        click.echo("nothing was written (a bug, or a --templates override that changes values)", err=True)
        sys.exit(EXIT_BUILD)
    except BuildError as exc:
        click.echo(f"error: {exc}", err=True)
        click.echo("nothing was written", err=True)
        sys.exit(EXIT_BUILD)
    finally:
        if bar:
            bar.finish()
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    total = sum(report.counts.values())
    show = list_files if list_files is not None else total <= 200
    if show and not quiet:
        for f in report.files:
            click.echo(f"{f.status:>9}  {f.path}{'  (contains a password, mode 0600)' if f.secret else ''}")
    if report.skipped:
        click.echo(f"skipped {len(report.skipped)} invalid account(s) (--keep-going):", err=True)
        _echo_problems(report.skipped)
    if report.secret_files:
        click.echo(f"note: {len(report.secret_files)} file(s) contain a password and were written with mode 0600 "
                   f"(and {MANIFEST}, which holds their checksums); deliver them privately", err=True)
    counts = ", ".join(f"{report.count(s)} {s}" for s in ("created", "changed", "unchanged", "removed")
                       if report.count(s))
    where = " and ".join(str(p) for p in (report.out, report.zip) if p is not None)
    click.echo(f"built {report.accounts} account{'s' if report.accounts != 1 else ''}, {report.files_written} "
               f"files ({report.bytes} bytes) in {where}: {counts or 'nothing'}; {len(report.warnings)} warning"
               f"{'s' if len(report.warnings) != 1 else ''}; {time.monotonic() - started:.2f} s")


def _stop_on_sigterm_as_on_ctrl_c() -> list[int]:
    """SIGTERM (`timeout`, systemd, a CI job cancelled, `kill`) stops a build as Ctrl-C does: the work folder
    removed, one line, exit 143. By default it ended the process at once, leaving a work folder of up to
    millions of files and the lock until the next build into the same place. It is handed to whatever
    handles SIGINT at that moment (the build defers it out of the process pool and the commit)."""
    received: list[int] = []

    def forward(signum: int, frame: object) -> None:
        received.append(signum)
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):
            handler(signum, frame)  # type: ignore[arg-type]
        else:
            raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not the main thread (an embedding caller): leave it as it is
        signal.signal(signal.SIGTERM, forward)
    return received


def check_base_url(value: str | None) -> str | None:
    """--base-url: the same rule as delivery.base_url in the spec, as a usage error."""
    if value is None:
        return None
    try:
        return base_url_value(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


class Progress:
    """accounts done / total, rate and time left, redrawn in place on an interactive terminal (stderr)."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.started, self.drawn = total, 0, time.monotonic(), 0.0

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.drawn >= 0.2:
            self.drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = self.done / max(now - self.started, 1e-9)
        total = max(self.total, self.done)
        left = (total - self.done) / rate if rate else 0.0
        width = 30
        filled = int(width * self.done / total) if total else width
        click.echo(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{total} accounts  {rate:,.0f}/s  "
                   f"{left:,.0f} s left ", nl=False, err=True)

    def finish(self) -> None:
        if self.done:
            self._draw(time.monotonic())
            click.echo("", err=True)


@main.command(name="schema")
def schema_command() -> None:
    """Print the JSON Schema of a spec (for editors: yaml-language-server, VS Code, IntelliJ)."""
    schema = Spec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mailprofile spec"
    click.echo(json.dumps(schema, indent=2, sort_keys=True))


# Delivery commands live in their own module (imported last: it imports this one).
from generator.delivery_cli import messages_command, send_command  # noqa: E402

main.add_command(messages_command)
main.add_command(send_command)

from generator.serve.cli import serve_command  # noqa: E402  (registered last: the service builds on the above)

main.add_command(serve_command)


from generator.importers.cli import import_command  # noqa: E402  (registered last: one line per feature)

main.add_command(import_command)


def utf8_file_names() -> None:
    """Run in Python's UTF-8 mode (PEP 540) whatever the locale, by starting again in it when needed.

    Python encodes file names with the locale's charset: under LANG=de_DE.ISO-8859-1 (or it_IT@euro) the
    folder of zoë@example.org was written in Latin-1 bytes, another name on disk than a UTF-8 machine writes
    for the same spec, and an address Latin-1 cannot spell (IŞIK@...) stopped the build with an internal
    error. The mode is chosen at start-up only, so the process starts again with PYTHONUTF8=1 (inherited by
    the workers), the arguments as the same bytes; the terminal keeps its own charset."""
    if sys.flags.utf8_mode or sys.getfilesystemencoding().lower().replace("-", "") == "utf8" \
            or os.environ.get("PYTHONUTF8") == "1" or not sys.executable or not sys.orig_argv:
        return  # already UTF-8 (Windows is), or UTF-8 mode was refused with -X utf8=0: do not loop
    os.environ["PYTHONUTF8"] = "1"
    os.environ.setdefault("PYTHONIOENCODING", f"{sys.getfilesystemencoding()}:backslashreplace")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def run() -> None:
    """The console entry point: `main`, with the last line of defence against a traceback. An error nobody
    foresaw is one line and exit 70 (EX_SOFTWARE); MAILPROFILE_DEBUG=1 shows the traceback for a report.
    `kill -USR1 <pid>` prints where every thread of a process is (workers too) on stderr: for a report of a
    run that seems stuck."""
    utf8_file_names()
    with contextlib.suppress(AttributeError, ValueError, OSError):  # no SIGUSR1 (Windows), or stderr closed
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        main()
    except Exception as exc:
        if os.environ.get("MAILPROFILE_DEBUG") == "1":
            raise
        # build and messages commit nothing on an error; send has journaled what it sent (a re-run resumes).
        done = ("every message sent is in the journal: run send again to resume" if sys.argv[1:2] == ["send"]
                else "nothing was written")
        click.echo(f"error: internal error ({type(exc).__name__}: {exc}); {done}. Please report it "
                   "with the command and spec (MAILPROFILE_DEBUG=1 shows the details)", err=True)
        sys.exit(70)
