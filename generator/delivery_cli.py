"""`mailprofile messages` and `mailprofile send`: the delivery commands, registered at the end of cli.py.

`messages` is `build --only apple,guide,message`: a message is one more verified output of the same
pipeline (its attachment is the profile the manifest lists), so it gets the build's atomic output, manifest,
signing and statuses for free. `send` reads that output and never renders anything itself.
"""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

import click

from generator.cli import Progress, build_command, check_base_url
from generator.errors import BuildError
from generator.sender import (
    EXIT_SEND_FAILED,
    MAX_BACKOFF,
    SendOptions,
    ServerUnusable,
    SmtpTarget,
    UnsafeSend,
    load_outbox_messages,
    send_all,
)

PASSWORD_ENV = "MAILPROFILE_SMTP_PASSWORD"


@click.command(name="messages")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder (profiles, guides, OUT/<address>/message/<address>.eml, manifest.json).")
@click.option("--base-url", callback=lambda _c, _p, v: check_base_url(v), metavar="URL",
              help="URL of the mailprofile service (links and QR codes in the guides).")
@click.option("--sign-cert", type=click.Path(dir_okay=False, path_type=Path), help="Attach signed profiles.")
@click.option("--sign-key", type=click.Path(dir_okay=False, path_type=Path), help="The signing key.")
@click.option("--sign-chain", type=click.Path(dir_okay=False, path_type=Path), help="Intermediate certificates.")
@click.option("-j", "--jobs", type=click.IntRange(min=0), default=0, show_default=True,
              help="Worker processes; 0 = one per CPU this process may use (affinity and cgroup CPU quota); at "
                   "most twice that.")
@click.option("-q", "--quiet", is_flag=True, help="No per-file lines and no progress bar.")
@click.pass_context
def messages_command(ctx: click.Context, spec: str, out: Path, base_url: str | None, sign_cert: Path | None,
                     sign_key: Path | None, sign_chain: Path | None, jobs: int, quiet: bool) -> None:
    """Build one e-mail (.eml) per account of SPEC: its guide (text + HTML) and its Apple profile attached.

    The same as `build --only apple,guide,message`; review the .eml files in any mail client, then
    `mailprofile send OUT ...`."""
    ctx.invoke(build_command, spec=spec, out=out, only="apple,guide,message", base_url=base_url,
               sign_cert=sign_cert, sign_key=sign_key, sign_chain=sign_chain, jobs=jobs, quiet=quiet)


def _hostport(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"'{value}' is not HOST:PORT (e.g. smtp.example.com:587)")
    return host.strip("[]"), int(port)


@click.command(name="send")
@click.argument("out", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--smtp", "smtp", required=True, metavar="HOST:PORT", help="The SMTP server to send through.")
@click.option("--security", type=click.Choice(["ssl", "starttls", "none"]), required=True,
              help="ssl = implicit TLS (465), starttls (587), none = a relay on this machine only, no password.")
@click.option("--cafile", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Trust these CA certificates (PEM) instead of the system's.")
@click.option("--user", "user", help=f"SMTP user name; the password comes from ${PASSWORD_ENV} or a prompt.")
@click.option("--rate", type=click.FloatRange(min=1 / 86400), help="At most this many messages per second (at "
              "least one a day: 0.0000116).")
@click.option("--dry-run", is_flag=True, help="Connect, authenticate and list what would be sent; send nothing.")
@click.option("--only-changed", is_flag=True, help="Skip accounts whose message content was already sent.")
@click.option("--retry-uncertain", is_flag=True,
              help="Re-send messages a crash left uncertain (same Message-ID, same bytes).")
@click.option("--allow-secrets", is_flag=True, help="Also send messages whose profile carries a password.")
@click.option("--retries", type=click.IntRange(min=0), default=4, show_default=True,
              help="Attempts after a temporary failure (4xx, dropped connection), with doubling back-off.")
@click.option("--backoff", type=click.FloatRange(min=0, max=MAX_BACKOFF), default=2.0, show_default=True,
              help=f"First back-off in seconds; it doubles after each temporary failure, up to {MAX_BACKOFF:.0f} s.")
@click.option("--journal", type=click.Path(dir_okay=False, path_type=Path),
              help="The outbox journal (SQLite); default OUT.outbox.sqlite beside OUT (a rebuild replaces OUT).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no per-message lines.")
def send_command(out: Path, smtp: str, security: str, cafile: Path | None, user: str | None, rate: float | None,
                 dry_run: bool, only_changed: bool, retry_uncertain: bool, allow_secrets: bool, retries: int,
                 backoff: float, journal: Path | None, quiet: bool) -> None:
    """Send the messages built in OUT (by `mailprofile messages`) through an SMTP server.

    A journal (OUT.outbox.sqlite beside OUT, or --journal) makes it resumable: kill it at any moment and
    run it again; nothing sent goes twice; a message that was on the wire at the crash is reported
    uncertain and is re-sent only with --retry-uncertain."""
    host, port = _hostport(smtp)
    password: str | None = None
    if user:
        password = os.environ.get(PASSWORD_ENV)
        if not password:
            if not sys.stdin.isatty():
                raise click.UsageError(f"--user needs a password: set {PASSWORD_ENV} (no terminal to ask on)")
            password = getpass.getpass(f"SMTP password for {user}: ")
    target = SmtpTarget(host, port, security, user, password, cafile)
    options = SendOptions(rate=rate, dry_run=dry_run, only_changed=only_changed, retry_uncertain=retry_uncertain,
                          allow_secrets=allow_secrets, retries=retries, backoff=backoff, journal=journal)
    try:
        outbox = load_outbox_messages(out)
        bar = Progress(len(outbox)) if not quiet and sys.stderr.isatty() else None
        try:
            summary = send_all(out, outbox, target, options, progress=bar.advance if bar else None,
                               warn=lambda text: click.echo(f"warning: {text}", err=True))
        finally:
            if bar:
                bar.finish()
    except KeyboardInterrupt:
        # Each state change is committed before the next network step: what was sent is in the journal.
        click.echo("\ninterrupted: run the same command again to resume (a message that was on the wire is "
                   "reported uncertain)", err=True)
        sys.exit(130)
    except UnsafeSend as exc:
        click.echo(f"error: {exc}", err=True)
        click.echo("stopped before sending (messages already sent stay in the journal)", err=True)
        sys.exit(2)
    except ServerUnusable as exc:
        click.echo(f"error: {exc}", err=True)
        click.echo("nothing more was sent (messages already sent stay in the journal): correct it and run again",
                   err=True)
        sys.exit(1)
    except BuildError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    if not quiet:
        for line in summary.lines:
            click.echo(line)
    click.echo(summary.text())
    if summary.failed or summary.uncertain or summary.pending:
        sys.exit(EXIT_SEND_FAILED)
