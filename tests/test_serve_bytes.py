"""Byte equality: for every account of every example, each answer the service gives equals the file `build`
writes; signed profiles carry exactly the build's profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from generator.build import SignRequest, build, prepare
from generator.serve import create_app
from generator.signing import unsigned_content
from generator.spec import load_spec
from tests.conftest import EXAMPLES
from tests.test_serve import XML_HEADERS, pox
from tests.test_signing import PKI, pki  # noqa: F401  (the session fixture)

SPECS = sorted(EXAMPLES.glob("*.yaml"))


def built(spec: Path, out: Path, sign: SignRequest | None = None) -> dict[str, dict[str, bytes]]:
    """kind -> {account or domain: bytes} of what `build` writes."""
    build(prepare(load_spec(spec), sign=sign), out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    files: dict[str, dict[str, bytes]] = {}
    for entry in manifest["files"]:
        key = entry["account"] or entry["path"].split("/")[1]
        files.setdefault(entry["kind"], {})[key] = (out / entry["path"]).read_bytes()
    return files


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_every_answer_equals_the_built_file(spec: Path, tmp_path: Path) -> None:
    files = built(spec, tmp_path / "out")
    served_kinds = {"mobileconfig", "autodiscover-xml", "autoconfig-xml", "autodiscover-json"} & set(files)
    assert "mobileconfig" in served_kinds  # every example builds Apple profiles
    with TestClient(create_app(spec)) as client:
        for domain, data in files.get("autoconfig-xml", {}).items():
            assert client.get("/mail/config-v1.1.xml", headers={"host": f"autoconfig.{domain}"}).content == data
            assert client.get(f"/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=a@{domain}").content == data
        for domain, data in files.get("autodiscover-json", {}).items():
            r = client.get(f"/autodiscover/autodiscover.json/v1.0/a@{domain}?Protocol=AutodiscoverV1")
            assert r.content == data
        for account, data in files.get("autodiscover-xml", {}).items():
            r = client.post("/autodiscover/autodiscover.xml", content=pox(account), headers=XML_HEADERS)
            assert r.status_code == 200 and r.content == data, account
        for account, data in files.get("mobileconfig", {}).items():
            assert client.get(f"/apple/{account}.mobileconfig").content == data, account


def test_signed_profiles_carry_the_built_profile(tmp_path: Path, pki: PKI) -> None:  # noqa: F811
    spec = EXAMPLES / "school.yaml"
    sign = SignRequest(pki.leaf, pki.leaf_key, pki.chain)
    files = built(spec, tmp_path / "out", sign)
    with TestClient(create_app(spec, sign)) as client:
        for account, data in files.get("mobileconfig", {}).items():
            served = client.get(f"/apple/{account}.mobileconfig").content
            assert served[:1] == b"\x30"  # DER, not the XML plist
            assert unsigned_content(served) == data == unsigned_content(files["mobileconfig-signed"][account])
