"""The README and docs/*.md against the code: what an admin reads there is what the tool does."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from generator.accounts import CSV_COLUMNS
from generator.cli import main
from generator.model import PLACEHOLDERS
from tests.conftest import ROOT

DOCS: list[Path] = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND_LINE = re.compile(r"mailprofile (" + "|".join(map(re.escape, main.commands)) + r")\b([^`#|;]*)")


def _options(command: click.Command) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")}


def test_every_option_of_every_command_is_documented() -> None:
    """An option only `--help` knows about is one an admin reading the docs never learns of."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in DOCS)
    missing = sorted(f"mailprofile {name} {option}" for name, command in main.commands.items()
                     for option in _options(command)
                     if option.startswith("--") and option != "--help"
                     and not re.search(re.escape(option) + r"(?![\w-])", text))
    assert missing == []


def test_documented_command_lines_use_options_the_command_has() -> None:
    """`mailprofile build ... --foo` in the docs must run: the option exists on that very command."""
    wrong = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for match in COMMAND_LINE.finditer(line):
                known = _options(main.commands[match.group(1)])
                wrong += [f"{doc.name}:{number}: mailprofile {match.group(1)} {option}"
                          for option in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", match.group(2))
                          if option not in known]
    assert wrong == []


def _reference_row(key: str) -> str:
    rows = [line for line in (ROOT / "docs" / "spec.md").read_text(encoding="utf-8").splitlines()
            if line.startswith(f"| `{key}` |")]
    assert rows, key
    return "\n".join(rows)


def test_spec_reference_names_every_csv_column_and_placeholder() -> None:
    """docs/spec.md once listed name,email[,username] for accounts_csv (the reader also takes description,
    language, notify) and left %REALNAME% out of the user-name placeholders the model accepts."""
    csv_row = _reference_row("accounts_csv")
    assert [column for column in CSV_COLUMNS if column not in csv_row] == []
    username_rows = _reference_row("username")
    assert [p for p in PLACEHOLDERS if p not in username_rows] == []


@pytest.mark.parametrize("command,expected", [
    # sender.py: the journal lives beside OUT (a rebuild replaces OUT as a whole), not inside it.
    ("send", "A journal (OUT.outbox.sqlite beside OUT, or --journal)"),
    # Every format the importer reads (docs/import.md), not the first four.
    ("import", "Thunderbird prefs.js/user.js/mozilla.cfg/policies.json, Outlook .prf and autodiscover.xml"),
])
def test_help_says_what_the_command_does(command: str, expected: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert expected in " ".join(result.output.split())
