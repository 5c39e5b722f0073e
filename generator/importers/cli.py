"""`mailprofile import SOURCE...`: the spec on stdout (or --output), warnings and the summary on stderr.
Exit 0 imported, 2 a source (or the choice of provider) is invalid: every problem located, nothing written."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import click

from generator.errors import SpecError, one_line
from generator.importers import DEFAULT_SCHEMA, import_sources

EXIT_SOURCE = 2


@click.command(name="import")
@click.argument("sources", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the spec to this file (atomically) instead of standard output.")
@click.option("--force", is_flag=True, help="Replace the --output file if it exists.")
@click.option("--provider", metavar="ID|DOMAIN", help="When the sources describe several providers, the one to "
              "import.")
@click.option("--verify-signature", is_flag=True,
              help="Verify signed profiles (content digest and signature against the signer's certificate; "
                   "not the chain). A bad signature is then an error.")
@click.option("--schema", default=DEFAULT_SCHEMA, show_default=True,
              help="Path or URL of the JSON Schema for the yaml-language-server line (`mailprofile schema`).")
def import_command(sources: tuple[Path, ...], output: Path | None, force: bool, provider: str | None,
                   verify_signature: bool, schema: str) -> None:
    """Turn existing configuration into a commented spec: Mozilla autoconfig/ISPDB XML, Apple .mobileconfig
    (plain or signed), an automx2 SQLite database, Thunderbird prefs.js/user.js/mozilla.cfg/policies.json,
    Outlook .prf and autodiscover.xml. Several sources of one provider are merged; conflicts and losses are
    comments in the spec and warnings here.

    \b
    mailprofile import config-v1.1.xml old.mobileconfig > spec.yaml
    mailprofile check spec.yaml
    """
    if output is not None:
        _check_output(output, sources, force)
    try:
        result = import_sources(list(sources), verify_signature, provider, schema)
    except SpecError as exc:
        for p in exc.problems:
            click.echo(f"{p.severity}: {p}", err=True)
        n = len(exc.problems)
        click.echo(f"{n} error{'s' if n != 1 else ''}: nothing was written", err=True)
        sys.exit(EXIT_SOURCE)
    for line in result.info:
        click.echo(f"read {one_line(line)}", err=True)  # a signer's name comes from the source's certificate
    for w in result.warnings:
        click.echo(f"warning: {w}", err=True)
    if output is None:
        click.echo(result.text, nl=False)
        where = "standard output"
    else:
        _write_atomically(output, result.text)
        where = str(output)
    n = len(result.warnings)
    click.echo(f"imported provider {result.provider} with {result.accounts} account"
               f"{'s' if result.accounts != 1 else ''} to {where}; {n} warning{'s' if n != 1 else ''}", err=True)


def _check_output(output: Path, sources: tuple[Path, ...], force: bool) -> None:
    """Before reading anything: never replace a source, nor an existing file unless asked to."""
    target = output.resolve()
    if any(source.resolve() == target for source in sources):
        click.echo(f"error: --output {output} is one of the sources; write the spec to another file", err=True)
        sys.exit(EXIT_SOURCE)
    if output.exists() and not force:
        click.echo(f"error: --output {output} exists; pass --force to replace it, or choose another file", err=True)
        sys.exit(EXIT_SOURCE)
    if output.exists() and not output.is_file():
        click.echo(f"error: --output {output} is not a regular file", err=True)
        sys.exit(EXIT_SOURCE)


def _write_atomically(path: Path, text: str) -> None:
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        click.echo(f"error: {path}: cannot write the spec: {exc.strerror} — check the folder", err=True)
        sys.exit(EXIT_SOURCE)
