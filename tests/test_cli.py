"""The command line as an admin uses it: exit codes, messages, python -m."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from generator import __version__
from generator.cli import main
from tests.conftest import ROOT
from tests.test_spec_errors import BASE


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output == f"mailprofile, version {__version__}\n"


def test_python_dash_m_works() -> None:
    result = subprocess.run([sys.executable, "-m", "generator", "--help"], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert "build" in result.stdout and "check" in result.stdout and "schema" in result.stdout


def test_schema_is_json_schema_of_the_spec() -> None:
    result = CliRunner().invoke(main, ["schema"])
    schema = json.loads(result.output)
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"provider", "incoming", "outgoing"}
    server = schema["$defs"]["IncomingServer"]["properties"]
    assert server["port"]["maximum"] == 65535 and server["port"]["type"] == "integer"
    assert server["security"]["enum"] == ["ssl", "starttls", "none"]


def test_check_ok_prints_summary_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(BASE)
    result = CliRunner().invoke(main, ["check", str(tmp_path / "spec.yaml")])
    assert result.exit_code == 0
    assert result.output.splitlines()[-1] == f"{tmp_path / 'spec.yaml'}: ok, 1 account, targets apple, 0 warnings"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_build_prints_per_file_status_and_summary(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(BASE)
    args = ["build", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "out")]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    path = "mario.rossi@esempio.it/apple/mario.rossi@esempio.it.mobileconfig"
    size = (tmp_path / "out" / path).stat().st_size
    lines = first.output.splitlines()
    assert lines[0] == f"  created  {path}"
    assert re.fullmatch(re.escape(f"built 1 account, 1 files ({size} bytes) in {tmp_path / 'out'}: 1 created; "
                                  "0 warnings; ") + r"\d+\.\d\d s", lines[1])
    second = CliRunner().invoke(main, args)
    assert second.output.splitlines()[0] == f"unchanged  {path}"


def test_missing_spec_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert result.output.splitlines()[0] == (f"error: {tmp_path / 'nope.yaml'}:1:1: cannot read the spec: No such "
                                             "file or directory — check the path")
    assert "Traceback" not in result.output


def test_verification_failure_exit_1(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(BASE)
    tpl = tmp_path / "tpl" / "apple"
    tpl.mkdir(parents=True)
    (tpl / "mobileconfig.xml.j2").write_text("<plist version=\"1.0\"><dict/></plist>\n")
    result = CliRunner().invoke(main, ["build", str(tmp_path / "spec.yaml"), "--out", str(tmp_path / "out"),
                                       "--templates", str(tmp_path / "tpl")])
    assert result.exit_code == 1
    assert "the rendered file does not say what the spec says" in result.output
    assert "  PayloadContent: missing (expected" in result.output
    assert not (tmp_path / "out").exists()


def test_spec_reference_doc_is_in_sync_with_the_model() -> None:
    from generator.reference import spec_reference

    assert (ROOT / "docs" / "spec.md").read_text(encoding="utf-8") == spec_reference(), (
        "docs/spec.md is stale: python -m generator.reference > docs/spec.md")
