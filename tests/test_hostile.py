"""The hostile corpus (tests/hostile/): every file is refused by the real CLI, in a subprocess held to
resource limits, with one located error line, no traceback, nothing written, and a small memory peak.

The limits (address space 1 GiB, 60 s of CPU) only stop a regression from taking the machine down; the
assertions are the exit status, the exact error, and the child's peak resident memory (getrusage).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HOSTILE = Path(__file__).parent / "hostile"
PEAK_MB = 100  # the bound for refusing a hostile spec


# The child is started by a small launcher process, not by pytest: a process's ru_maxrss includes the memory
# of the process it was forked from (Linux records the old address space's peak at exec), so a CLI forked
# from a pytest worker that had grown past the limit "peaked" at the worker's size. The launcher sets the
# limits, forks the CLI from its own small memory, waits for it and prints its status and peak.
LAUNCHER = """
import os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
resource.setrlimit(resource.RLIMIT_CPU, (60, 60))
pid = os.fork()
if pid == 0:
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.execv(sys.executable, [sys.executable, "-m", "generator", *sys.argv[1:]])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def run_cli(args: list[str], cwd: Path) -> tuple[int, str, float]:
    """(exit status, stderr, peak RSS in MB) of `python -m generator ARGS` under resource limits."""
    err_path = cwd / ".stderr"
    with err_path.open("w") as err:
        launcher = subprocess.run([sys.executable, "-c", LAUNCHER, *args], cwd=cwd, stdout=subprocess.PIPE,
                                  stderr=err, text=True, check=True, timeout=300)
    status, peak_kib = (int(field) for field in launcher.stdout.split())
    text = err_path.read_text()
    err_path.unlink()
    return status, text, peak_kib / 1024


CASES = {
    "billion-laughs.yaml": (2, "billion-laughs.yaml:4:4: YAML anchors (&name) are not allowed in a spec"),
    "deep-nesting.yaml": (2, "deep-nesting.yaml:4:42: the YAML nests deeper than 32 levels"),
    "python-tag.yaml": (2, "python-tag.yaml:5:5: YAML tag 'tag:yaml.org,2002:python/object/apply:os.system' is not "
                        "allowed"),
    "csv-dev-zero.yaml": (2, "csv-dev-zero.yaml:4:15: cannot read /dev/zero: not a regular file"),
    "csv-unclosed-quote.yaml": (2, "unclosed-quote.csv:3:1: a quoted value starting in this record is never closed"),
    "csv-latin1.yaml": (2, "latin1.csv:3:6: the file is not UTF-8 (byte 0xf2) — it looks like Latin-1/Windows-1252: "
                        "save it as UTF-8"),
    "passwords-duplicate.yaml": (2, "passwords-duplicate.csv:3:1: 'mario@esempio.it' appears twice in the passwords "
                                 "file (first at line 2)"),
    "passwords-control.yaml": (2, "passwords-control.csv:2:18: the password for 'mario@esempio.it' contains a "
                               "control character (U+0001)"),
}


def _copy_corpus(tmp_path: Path) -> Path:
    work = tmp_path / "hostile"
    work.mkdir()
    for path in HOSTILE.iterdir():
        if path.is_file():
            (work / path.name).write_bytes(path.read_bytes())
    return work


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_spec_is_refused_with_a_located_error(tmp_path: Path, name: str) -> None:
    work = _copy_corpus(tmp_path)
    status, err, peak = run_cli(["build", name, "--out", "out"], work)
    expected_status, expected = CASES[name]
    assert status == expected_status, err
    assert f"error: {expected}" in err
    assert "Traceback" not in err and "nothing was written" in err
    assert not (work / "out").exists()
    assert [p.name for p in work.iterdir() if p.name.startswith(".out")] == []
    assert peak < PEAK_MB, f"{name}: peak {peak:.0f} MB"


def test_oversized_spec_and_too_many_inline_accounts(tmp_path: Path) -> None:
    work = _copy_corpus(tmp_path)
    head = (HOSTILE / "plain.yaml").read_text().split("accounts:")[0]
    (work / "huge.yaml").write_text(head + "accounts:\n" + "  - {name: Some Body, email: some.body@esempio.it}\n"
                                    * 12000)
    status, err, peak = run_cli(["check", "huge.yaml"], work)
    assert status == 2 and "huge.yaml:1:1: the spec is larger than 512 KiB — move the accounts to a CSV file" in err
    assert peak < PEAK_MB
    (work / "many.yaml").write_text(head + "accounts:\n" + "".join(f"  - {{name: U, email: u{i}@esempio.it}}\n"
                                                                   for i in range(5001)))
    status, err, peak = run_cli(["check", "many.yaml"], work)
    assert status == 2 and "many.yaml:5:3: 5001 inline accounts; a spec holds at most 5000" in err
    assert peak < PEAK_MB


def test_csv_field_over_every_limit(tmp_path: Path) -> None:
    work = _copy_corpus(tmp_path)
    (work / "long-field.csv").write_text('name,email\n"' + "x" * 200_000 + '",a@esempio.it\n')
    status, err, peak = run_cli(["build", "csv-long-field.yaml", "--out", "out"], work)
    assert status == 2 and "long-field.csv:2:1: line is longer than 16 KiB" in err
    assert peak < PEAK_MB


TEMPLATE_CASES = {
    "multiply": "apple/mobileconfig.xml.j2:6: '*' would build 10000000000 items (limit 1048576)",
    "power": "apple/mobileconfig.xml.j2:6: '**' with exponent 999999999 (limit 64)",
    "format": "apple/mobileconfig.xml.j2:6: '%' format with a width or precision of 10000 or more",
    "ljust": "apple/mobileconfig.xml.j2:6: rendering needed more than 256 MiB",
    "loop": "apple/mobileconfig.xml.j2: rendering took more than 2 s of CPU time",
    # Any other exception an admin's template raises at run time is its fault, not an internal error.
    "range": "apple/mobileconfig.xml.j2:6: OverflowError: Range too big. The sandbox blocks ranges larger than "
             "MAX_RANGE (100000). — fix this template in the --templates folder",
    "divide": "apple/mobileconfig.xml.j2:6: ZeroDivisionError: integer division or modulo by zero — fix this "
              "template in the --templates folder",
    "type": "apple/mobileconfig.xml.j2:6: TypeError: unsupported operand type(s) for +: 'int' and 'str' — fix this "
            "template in the --templates folder",
}


@pytest.mark.parametrize("case", sorted(TEMPLATE_CASES))
def test_template_that_allocates_or_loops_without_bound(tmp_path: Path, case: str) -> None:
    status, err, _peak = run_cli(["build", str(HOSTILE / "plain.yaml"), "--only", "apple", "--out", "out",
                                  "--templates", str(HOSTILE / f"templates-{case}")], tmp_path)
    assert status == 1, err
    assert f"error: template {TEMPLATE_CASES[case]}" in err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_template_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    templates = tmp_path / "tpl" / "apple"
    templates.mkdir(parents=True)
    (templates / "mobileconfig.xml.j2").symlink_to("/etc/passwd")
    status, err, _peak = run_cli(["build", str(HOSTILE / "plain.yaml"), "--only", "apple", "--out", "out",
                                  "--templates", str(tmp_path / "tpl")], tmp_path)
    assert status == 1
    assert (f"error: --templates {(tmp_path / 'tpl').resolve()}: apple/mobileconfig.xml.j2 is a link to /etc/passwd, "
            "outside the templates folder") in err
    assert "root:" not in err and not (tmp_path / "out").exists()
    # An include through a link is refused the same way.
    (templates / "mobileconfig.xml.j2").unlink()
    (templates / "mobileconfig.xml.j2").write_text('{% include "apple/secret.j2" %}')
    (templates / "secret.j2").symlink_to("/etc/hostname")
    status, err, _peak = run_cli(["build", str(HOSTILE / "plain.yaml"), "--only", "apple", "--out", "out",
                                  "--templates", str(tmp_path / "tpl")], tmp_path)
    assert status == 1 and "apple/secret.j2 is a link to /etc/hostname, outside the templates folder" in err


def test_signing_files_that_never_end_are_refused(tmp_path: Path) -> None:
    status, err, peak = run_cli(["build", str(HOSTILE / "plain.yaml"), "--out", "out", "--sign-cert", "/dev/zero",
                                 "--sign-key", "/dev/zero"], tmp_path)
    assert status == 1
    assert "error: /dev/zero: cannot read the signing certificate: not a regular file" in err
    assert peak < PEAK_MB and not (tmp_path / "out").exists()
