"""Same spec, same files, whatever the machine around the build: the locale's charset, a spec file name
that is not UTF-8. (Time zone, hash seed, umask, -j and the zlib build have their own tests: test_mdm,
test_build, test_guide.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from generator.build import build, prepare
from generator.spec import load_spec
from tests.conftest import ROOT, require, require_binary

# Addresses whose folder names are not ASCII: one Latin-1 can spell, one it cannot (Ş, U+015E).
SPEC = """\
provider: {id: buecher.example, display_name: Bücher Mail, domains: [bücher.example]}
incoming: {protocol: imap, host: imap.bücher.example, port: 993, security: ssl}
outgoing: {host: smtp.bücher.example, port: 465, security: ssl}
accounts:
  - {name: Zoë, email: zoë@bücher.example}
  - {name: Işık, email: IŞIK@bücher.example}
"""


def tree(folder: Path) -> dict[bytes, bytes]:
    """Every file under folder by its path as bytes on disk (what another machine or a zip would see)."""
    top = os.fsencode(folder)
    files = {}
    for root, _dirs, names in os.walk(top):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                files[os.path.relpath(path, top)] = handle.read()
    return files


@pytest.fixture(scope="module")
def latin1_locale(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """it_IT.ISO-8859-1 compiled into a folder of its own (LOCPATH), as a legacy server has it installed."""
    localedef = require_binary("localedef", "libc-bin")
    require(Path("/usr/share/i18n/locales/it_IT").exists(), "locale sources not installed (Debian package locales)")
    folder = tmp_path_factory.mktemp("locales")
    subprocess.run([localedef, "-i", "it_IT", "-f", "ISO-8859-1", str(folder / "it_IT.ISO-8859-1")], check=True,
                   capture_output=True)
    return folder


def test_a_latin1_locale_writes_the_files_a_utf8_one_does(tmp_path: Path, latin1_locale: Path) -> None:
    """Python names files in the locale's charset: under LANG=it_IT.ISO-8859-1 zoë's folder was written in
    Latin-1 bytes, and IŞIK@... stopped the build ("internal error (UnicodeEncodeError ...)")."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    build(prepare(load_spec(spec)), tmp_path / "utf8")
    env = {**os.environ, "LOCPATH": str(latin1_locale), "LC_ALL": "it_IT.ISO-8859-1", "LANG": "it_IT.ISO-8859-1"}
    for name in ("PYTHONUTF8", "PYTHONIOENCODING", "LANGUAGE"):
        env.pop(name, None)
    probe = subprocess.run([sys.executable, "-c", "import sys; print(sys.getfilesystemencoding())"], env=env,
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "iso8859-1"  # the locale took effect: the build below runs under it
    result = subprocess.run([sys.executable, "-m", "generator", "build", str(spec), "--out", str(tmp_path / "latin1")],
                            env=env, capture_output=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    built = tree(tmp_path / "latin1")
    assert "zoë@xn--bcher-kva.example/apple/zoë@xn--bcher-kva.example.mobileconfig".encode() in built
    assert built == tree(tmp_path / "utf8")
    # The terminal keeps its charset: what Latin-1 cannot spell is escaped, not mis-encoded.
    assert "  created  zoë@xn--bcher-kva.example/apple/".encode("iso-8859-1") in result.stdout
    assert b"  created  I\\u015eIK@xn--bcher-kva.example/apple/" in result.stdout


def test_a_spec_file_name_that_is_not_utf8_is_shown_in_the_manifest(tmp_path: Path) -> None:
    """A spec copied from a Latin-1 system (sch\\xe9ol.yaml on disk): encoding the manifest stopped the build
    with an internal error; the name is written with its odd byte escaped."""
    folder = os.fsencode(tmp_path)
    with open(os.path.join(folder, b"sch\xe9ol.yaml"), "wb") as handle:
        handle.write(SPEC.encode("utf-8"))
    spec = Path(os.fsdecode(os.path.join(folder, b"sch\xe9ol.yaml")))
    build(prepare(load_spec(spec)), tmp_path / "out")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_bytes())
    assert manifest["spec"] == "sch\\xe9ol.yaml"
