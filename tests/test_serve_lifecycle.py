"""`mailprofile serve` over its lifetime, with the real process: reloads that overlap, reloads with several
workers, workers that die, and how it stops. Started on a free port and stopped by PID (serve_process.py)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.serve_process import Server, serving


def wait_for(predicate: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def replace(spec: Path, text: str) -> None:
    """Write the spec as an editor or configuration management does: a new file renamed over the old one."""
    fresh = spec.with_name(spec.name + ".new")
    fresh.write_text(text, encoding="utf-8")
    os.replace(fresh, spec)


def big_school(folder: Path, rows: int) -> str:
    """The school example (two domains) with `rows` accounts in its CSV: slow enough to load that a second
    reload can start while it runs."""
    csv = folder / "many.csv"
    with csv.open("w", encoding="utf-8") as handle:
        handle.write("name,email,username\n")
        handle.writelines(f"User {i},user{i}@school.example,\n" for i in range(rows))
    text = (EXAMPLES / "school.yaml").read_text(encoding="utf-8")
    return text.replace("accounts_csv: school-accounts.csv", f"accounts_csv: {csv}")


def domains(srv: Server) -> bytes:
    status, body = srv.request("GET", "/healthz")
    assert status == 200
    return body


def test_overlapping_reloads_end_on_the_spec_on_disk(tmp_path: Path) -> None:
    """A slow reload (a big CSV) and a quick one sent after it: the service ends on the spec the file holds
    now. Run side by side, the slow one finished last and swapped in the spec that was no longer there."""
    spec = tmp_path / "spec.yaml"
    small = (EXAMPLES / "provider-imap.yaml").read_text(encoding="utf-8")  # one domain
    spec.write_text(small, encoding="utf-8")
    big = big_school(tmp_path, 30_000)  # two domains
    with serving(spec, tmp_path / "server.log") as srv:
        assert domains(srv) == b"ok 1 domains\n"
        replace(spec, big)
        os.kill(srv.proc.pid, signal.SIGHUP)
        time.sleep(0.3)  # the first reload has begun reading the big spec
        replace(spec, small)
        os.kill(srv.proc.pid, signal.SIGHUP)
        assert wait_for(lambda: srv.output().count("reloaded ") == 2), srv.output()
        lines = [line for line in srv.output().splitlines() if "reloaded " in line]
        assert lines[-1].endswith(": 1 domain"), lines
        assert domains(srv) == b"ok 1 domains\n"


def workers_of(srv: Server) -> set[int]:
    children = Path(f"/proc/{srv.proc.pid}/task/{srv.proc.pid}/children").read_text(encoding="ascii")
    return {int(pid) for pid in children.split()}


def test_every_worker_answers_the_spec_the_supervisor_validated(tmp_path: Path) -> None:
    """With --workers 2 a reload loads the spec once, in the supervisor, and every worker answers with that
    spec: the file changing again right after (here made invalid, as by an editor half-way through a save)
    changes nothing until the next SIGHUP. Workers that re-read the file themselves, a moment later, could
    load another file than the one validated (seen: the supervisor validated a two-domain spec and the
    workers loaded the one-domain spec renamed over it), and parsed a big CSV three times at once."""
    spec = tmp_path / "spec.yaml"
    spec.write_text((EXAMPLES / "provider-imap.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    with serving(spec, tmp_path / "server.log", "--workers", "2") as srv:
        before = workers_of(srv)
        assert len(before) == 2 and domains(srv) == b"ok 1 domains\n"
        replace(spec, big_school(tmp_path, 30_000))
        os.kill(srv.proc.pid, signal.SIGHUP)
        assert wait_for(lambda: "reloaded " in srv.output()), srv.output()
        replace(spec, "provider: [half a save\n")
        # The old workers stop once they have finished; two new ones answer in their place.
        assert wait_for(lambda: len(workers_of(srv)) == 2 and not workers_of(srv) & before), srv.output()
        assert {domains(srv) for _ in range(20)} == {b"ok 2 domains\n"}
        log = srv.output()
        assert log.count("reloaded ") == 1 and "reload failed" not in log, log
        assert "exited; starting another" not in log and "Traceback" not in log

        # A worker killed from outside is replaced by one with the same, validated spec.
        victim = min(workers_of(srv))
        os.kill(victim, signal.SIGKILL)
        assert wait_for(lambda: len(workers_of(srv)) == 2 and victim not in workers_of(srv)), srv.output()
        assert {domains(srv) for _ in range(20)} == {b"ok 2 domains\n"}
    assert srv.proc.returncode == 0


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_graceful_stop_exits_0(tmp_path: Path, workers: str, stop: signal.Signals) -> None:
    """systemctl stop (SIGTERM) and Ctrl-C (SIGINT) end with status 0 and no abort message, whatever the
    number of workers; with one worker Ctrl-C printed click's "Aborted!" and exited 1, a failed unit."""
    srv = Server(EXAMPLES / "provider-imap.yaml", tmp_path / "server.log", "--workers", workers)
    try:
        srv.wait_ready()
        os.kill(srv.proc.pid, stop)
        assert srv.proc.wait(timeout=30) == 0, srv.output()
    finally:
        srv.stop()
    log = srv.output()
    assert "Finished server process" in log
    assert "Aborted" not in log and "Traceback" not in log and "KeyboardInterrupt" not in log


def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    """SIGKILL to the supervisor (the OOM killer's choice: after a reload it is the biggest process) stops
    its workers too, and the port is free for the next `mailprofile serve`. They kept serving, holding
    the port, with a spec no SIGHUP could reach any more."""
    srv = Server(EXAMPLES / "provider-imap.yaml", tmp_path / "server.log", "--workers", "2")
    workers: set[int] = set()
    try:
        srv.wait_ready()
        workers = workers_of(srv)
        assert len(workers) == 2
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait(timeout=10)
        assert wait_for(lambda: not any(running(pid) for pid in workers), 30), srv.output()
    finally:
        srv.stop()
        for pid in workers:
            if running(pid):
                os.kill(pid, signal.SIGKILL)
    with socket.socket() as sock:
        assert sock.connect_ex((srv.host, srv.port)) != 0  # nobody listens there any more
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((srv.host, srv.port))  # and the port can be taken again


def running(pid: int) -> bool:
    """The process exists and is no zombie (a worker whose parent died is reaped by init)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def test_the_documented_systemd_unit_is_valid_and_keeps_the_passphrase_private() -> None:
    """The unit in docs/serve.md uses only options the installed systemd knows (systemd-analyze verify
    warns, and carries on, for an unknown or misspelt one), and never puts the passphrase in Environment=,
    which systemd shows to every local user (systemctl show -p Environment, over D-Bus)."""
    text = (ROOT / "docs" / "serve.md").read_text(encoding="utf-8")
    unit = text.split("```ini\n", 1)[1].split("```", 1)[0]
    assert "ExecReload=/bin/kill -HUP $MAINPID" in unit
    assert not re.search(r"^#?\s*Environment=.*PASSPHRASE", unit, re.MULTILINE), unit
    assert re.search(r"^#?EnvironmentFile=", unit, re.MULTILINE), unit
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip(reason="systemd-analyze is not installed")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mailprofile.service"
        path.write_text(unit.replace("/usr/local/bin/mailprofile", sys.executable), encoding="utf-8")
        result = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr == "", result.stderr


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_reload_while_the_spec_loads_at_start_is_done_once_it_answers(tmp_path: Path, workers: str) -> None:
    """`systemctl reload` while a big spec is still loading at start (systemd takes the service as started
    at once). SIGHUP's default action ended the process, a death systemd counts as clean, so it was not
    restarted either. Now the service starts, then reloads: the file may have changed during the load."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(big_school(tmp_path, 30_000), encoding="utf-8")
    csv = str(tmp_path / "many.csv")
    srv = Server(spec, tmp_path / "server.log", "--workers", workers)
    try:
        # The CSV is open: the spec is loading, long after the interpreter started.
        assert wait_for(lambda: csv in open_files(srv.proc.pid), 60), srv.output()
        os.kill(srv.proc.pid, signal.SIGHUP)
        srv.wait_ready()
        assert wait_for(lambda: "reloaded " in srv.output()), srv.output()
        assert srv.proc.poll() is None and domains(srv) == b"ok 2 domains\n"
    finally:
        srv.stop()
    assert srv.proc.returncode == 0 and "Traceback" not in srv.output()


def open_files(pid: int) -> set[str]:
    files = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                files.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return files
