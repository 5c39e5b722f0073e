"""Benchmark of guides, messages and sending, next to the build's own rate, in one run on this machine.

    python bench/delivery.py                  # 2,000 accounts
    python bench/delivery.py --accounts 10000

Prints, for the same synthetic accounts (half Italian, half English):
- build of the Apple profiles only (the baseline: the rate README's benchmark reports for Apple);
- build of profiles + guides (HTML + text, per account; QR codes with a base URL);
- `mailprofile messages` (profiles + guides + one .eml each): messages composed per second, and the
  composing cost alone (the difference with the line above);
- `mailprofile send` to a local aiosmtpd over implicit TLS with AUTH (one connection, journal on, every
  state change fsynced): messages sent per second, next to the floor: the same .eml bytes pushed through
  one smtplib connection with no journal.
Build figures are the CLI's own (from reading the spec to the last rename). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.smtpd import PASSWORD, USER, smtp_server  # noqa: E402  (after the path set-up)

SPEC = """\
provider: {id: bench.example, display_name: Bench Mail, domains: [bench.example]}
incoming: {protocol: pop3, host: pop3s.bench.example, port: 995, security: ssl, keep_on_server: true, keep_days: 14}
outgoing: {host: smtps.bench.example, port: 465, security: ssl, same_credentials: true}
fallbacks:
  incoming: [{protocol: pop3, host: "pop3.%EMAILDOMAIN%", port: 110, security: none, allow_insecure: true}]
  outgoing: [{host: "smtp.%EMAILDOMAIN%", port: 25, security: none, allow_insecure: true}]
accounts_csv: accounts.csv
delivery:
  language: it
  base_url: https://mail.bench.example
  sender: "IT <it@bench.example>"
  support: {email: help@bench.example}
"""


def synthesise(folder: Path, n: int) -> Path:
    with (folder / "accounts.csv").open("w", encoding="utf-8") as f:
        f.write("name,email,language\n")
        for i in range(n):
            f.write(f"Utente Numero {i},user{i}@bench.example,{'it' if i % 2 else 'en'}\n")
    (folder / "spec.yaml").write_text(SPEC, encoding="utf-8")
    return folder / "spec.yaml"


def cli_build(spec: Path, out: Path, *args: str) -> float:
    """The build's own seconds, as the CLI prints them."""
    cmd = [sys.executable, "-m", "generator", *args[:1], str(spec), "--out", str(out), "--quiet", *args[1:]]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return float(re.findall(r"; ([0-9.]+) s$", result.stdout.strip(), re.M)[-1])


def send(out: Path, port: int, ca: Path) -> float:
    env = {**os.environ, "MAILPROFILE_SMTP_PASSWORD": PASSWORD}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "generator", "send", str(out), "--smtp", f"127.0.0.1:{port}",
                    "--security", "ssl", "--cafile", str(ca), "--user", USER, "-q"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    return time.perf_counter() - started


def floor(out: Path, port: int, ca: Path) -> float:
    messages = [p.read_bytes() for p in sorted(out.rglob("*.eml"))]
    started = time.perf_counter()
    with smtplib.SMTP_SSL("127.0.0.1", port, context=ssl.create_default_context(cafile=str(ca))) as smtp:
        smtp.login(USER, PASSWORD)
        for i, data in enumerate(messages):
            smtp.sendmail("it@bench.example", [f"user{i}@bench.example"], data)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=2_000)
    parser.add_argument("--workdir", type=Path, default=ROOT / ".bench-work",
                        help="where outputs are written (not /tmp: file creation there is slow on our machines)")
    args = parser.parse_args()
    n = args.accounts
    args.workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mailprofile-delivery-", dir=args.workdir) as tmp:
        folder = Path(tmp)
        spec = synthesise(folder, n)
        print(f"delivery benchmark: {n:,} accounts, {os.cpu_count()} cores, Python {sys.version.split()[0]}")
        apple = cli_build(spec, folder / "apple", "build", "--only", "apple")
        guides = cli_build(spec, folder / "guides", "build", "--only", "apple,guide")
        messages = cli_build(spec, folder / "messages", "messages")
        rows = [("build, Apple profiles only (baseline)", f"{n / apple:,.0f} accounts/s ({apple:.1f} s)"),
                ("build, profiles + guides (HTML, text, QR)", f"{n / guides:,.0f} accounts/s ({guides:.1f} s)"),
                ("messages (profiles + guides + .eml)", f"{n / messages:,.0f} messages composed/s ({messages:.1f} s)"),
                ("  composing alone (difference)", f"{n / max(messages - guides, 1e-9):,.0f} messages/s")]
        with smtp_server(folder, "ssl") as (handler, port, ca):
            sent = send(folder / "messages", port, ca)
            received = len(handler.messages)
            handler.messages.clear()
            raw = floor(folder / "messages", port, ca)
        rows += [("send to local aiosmtpd (TLS, AUTH, journal)", f"{received / sent:,.0f} messages sent/s "
                  f"({sent:.1f} s incl. start-up, {received:,} received)"),
                 ("  floor: same bytes, one smtplib connection, no journal", f"{n / raw:,.0f} messages/s "
                  f"({raw:.1f} s); floor/ours {sent / raw:.2f}x")]
        width = max(len(r[0]) for r in rows)
        for label, value in rows:
            print(f"  {label:<{width}}  {value}")


if __name__ == "__main__":
    main()
