"""Benchmark `mailprofile import` against the floor, in one run, on this machine.

    python bench/import_bench.py

Prints, per input, the median of several runs:
- an ISPDB entry (web.de): our import (guarded SAX parse with positions, draft, merge, YAML, proof by the
  `check` pipeline) against the floor, defusedxml.ElementTree.fromstring of the same bytes;
- a profile with 200 mail payloads (the most we read): our import against plistlib.loads of the same bytes;
- a signed profile: unwrap (+ verify) against plistlib on the unsigned content;
- the hostile inputs: a 100 MB file, a billion-laughs bomb, 5,000 payloads: time and peak memory until the
  refusal.
Nothing here is asserted: the figures are for the README and for people. Work files go under bench/.work
(not /tmp, which is slow on the CI machine).
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import plistlib  # noqa: E402

import defusedxml.ElementTree as SafeET  # noqa: E402

from generator.errors import SpecError  # noqa: E402
from generator.importers import import_sources  # noqa: E402
from generator.importers.cms import unwrap  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "import"
WORK = ROOT / "bench" / ".work"
HEAD = (b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" '
        b'"http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n')


def median_ms(work: Callable[[], object], runs: int = 15) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        with contextlib.suppress(SpecError):
            work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def peak_kib(work: Callable[[], object]) -> float:
    tracemalloc.start()
    with contextlib.suppress(SpecError):
        work()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1024


def mail_payload(i: int) -> bytes:
    return (f"<dict><key>PayloadType</key><string>com.apple.mail.managed</string><key>PayloadVersion</key>"
            f"<integer>1</integer><key>PayloadIdentifier</key><string>bench.{i}</string><key>PayloadUUID</key>"
            f"<string>U{i}</string><key>EmailAccountType</key><string>EmailTypeIMAP</string>"
            f"<key>EmailAddress</key><string>user{i}@bench.example</string><key>EmailAccountName</key>"
            f"<string>User {i}</string><key>IncomingMailServerHostName</key><string>imap.bench.example</string>"
            f"<key>IncomingMailServerPortNumber</key><integer>993</integer><key>IncomingMailServerUseSSL</key>"
            f"<true/><key>IncomingMailServerAuthentication</key><string>EmailAuthPassword</string>"
            f"<key>IncomingMailServerUsername</key><string>user{i}@bench.example</string>"
            f"<key>OutgoingMailServerHostName</key><string>smtp.bench.example</string>"
            f"<key>OutgoingMailServerPortNumber</key><integer>465</integer><key>OutgoingMailServerUseSSL</key>"
            f"<true/><key>OutgoingMailServerAuthentication</key><string>EmailAuthPassword</string>"
            f"<key>OutgoingMailServerUsername</key><string>user{i}@bench.example</string></dict>\n").encode()


def profile(payloads: int) -> bytes:
    return (HEAD + b"<plist><dict><key>PayloadType</key><string>Configuration</string><key>PayloadIdentifier"
            b"</key><string>bench</string><key>PayloadUUID</key><string>B</string><key>PayloadVersion</key>"
            b"<integer>1</integer><key>PayloadContent</key><array>\n"
            + b"".join(mail_payload(i) for i in range(payloads)) + b"</array></dict></plist>\n")


def row(name: str, ours: float, floor: float | None, floor_name: str = "") -> None:
    ratio = f"{ours / floor:6.1f}x {floor_name} ({floor:.2f} ms)" if floor else ""
    print(f"  {name:<44} {ours:9.2f} ms  {ratio}")


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    print(f"mailprofile import, median of 15 runs, Python {sys.version.split()[0]}")
    web = FIXTURES / "ispdb" / "web.de.xml"
    data = web.read_bytes()
    row("ISPDB web.de.xml (6 servers)", median_ms(lambda: import_sources([web])),
        median_ms(lambda: SafeET.fromstring(data)), "defusedxml parse")

    big = WORK / "200-payloads.mobileconfig"
    big.write_bytes(profile(200))
    big_data = big.read_bytes()
    row(f"profile, 200 mail payloads ({len(big_data) // 1024} KiB)", median_ms(lambda: import_sources([big]), 5),
        median_ms(lambda: plistlib.loads(big_data), 5), "plistlib.loads")

    signed = FIXTURES / "profiles" / "automx2-imap.signed-ber.mobileconfig"
    signed_data = signed.read_bytes()
    content = unwrap(signed_data, str(signed), False).content
    row("signed profile (BER), import", median_ms(lambda: import_sources([signed])),
        median_ms(lambda: plistlib.loads(content)), "plistlib on content")
    row("signed profile (BER), unwrap + verify", median_ms(lambda: unwrap(signed_data, str(signed), True)), None)

    print("hostile inputs (time and peak Python memory until the refusal):")
    huge = WORK / "100mb.xml"
    with huge.open("wb") as handle:
        handle.write(b"<clientConfig>")
        handle.truncate(100 * 1024 * 1024)
    bomb = WORK / "bomb.xml"
    bomb.write_bytes(b'<?xml version="1.0"?>\n<!DOCTYPE c [<!ENTITY a "aaaaaaaaaa">' + b"".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(9))
        + b"]>\n<c>&j;</c>\n")
    many = WORK / "5000-payloads.mobileconfig"
    many.write_bytes(HEAD + b"<plist><dict><key>PayloadType</key><string>Configuration</string><key>PayloadContent"
                     b"</key><array>" + b"<dict><key>PayloadType</key><string>x</string></dict>" * 5000
                     + b"</array></dict></plist>")
    for name, path in (("100 MB file", huge), ("billion laughs (10^10 bytes)", bomb),
                       ("5,000 payloads", many)):
        print(f"  {name:<44} {median_ms(lambda p=path: import_sources([p])):9.2f} ms  "
              f"peak {peak_kib(lambda p=path: import_sources([p])):8.0f} KiB")
    for path in (huge, bomb, many, big):
        path.unlink()


if __name__ == "__main__":
    main()
