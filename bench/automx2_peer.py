#!/usr/bin/env python3
"""Peer benchmark: automx2 answering mobileconfig + autoconfig + autodiscover for N addresses.

Run with the system python3 (3.11+). The outer run creates (or reuses) a separate virtual environment,
``pip install automx2`` into it, then runs this same file with that environment's interpreter (``--inner``)
for the measurement, so the project's own environment is never touched.

The inner run configures automx2 without any network: an ``automx2.conf`` in a temporary directory points
``db_uri`` at a fresh sqlite file, and the database is seeded through automx2's own ``POST /initdb/`` view
(version-2 seed data: one provider, domain ``bench.example``, POP3 995/SSL, optional IMAP 993/SSL,
SMTP 465/SSL, user name ``%EMAILADDRESS%``, password auth). Then, for each ``user{i}@bench.example``, it
requests the three answers through ``automx2.server.app.test_client()``:

    GET  /mail/config-v1.1.xml?emailaddress=ADDR          (Mozilla autoconfig)
    POST /autodiscover/autodiscover.xml  (Outlook POX body)  (Outlook autodiscover)
    GET  /mobileconfig/?emailaddress=ADDR&name=NAME        (Apple .mobileconfig, unsigned)

It prints ONE line of JSON to stdout; everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_VENV = "/tmp/mailprofile-bench/automx2-venv"
DOMAIN = "bench.example"
POP_HOST = f"pop3s.{DOMAIN}"
IMAP_HOST = f"imaps.{DOMAIN}"
SMTP_HOST = f"smtps.{DOMAIN}"

AUTODISCOVER_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">\n'
    "  <Request>\n"
    "    <EMailAddress>{address}</EMailAddress>\n"
    "    <AcceptableResponseSchema>"
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
    "</AcceptableResponseSchema>\n"
    "  </Request>\n"
    "</Autodiscover>\n"
)


def log(message: str) -> None:
    print(f"[automx2-peer] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accounts", type=int, default=10_000, help="number of addresses (default 10000)")
    p.add_argument("--venv", default=DEFAULT_VENV, help=f"virtual environment for automx2 (default {DEFAULT_VENV})")
    p.add_argument("--skip-install", action="store_true", help="use the existing --venv as is; never run pip")
    p.add_argument("--reinstall", action="store_true", help="recreate the venv even if it already works")
    p.add_argument("--spec", default="automx2", help="pip requirement to install (default 'automx2')")
    p.add_argument("--imap", action="store_true", help="also seed IMAP imaps.bench.example:993 (Apple then prefers it)")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.accounts < 1:
        p.error("--accounts must be at least 1")
    return args


# --------------------------------------------------------------------------------------------- outer (system python)


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def installed_version(venv: Path) -> str | None:
    """automx2's version in the venv, or None if the venv or the package is unusable."""
    py = venv_python(venv)
    if not py.exists():
        return None
    code = "import importlib.metadata as m, flask, sqlalchemy; print(m.version('automx2'))"
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, env=clean_env())
    return r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else None


def clean_env() -> dict[str, str]:
    """The environment for the venv's interpreter, without anything that could leak the project's venv."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def install(venv: Path, spec: str) -> None:
    if venv.exists():
        log(f"removing unusable venv {venv}")
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    log(f"creating venv {venv} with {sys.executable}")
    r = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(
            f"automx2-peer: ERROR: could not create venv {venv}:\n{r.stderr.strip()}\n"
            "(on Debian/Ubuntu the python3-venv package provides the venv module)"
        )
    log(f"pip install {spec} (this needs access to the package index)")
    cmd = [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check", "--quiet", spec]
    r = subprocess.run(cmd, capture_output=True, text=True, env=clean_env())
    if r.returncode != 0:
        tail = "\n".join((r.stderr or r.stdout).strip().splitlines()[-15:])
        sys.exit(
            f"automx2-peer: ERROR: 'pip install {spec}' failed (exit {r.returncode}):\n{tail}\n"
            "Check network access to the package index, or pre-install and pass --skip-install."
        )


def outer(args: argparse.Namespace) -> int:
    venv = Path(args.venv).absolute()
    version = None if args.reinstall else installed_version(venv)
    if args.skip_install:
        if version is None:
            sys.exit(
                f"automx2-peer: ERROR: --skip-install given but {venv} has no working automx2 "
                f"(expected {venv_python(venv)} able to import automx2, flask and sqlalchemy)"
            )
        log(f"using existing venv {venv}: automx2 {version}")
    elif version is not None:
        log(f"reusing venv {venv}: automx2 {version} already installed")
    else:
        install(venv, args.spec)
        version = installed_version(venv)
        if version is None:
            sys.exit(f"automx2-peer: ERROR: pip reported success but automx2 is not importable in {venv}")
        log(f"installed automx2 {version} into {venv}")
    cmd = [str(venv_python(venv)), str(Path(__file__).resolve()), "--inner", "--accounts", str(args.accounts)]
    if args.imap:
        cmd.append("--imap")
    # A child process (not exec) so that ru_maxrss counts only the measuring interpreter.
    return subprocess.run(cmd, env=clean_env()).returncode


# ------------------------------------------------------------------------------------------- inner (automx2's venv)


def seed_data(with_imap: bool) -> dict:
    servers = [{"type": "pop", "name": POP_HOST, "port": 995}]
    if with_imap:
        servers.append({"type": "imap", "name": IMAP_HOST, "port": 993})
    servers.append({"type": "smtp", "name": SMTP_HOST, "port": 465})
    # populate_with_dict(): ports 465/993/995 get socket_type SSL; Server.user_name defaults to %EMAILADDRESS%
    # and Server.authentication to "plain" (password-cleartext / EmailAuthPassword / SPA off).
    return {"version": 2, "provider": "Bench Mail", "domains": [{"name": DOMAIN}], "servers": servers}


def inner(args: argparse.Namespace) -> int:
    import importlib.metadata
    import resource

    version = importlib.metadata.version("automx2")
    with tempfile.TemporaryDirectory(prefix="automx2-bench-") as tmp:
        conf = Path(tmp, "automx2.conf")
        db_path = Path(tmp, "automx2.sqlite")
        conf.write_text(f"[automx2]\nloglevel = WARNING\ndb_echo = no\ndb_uri = sqlite:///{db_path}\nproxy_count = 0\n")
        os.environ["AUTOMX2_CONF"] = str(conf)  # read at import time of automx2.config
        os.environ.pop("PERMIT_CLEARTEXT_PASSWORDS", None)

        from automx2.server import app  # after AUTOMX2_CONF is set

        client = app.test_client()
        r = client.post("/initdb/", json=seed_data(args.imap))
        if r.status_code != 200 or b"Database is now prepared" not in r.data:
            log(f"ERROR: seeding via POST /initdb/ failed: HTTP {r.status_code}: {r.data[:300]!r}")
            return 2
        log(f"automx2 {version}: seeded {db_path.name} with domain {DOMAIN} via POST /initdb/")

        incoming = IMAP_HOST if args.imap else POP_HOST

        def one(i: int) -> list[str]:
            """Request the three answers for one address; return descriptions of what went wrong."""
            address = f"user{i}@{DOMAIN}"
            problems = []
            answers = (
                (  # Mozilla's answer is domain-wide: it keeps %EMAILADDRESS% for the client to substitute
                    "autoconfig",
                    client.get("/mail/config-v1.1.xml", query_string={"emailaddress": address}),
                    (POP_HOST, SMTP_HOST, "%EMAILADDRESS%"),
                ),
                (
                    "autodiscover",
                    client.post(
                        "/autodiscover/autodiscover.xml",
                        data=AUTODISCOVER_BODY.format(address=address),
                        content_type="text/xml; charset=utf-8",
                    ),
                    (POP_HOST, SMTP_HOST, address),
                ),
                (
                    "mobileconfig",
                    client.get("/mobileconfig/", query_string={"emailaddress": address, "name": f"User {i}"}),
                    (incoming, SMTP_HOST, address),
                ),
            )
            for kind, resp, needles in answers:
                body = resp.get_data()
                if resp.status_code != 200 or not body:
                    problems.append(f"{kind} {address}: HTTP {resp.status_code}, {len(body)} bytes")
                elif not all(n.encode() in body for n in needles):
                    problems.append(f"{kind} {address}: body lacks one of {needles}")
            return problems

        warm = one(-1)  # one warm-up triple (lazy imports, first queries), not timed and not counted
        if warm:
            log("ERROR: warm-up request failed (measuring anyway): " + "; ".join(warm))

        failures = 0
        examples: list[str] = []
        start = time.perf_counter()
        for i in range(args.accounts):
            problems = one(i)
            if problems:
                failures += len(problems)
                examples.extend(problems[: max(0, 5 - len(examples))])
        seconds = time.perf_counter() - start

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    n = args.accounts
    result = {
        "tool": "automx2",
        "version": version,
        "accounts": n,
        "answers": 3 * n,
        "seconds": round(seconds, 3),
        "accounts_per_s": round(n / seconds, 1),
        "answers_per_s": round(3 * n / seconds, 1),
        "peak_rss_mb": round(peak_mb, 1),
        "failures": failures,
    }
    if failures:
        log("!" * 78)
        log(f"FAILURES: {failures} of {3 * n} answers were not 200 with the expected content; e.g.:")
        for e in examples:
            log(f"  {e}")
        log("THESE FIGURES ARE NOT A VALID MEASUREMENT")
        log("!" * 78)
    print(json.dumps(result), flush=True)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return inner(args) if args.inner else outer(args)


if __name__ == "__main__":
    sys.exit(main())
