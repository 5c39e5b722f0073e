"""Benchmark: `mailprofile serve` against automx2 under gunicorn, both over HTTP, loaded by wrk, in one run.

    python bench/serve.py            # 200 connections, 30 s per endpoint (about 6 minutes)
    python bench/serve.py --quick    # 200 connections, 5 s per endpoint
    python bench/serve.py --workers 4 --connections 100 --duration 10

Both servers run on 127.0.0.1 with the same number of worker processes (default: one per core) on the same
machine as wrk (Debian package `wrk`), so the figures are relative, not capacities. mailprofile: `mailprofile
serve examples/provider-imap.yaml --workers N --no-access-log` (uvicorn, httptools, uvloop); a second instance
signs profiles on the fly with a throw-away EC P-256 certificate. automx2: the PyPI package in its own venv
(bench/automx2_peer.py installs it; gunicorn is added there), `gunicorn -w N automx2.server:app` (sync workers,
gunicorn's default), seeded through its own POST /initdb/ with the same kind of provider (POP3 + SMTP on one
domain).

Per endpoint: requests/s, p50 and p99 latency, errors (socket errors + non-2xx answers) and ours/automx2.
"fixed" requests ask for one address again and again (answered from the service's render cache); "random"
ones a new address every time (rendered, proven and, when signing, signed for each request). automx2 builds
every answer from its database on each request. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import automx2_peer as peer  # noqa: E402  (bench/automx2_peer.py: the project's way to install automx2)

SPEC = ROOT / "examples" / "provider-imap.yaml"
OUR_DOMAIN = "esempio.it"
OUR_ADDRESS = "giulia.bianchi@esempio.it"  # listed in the spec
BODY = peer.AUTODISCOVER_BODY.replace("\n", "")


def lua_post(address_expr: str) -> str:
    body = BODY.replace('"', '\\"').replace("{address}", '" .. ' + address_expr + ' .. "')
    return ('wrk.method = "POST"\nwrk.headers["Content-Type"] = "text/xml; charset=utf-8"\n'
            f'request = function()\n  return wrk.format(nil, nil, nil, "{body}")\nend\n')


def lua_get(path_expr: str) -> str:
    return f'request = function()\n  return wrk.format("GET", {path_expr})\nend\n'


RANDOM = 'string.format("u%d", math.random(1, 1000000000))'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench: {what} exited with {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status < 500:
                    return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"bench: {what} did not answer {url} within 60 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def make_signer(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench profile signer")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=2))
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    (folder / "signer.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "signer.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    return folder / "signer.pem", folder / "signer.key"


def run_wrk(url: str, script: str | None, folder: Path, args: argparse.Namespace) -> dict[str, float]:
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency", "--timeout", "5s"]
    if script is not None:
        path = folder / f"s{abs(hash(script))}.lua"
        path.write_text(script, encoding="utf-8")
        cmd += ["-s", str(path)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(out: str) -> dict[str, float]:
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}  # type: ignore[union-attr]
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        result[f"p{pct}"] = _ms(m.group(1), m.group(2)) if m else float("nan")
    errors = 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        errors += sum(int(g) for g in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    result["errors"] = errors
    result["requests"] = float(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return result


def start_ours(folder: Path, args: argparse.Namespace,
               sign: tuple[Path, Path] | None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "generator", "serve", str(SPEC), "--port", str(port), "--workers", str(args.workers),
           "--no-access-log"]
    if sign:
        cmd += ["--sign-cert", str(sign[0]), "--sign-key", str(sign[1])]
    log = (folder / f"ours-{port}.log").open("wb")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base + "/healthz", proc, "mailprofile serve")
    return proc, base


def start_automx2(folder: Path, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str, str]:
    venv = Path(args.venv).absolute()
    version = peer.installed_version(venv)
    if version is None:
        peer.install(venv, "automx2")
        version = peer.installed_version(venv)
    gunicorn = venv / "bin" / "gunicorn"
    if not gunicorn.exists():
        subprocess.run([str(peer.venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "gunicorn"], check=True, env=peer.clean_env())
    conf = folder / "automx2.conf"
    conf.write_text(f"[automx2]\nloglevel = WARNING\ndb_echo = no\ndb_uri = sqlite:///{folder / 'automx2.sqlite'}\n"
                    "proxy_count = 0\n")
    env = {**peer.clean_env(), "AUTOMX2_CONF": str(conf)}
    port = free_port()
    log = (folder / "automx2.log").open("wb")
    proc = subprocess.Popen([str(gunicorn), "-w", str(args.workers), "-b", f"127.0.0.1:{port}",
                             "automx2.server:app"], cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_ready(base + "/", proc, "automx2 (gunicorn)")
    seed = json.dumps(peer.seed_data(False)).encode()
    request = urllib.request.Request(base + "/initdb/", data=seed, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as r:
        if b"Database is now prepared" not in r.read():
            sys.exit("bench: seeding automx2 through POST /initdb/ failed")
    gver = subprocess.run([str(gunicorn), "--version"], capture_output=True, text=True).stdout.strip()
    return proc, base, f"automx2 {version}, {gver}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="5 s per endpoint instead of 30")
    p.add_argument("--duration", type=int, help="seconds per endpoint (default 30, --quick 5)")
    p.add_argument("--connections", type=int, default=200)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="server workers, both servers")
    p.add_argument("--venv", default=peer.DEFAULT_VENV, help="automx2's venv (created if missing)")
    args = p.parse_args()
    args.duration = args.duration or (5 if args.quick else 30)
    if shutil.which("wrk") is None:
        sys.exit("bench: wrk is not installed (Debian package wrk)")
    work = ROOT / ".bench-work"
    work.mkdir(exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(dir=work, prefix="serve-") as tmp:
        folder = Path(tmp)
        try:
            ours, ours_url = start_ours(folder, args, None)
            procs.append(ours)
            signed, signed_url = start_ours(folder, args, make_signer(folder))
            procs.append(signed)
            peer_proc, peer_url, peer_version = start_automx2(folder, args)
            procs.append(peer_proc)
            d = peer.DOMAIN
            rows = [
                ("autoconfig GET",
                 (ours_url + f"/mail/config-v1.1.xml?emailaddress={OUR_ADDRESS}", None),
                 (peer_url + f"/mail/config-v1.1.xml?emailaddress=user1@{d}", None)),
                ("autodiscover POST, fixed address",
                 (ours_url + "/autodiscover/autodiscover.xml", lua_post(f'"{OUR_ADDRESS}"')),
                 (peer_url + "/autodiscover/autodiscover.xml", lua_post(f'"user1@{d}"'))),
                ("autodiscover POST, random address",
                 (ours_url + "/autodiscover/autodiscover.xml", lua_post(f'{RANDOM} .. "@{OUR_DOMAIN}"')),
                 (peer_url + "/autodiscover/autodiscover.xml", lua_post(f'{RANDOM} .. "@{d}"'))),
                ("profile GET unsigned, random address",
                 (ours_url, lua_get(f'"/apple/" .. {RANDOM} .. "@{OUR_DOMAIN}.mobileconfig"')),
                 (peer_url, lua_get(f'"/mobileconfig/?name=User&emailaddress=" .. {RANDOM} .. "@{d}"'))),
                ("profile GET signed (EC P-256), random address",
                 (signed_url, lua_get(f'"/apple/" .. {RANDOM} .. "@{OUR_DOMAIN}.mobileconfig"')),
                 None),
            ]
            print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration}s; {args.workers} workers each; "
                  f"{peer_version}; {os.cpu_count()} cores shared with wrk; load average {os.getloadavg()[0]:.1f}",
                  flush=True)
            header = (f"{'endpoint':<46} {'mailprofile req/s':>17} {'p50 ms':>7} {'p99 ms':>7} {'err':>5} | "
                      f"{'automx2 req/s':>13} {'p50 ms':>7} {'p99 ms':>7} {'err':>5} | {'ratio':>6}")
            print(header)
            print("-" * len(header))
            for name, mine, theirs in rows:
                a = run_wrk(mine[0], mine[1], folder, args)
                line = f"{name:<46} {a['rps']:>17,.0f} {a['p50']:>7.1f} {a['p99']:>7.1f} {a['errors']:>5.0f} | "
                if theirs is not None:
                    b = run_wrk(theirs[0], theirs[1], folder, args)
                    ratio = a["rps"] / b["rps"] if b["rps"] else float("inf")
                    line += (f"{b['rps']:>13,.0f} {b['p50']:>7.1f} {b['p99']:>7.1f} {b['errors']:>5.0f} | "
                             f"{ratio:>5.1f}x")
                else:
                    line += f"{'-':>13} {'-':>7} {'-':>7} {'-':>5} | {'-':>6}"
                print(line, flush=True)
            print(f"load average at the end: {os.getloadavg()[0]:.1f} (other work on the machine skews the figures)")
        finally:
            for proc in procs:
                stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
