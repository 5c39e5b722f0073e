"""How many workers a build starts: the CPUs this process may use (affinity mask, cgroup CPU quota), not the
host's count, and never more than twice that whatever -j says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from generator.cpus import cgroup_cpu_quota
from tests.serve_process import Server

HEAD = """\
provider: {id: esempio.it, display_name: Esempio, domains: [esempio.it]}
incoming: {protocol: imap, host: imap.esempio.it, port: 993, security: ssl}
outgoing: {host: smtp.esempio.it, port: 465, security: ssl}
accounts_csv: users.csv
"""


def _spec(folder: Path, n: int) -> Path:
    (folder / "users.csv").write_text("name,email\n" + "".join(f"User {i},user{i}@esempio.it\n" for i in range(n)))
    (folder / "spec.yaml").write_text(HEAD, encoding="utf-8")
    return folder / "spec.yaml"


def _run(args: list[str], preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, check=False,
                          preexec_fn=preexec)


def _figures(preexec: Callable[[], None]) -> dict[str, object]:
    """usable_cpus() and cgroup_cpu_quota() as a process started with `preexec` sees them."""
    code = ("import json; from generator.cpus import usable_cpus, cgroup_cpu_quota; "
            "print(json.dumps({'usable': usable_cpus(), 'quota': cgroup_cpu_quota()}))")
    result = _run(["-c", code], preexec)
    assert result.returncode == 0, result.stderr
    figures: dict[str, object] = json.loads(result.stdout)
    return figures


def _pin_to_one_cpu() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def test_a_process_pinned_to_one_cpu_uses_one_and_an_excessive_j_is_reduced(tmp_path: Path) -> None:
    assert _figures(_pin_to_one_cpu)["usable"] == 1
    spec = _spec(tmp_path, 300)
    pinned = _run(["-m", "generator", "build", str(spec), "--out", str(tmp_path / "pinned"), "-j", "64", "-q"],
                  _pin_to_one_cpu)
    assert pinned.returncode == 0, pinned.stderr
    assert ("note: -j 64: this process may use 1 CPU (affinity and cgroup CPU quota); running 2 workers"
            in pinned.stderr.splitlines()), pinned.stderr
    # The same files as a one-worker build.
    serial = _run(["-m", "generator", "build", str(spec), "--out", str(tmp_path / "serial"), "-j", "1", "-q"])
    assert serial.returncode == 0, serial.stderr
    assert "note: -j" not in serial.stderr
    assert (tmp_path / "pinned/manifest.json").read_bytes() == (tmp_path / "serial/manifest.json").read_bytes()


def _cpu_cgroup() -> tuple[Path, bool] | None:
    """A writable hierarchy with the cpu controller (v1, or v2 with cpu delegated), or None."""
    if os.geteuid() != 0:
        return None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields, _, tail = line.partition(" - ")
        point, (fstype, _source, options) = Path(fields.split()[4]), tail.split()[:3]
        if fstype == "cgroup" and "cpu" in options.split(",") and os.access(point, os.W_OK):
            return point, False
        if fstype == "cgroup2" and os.access(point, os.W_OK):
            try:
                if "cpu" in (point / "cgroup.subtree_control").read_text().split():
                    return point, True
            except OSError:
                continue
    return None


@pytest.fixture
def quota_cgroup() -> Iterator[tuple[Path, bool]]:
    """A cgroup with a CPU quota of 1.5 CPUs and a child without one (removed afterwards)."""
    found = _cpu_cgroup()
    if found is None:
        # Not a missing package CI could install: a kernel facility CI may not grant (a read-only /sys/fs/cgroup).
        pytest.skip(reason="no writable cgroup hierarchy with the cpu controller here (needs root, cgroups not "
                    "read-only)")
    point, v2 = found
    parent = point / f"mailprofile-test-{uuid.uuid4().hex[:8]}"
    child = parent / "worker"
    parent.mkdir()
    try:
        if v2:
            (parent / "cgroup.subtree_control").write_text("+cpu")
            (parent / "cpu.max").write_text("150000 100000")
        else:
            (parent / "cpu.cfs_period_us").write_text("100000")
            (parent / "cpu.cfs_quota_us").write_text("150000")
        child.mkdir()
        yield child, v2
    finally:
        for folder in (child, parent):
            if folder.exists():
                folder.rmdir()


def test_a_cgroup_cpu_quota_of_an_ancestor_bounds_the_worker_count(quota_cgroup: tuple[Path, bool]) -> None:
    child, _ = quota_cgroup

    def join() -> None:
        (child / "cgroup.procs").write_text(str(os.getpid()))

    figures = _figures(join)
    assert figures["quota"] == 1.5
    assert figures["usable"] == min(2, len(os.sched_getaffinity(0)))


def _tree(root: Path, cgroup: str, mountinfo: str, files: dict[str, str]) -> Path:
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/cgroup").write_text(cgroup)
    (root / "proc/self/mountinfo").write_text(mountinfo)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


# cgroup v2's cpu controller is not delegated on this project's VM (it runs v1), so the v2 reading is checked
# on files laid out as the kernel writes them (cgroups(7), proc(5)).
V2_MOUNT = "30 23 0:26 {root} /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw\n"


def test_cgroup_v2_quota_on_an_ancestor_of_a_kubernetes_container(tmp_path: Path) -> None:
    root = _tree(tmp_path, "0::/kubepods/pod1/ctr\n", V2_MOUNT.format(root="/"), {
        "sys/fs/cgroup/kubepods/cpu.max": "max 100000\n",
        "sys/fs/cgroup/kubepods/pod1/cpu.max": "250000 100000\n",
        "sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "max 100000\n"})
    assert cgroup_cpu_quota(root) == 2.5


def test_cgroup_v2_inside_a_container_with_its_own_cgroup_namespace(tmp_path: Path) -> None:
    # docker --cpus 2: the container sees its cgroup as / (namespace), mounted at /sys/fs/cgroup.
    root = _tree(tmp_path, "0::/\n", V2_MOUNT.format(root="/"), {"sys/fs/cgroup/cpu.max": "200000 100000\n"})
    assert cgroup_cpu_quota(root) == 2.0
    # Without a cgroup namespace the path names the container's cgroup, and so does the mount's root.
    other = _tree(tmp_path / "b", "0::/system.slice/docker-abc.scope\n",
                  V2_MOUNT.format(root="/system.slice/docker-abc.scope"), {"sys/fs/cgroup/cpu.max": "50000 100000\n"})
    assert cgroup_cpu_quota(other) == 0.5


def test_no_quota_no_cgroup_files_or_unreadable_ones(tmp_path: Path) -> None:
    assert cgroup_cpu_quota(_tree(tmp_path / "a", "0::/\n", V2_MOUNT.format(root="/"),
                                  {"sys/fs/cgroup/cpu.max": "max 100000\n"})) is None
    assert cgroup_cpu_quota(_tree(tmp_path / "b", "0::/user.slice\n", V2_MOUNT.format(root="/"), {})) is None
    assert cgroup_cpu_quota(_tree(tmp_path / "c", "0::/\n", V2_MOUNT.format(root="/"),
                                  {"sys/fs/cgroup/cpu.max": "garbage\n"})) is None
    assert cgroup_cpu_quota(tmp_path / "nothing") is None


def test_escaped_mount_points_and_paths_that_are_not_utf8(tmp_path: Path) -> None:
    # mountinfo writes a space in a mount point as \040; a cgroup's name is bytes, not necessarily UTF-8.
    root = _tree(tmp_path, "", "30 23 0:26 / /sys/fs/cgroup\\040v2 rw - cgroup2 cgroup2 rw\n", {})
    (root / "proc/self/cgroup").write_bytes(b"0::/caf\xe9\n")
    folder = root / os.fsdecode(b"sys/fs/cgroup v2/caf\xe9")
    folder.mkdir(parents=True)
    (folder / "cpu.max").write_text("300000 100000\n")
    assert cgroup_cpu_quota(root) == 3.0
    (root / "proc/self/mountinfo").write_bytes(b"garbage \xff\n" + (root / "proc/self/mountinfo").read_bytes())
    assert cgroup_cpu_quota(root) == 3.0


def test_serve_runs_at_most_twice_the_usable_cpus_as_workers(tmp_path: Path) -> None:
    srv = Server(_spec(tmp_path, 3), tmp_path / "server.log", "--workers", "64", preexec=_pin_to_one_cpu)
    try:
        srv.wait_ready()
        output = srv.output()
        assert ("note: --workers 64: this process may use 1 CPU (affinity and cgroup CPU quota); running 2 "
                "workers") in output, output
        assert "with 2 workers" in output
        children = Path(f"/proc/{srv.proc.pid}/task/{srv.proc.pid}/children").read_text().split()
        assert len(children) == 2, output
        assert srv.request("GET", "/healthz")[0] == 200
    finally:
        assert srv.stop() == 0, srv.output()
