"""The generated .reg files, merged by a real registry implementation (hivex) into a blank hive.

How the test drives hivex (FORMATS.md §4, and what running it showed):
- hivex cannot create a hive, so `empty_hive()` writes the bytes of a minimal valid one: a 4 KiB `regf`
  base block (checksum = XOR of its first 127 dwords) and one 4 KiB `hbin` holding the root `nk` key and
  the `sk` security cell that hivex copies to every new key. `hivexsh` and python3-hivex open it.
- hivexregedit wants UTF-8 text, and reads its input as bytes unless Perl's default I/O layer is UTF-8:
  without PERL_UNICODE=SD, 'ë' is stored as the two characters 'Ã«'. So the test converts the UTF-16LE
  file to UTF-8 and runs hivexregedit with PERL_UNICODE=SD.
- hivex creates a key only if its parent exists. regedit creates missing ancestors itself, so the product
  file stays as regedit wants it and the test input gets empty `[ancestor]` sections prepended.
- `"Name"=-` deletes through hivex too: the hive is seeded with First-Run and FirstRun first, and the test
  checks that they are gone.
Values are read back with python3-hivex under the system python (the venv cannot import it).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from generator.accounts import load_accounts
from generator.regfile import DELETE, REG_DWORD, REG_EXPAND_SZ, REG_SZ
from generator.spec import load_spec
from generator.targets.base import RenderContext
from generator.targets.outlook import OUTLOOK_KEY, SETUP_KEY, OutlookTarget
from tests.conftest import EXAMPLES, require, require_binary
from tests.test_spec_errors import BASE

pytestmark = pytest.mark.hivex

SYSTEM_PYTHON = "/usr/bin/python3"
PREFIX = "HKEY_CURRENT_USER"
ANCESTORS = [PREFIX + "\\" + "\\".join(OUTLOOK_KEY.split("\\")[1:i]) for i in range(2, 7)]
REG_TYPES = {1: REG_SZ, 2: REG_EXPAND_SZ, 4: REG_DWORD}

# Dumps every value under \Software\Microsoft\Office\16.0\Outlook as JSON: {path: {name: [type, hex]}}.
_DUMP = r"""
import hivex, json, sys
h = hivex.Hivex(sys.argv[1])
node = h.root()
for part in sys.argv[2].split("\\"):
    node = h.node_get_child(node, part)
    if node is None:
        print("{}"); sys.exit(0)
out = {}
def walk(node, path):
    out[path] = {h.value_key(v): [h.value_type(v)[0], h.value_value(v)[1].hex()] for v in h.node_values(node)}
    for child in h.node_children(node):
        walk(child, path + "\\" + h.node_name(child))
walk(node, sys.argv[2])
print(json.dumps(out))
"""


def empty_hive() -> bytes:
    """A minimal valid, empty registry hive (8 KiB): base block + one bin with root key and security cell."""
    bin_size, root_offset = 0x1000, 0x20  # cell offsets count from the start of the first bin
    name = b"ROOT"
    # nk: signature, flags (HIVE_ENTRY | NO_DELETE | COMP_NAME), timestamp, access bits, parent, subkey counts
    # and lists (none = 0xFFFFFFFF), value count and list, security cell, class, five size fields, name.
    nk = bytearray(struct.pack("<2sHQIIIIIIIIIIIIIIIHH", b"nk", 0x2C, 0, 0, 0, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF,
                               0, 0xFFFFFFFF, 0, 0xFFFFFFFF, 0, 0, 0, 0, 0, len(name), 0) + name)
    nk_size = (4 + len(nk) + 7) & ~7
    sk_offset = root_offset + nk_size
    struct.pack_into("<I", nk, 44, sk_offset)  # the nk's security-cell field
    descriptor = struct.pack("<BBHIIII", 1, 0, 0x8000, 0, 0, 0, 0)  # self-relative, no owner/group/ACLs
    sk = struct.pack("<2sHIIII", b"sk", 0, sk_offset, sk_offset, 1, len(descriptor)) + descriptor
    sk_size = (4 + len(sk) + 7) & ~7
    cells = (struct.pack("<i", -nk_size) + nk).ljust(nk_size, b"\0")  # negative size = cell in use
    cells += (struct.pack("<i", -sk_size) + sk).ljust(sk_size, b"\0")
    free = bin_size - 0x20 - len(cells)
    cells += struct.pack("<i", free).ljust(free, b"\0")
    hbin = struct.pack("<4sIIQQI", b"hbin", 0, bin_size, 0, 0, 0) + cells
    base = bytearray(0x1000)
    # signature, sequence numbers (equal = clean), timestamp, version 1.3, primary file, direct memory load,
    # root cell, size of the bins, clustering factor.
    struct.pack_into("<4sIIQIIIIIII", base, 0, b"regf", 1, 1, 0, 1, 3, 0, 1, root_offset, bin_size, 1)
    checksum = 0
    for (dword,) in struct.iter_unpack("<I", bytes(base[:0x1FC])):
        checksum ^= dword
    struct.pack_into("<I", base, 0x1FC, checksum)
    return bytes(base) + hbin


@pytest.fixture(scope="module")
def hivexregedit() -> str:
    path = require_binary("hivexregedit", "libhivex-bin")
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import hivex"], capture_output=True, check=False)
    require(probe.returncode == 0, "python3-hivex not importable by /usr/bin/python3 (Debian package python3-hivex)")
    return path


def _merge(tool: str, hive: Path, reg_text: str) -> subprocess.CompletedProcess[str]:
    source = hive.with_suffix(".reg")
    source.write_text(reg_text.replace("\r\n", "\n"), encoding="utf-8")
    env = {**os.environ, "PERL_UNICODE": "SD"}
    return subprocess.run([tool, "--merge", "--prefix", PREFIX, str(hive), str(source)], capture_output=True,
                          text=True, env=env, check=False)


def _with_ancestors(reg: bytes) -> str:
    """UTF-16LE .reg -> text with the ancestor keys hivex needs, inserted after the header's blank line."""
    assert reg.startswith(b"\xff\xfe")
    header, rest = reg[2:].decode("utf-16-le").split("\r\n\r\n", 1)
    return header + "\r\n\r\n" + "".join(f"[{key}]\r\n\r\n" for key in ANCESTORS) + rest


def _dump(hive: Path) -> dict[str, dict[str, tuple[str, Any]]]:
    key = "\\".join(OUTLOOK_KEY.split("\\")[1:])
    done = subprocess.run([SYSTEM_PYTHON, "-c", _DUMP, str(hive), key], capture_output=True, text=True, check=True)
    out: dict[str, dict[str, tuple[str, Any]]] = {}
    for path, values in json.loads(done.stdout).items():
        decoded: dict[str, tuple[str, Any]] = {}
        for name, (kind, data_hex) in values.items():
            data = bytes.fromhex(data_hex)
            if kind in (1, 2):
                assert data.endswith(b"\0\0"), f"{name}: string without terminator"
                decoded[name] = (REG_TYPES[kind], data[:-2].decode("utf-16-le"))
            elif kind == 4:
                decoded[name] = (REG_DWORD, struct.unpack("<I", data)[0])
            else:
                decoded[name] = (str(kind), data)
        out[PREFIX + "\\" + path] = decoded
    return out


SEED = f"""Windows Registry Editor Version 5.00

{''.join(f'[{key}]{chr(10)}{chr(10)}' for key in ANCESTORS)}[{SETUP_KEY}]
"First-Run"=hex:01,02
"FirstRun"=dword:00000001
"""


def _cases(tmp: Path) -> list[tuple[str, Path]]:
    special = tmp / "special.yaml"
    special.write_text(BASE.replace("name: Mario Rossi", 'name: "Bob \\"The Builder\\" \\\\ O\'Neil"') + """\
  outlook:
    prf_dir: 'C:\\ProgramData\\Società "Ünal" – Posta\\日本\\'
    force_pst_path: 'C:\\Users\\Zoë Ünal\\Outlook-Dateien'
    disable_simplified_account_creation: true
""", encoding="utf-8")
    return [*((p.stem, p) for p in sorted(EXAMPLES.glob("*.yaml"))), ("special", special)]


def test_every_generated_reg_merges_into_a_blank_hive_and_reads_back(hivexregedit: str, tmp_path: Path) -> None:
    merged = 0
    for label, spec in _cases(tmp_path):
        loaded = load_spec(spec)
        target = OutlookTarget(RenderContext(loaded))
        for mailbox in load_accounts(loaded):
            [reg] = [f for f in target.render_account(mailbox) if f.kind == "reg"]
            hive = tmp_path / f"{label}-{mailbox.index}.hive"
            hive.write_bytes(empty_hive())
            seeded = _merge(hivexregedit, hive, SEED)
            assert seeded.returncode == 0, seeded.stderr
            assert "First-Run" in _dump(hive)[SETUP_KEY]
            result = _merge(hivexregedit, hive, _with_ancestors(reg.data))
            assert result.returncode == 0, f"{reg.path}: hivexregedit exit {result.returncode}: {result.stderr}"
            # Expected values come from the spec (via the target's mapping), not from the .reg text.
            expected = {key: {name: value for name, value in values.items() if value[0] != DELETE}
                        for key, values in target.expected_reg(target.account_strings(mailbox)).items()}
            actual = {key: values for key, values in _dump(hive).items() if values or key in expected}
            assert actual == expected, reg.path
            merged += 1
    assert merged == 1 + 1 + 5 + 1 + 2  # ... + examples/delivery.yaml (2 accounts)


def _merged(hivexregedit: str, spec: Path, hive: Path) -> dict[str, Any]:
    """The values in a new hive after hivexregedit merged the .reg of the spec's one account."""
    loaded = load_spec(spec)
    [mailbox] = load_accounts(loaded)
    [reg] = [f for f in OutlookTarget(RenderContext(loaded)).render_account(mailbox) if f.kind == "reg"]
    hive.write_bytes(empty_hive())
    assert _merge(hivexregedit, hive, _with_ancestors(reg.data)).returncode == 0
    return _dump(hive)


def test_special_case_values_are_the_ones_the_spec_asked_for(hivexregedit: str, tmp_path: Path) -> None:
    """Spelled out once, independent of the target's own expectations."""
    [(_, spec)] = [c for c in _cases(tmp_path) if c[0] == "special"]
    values = _merged(hivexregedit, spec, tmp_path / "special.hive")
    assert values[SETUP_KEY] == {
        "ImportPRF": (REG_SZ, 'C:\\ProgramData\\Società "Ünal" – Posta\\日本\\mario.rossi@esempio.it.prf'),
        "DisableOffice365SimplifiedAccountCreation": (REG_DWORD, 1)}
    assert values[OUTLOOK_KEY] == {"ForcePSTPath": (REG_EXPAND_SZ, "C:\\Users\\Zoë Ünal\\Outlook-Dateien")}


def test_the_harness_sees_a_broken_file(hivexregedit: str, tmp_path: Path) -> None:
    """Without this, an exit code that is always 0 would make the merge test prove nothing."""
    hive = tmp_path / "broken.hive"
    hive.write_bytes(empty_hive())
    result = _merge(hivexregedit, hive, "Windows Registry Editor Version 5.00\n\n[\\Software]\nnot a value\n")
    assert result.returncode != 0 and "parse error" in result.stderr


def test_force_pst_path_may_start_with_an_environment_variable(hivexregedit: str, tmp_path: Path) -> None:
    """REG_EXPAND_SZ exists to carry %VARIABLE% paths (a PST folder per user); the spec refused them."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(BASE + "  outlook:\n    force_pst_path: '%LOCALAPPDATA%\\Microsoft\\Outlook'\n", encoding="utf-8")
    values = _merged(hivexregedit, spec, tmp_path / "expand.hive")
    assert values[OUTLOOK_KEY] == {"ForcePSTPath": (REG_EXPAND_SZ, "%LOCALAPPDATA%\\Microsoft\\Outlook")}
