"""How many CPUs this process may keep busy, which is how many worker processes a build starts.

os.cpu_count() counts the machine's CPUs. A process pinned to fewer (taskset, cpusets) or limited by a CPU
quota (docker --cpus, Kubernetes limits, systemd CPUQuota=) would start a worker per host CPU: on a 64-CPU
host with a 2-CPU quota that is 64 forked workers, each with its own copy of the pages it touches, for the
work of two. So the count is the affinity mask, bounded by the tightest CPU quota of the process's cgroup
and its ancestors: cgroup v2 `cpu.max` ("quota period" or "max ..."), cgroup v1 `cpu.cfs_quota_us` over
`cpu.cfs_period_us` (-1: none), rounded up.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path


def usable_cpus() -> int:
    """The CPUs this process may use: its affinity mask, bounded by its cgroups' CPU quota. At least 1."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return max(1, min(count, math.ceil(quota))) if quota is not None else max(1, count)


def worker_count(requested: int, option: str) -> tuple[int, str | None]:
    """How many worker processes to run for `option` (-j, --workers) set to `requested` (0: one per usable
    CPU), and a note when the request was reduced. Workers beyond the CPUs only add memory (each copies the
    pages it touches): -j 300 by mistake, or in a container with a CPU quota, would be killed for memory.
    Up to twice the usable CPUs is honoured."""
    usable = usable_cpus()
    if requested == 0:
        return usable, None
    if requested <= 2 * usable:
        return requested, None
    return 2 * usable, (f"{option} {requested}: this process may use {usable} CPU{'s' if usable != 1 else ''} "
                        f"(affinity and cgroup CPU quota); running {2 * usable} workers")


def cgroup_cpu_quota(root: Path = Path("/")) -> float | None:
    """The tightest CPU quota (in CPUs) of this process's cgroups and their ancestors, or None if none is set
    or none can be read. `root` is where /proc and /sys are looked for."""
    try:
        # surrogateescape: a cgroup or mount path need not be UTF-8; such a path is still read and compared.
        memberships = (root / "proc/self/cgroup").read_text("utf-8", "surrogateescape").splitlines()
        mounts = (root / "proc/self/mountinfo").read_text("utf-8", "surrogateescape").splitlines()
    except OSError:
        return None
    quotas = []
    for line in memberships:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        v2 = hierarchy == "0" and controllers == ""
        if not v2 and "cpu" not in controllers.split(","):
            continue
        for mount_root, mount_point in _cgroup_mounts(mounts, v2):
            if path == mount_root or path.startswith(mount_root.rstrip("/") + "/"):
                relative = path[len(mount_root.rstrip("/")):].strip("/")
                quota = _tightest(root / mount_point.lstrip("/"), relative, v2)
                if quota is not None:
                    quotas.append(quota)
                break
    return min(quotas) if quotas else None


def _cgroup_mounts(mountinfo: list[str], v2: bool) -> list[tuple[str, str]]:
    """(root within the hierarchy, mount point) of each cgroup2 mount, or of each v1 mount with the cpu
    controller (proc(5): fields ... root mountpoint options ... - fstype source superoptions)."""
    found = []
    for line in mountinfo:
        fields, _, tail = line.partition(" - ")
        parts, extra = fields.split(), tail.split()
        if len(parts) < 5 or len(extra) < 3:
            continue
        if (v2 and extra[0] == "cgroup2") or (not v2 and extra[0] == "cgroup" and "cpu" in extra[2].split(",")):
            found.append((_unescape(parts[3]), _unescape(parts[4])))
    return found


def _tightest(mount: Path, relative: str, v2: bool) -> float | None:
    """The smallest quota on the way from the cgroup `relative` (under `mount`) up to the mount's root."""
    best: float | None = None
    parts = [p for p in relative.split("/") if p]
    for depth in range(len(parts), -1, -1):
        folder = mount.joinpath(*parts[:depth])
        quota = _quota_v2(folder) if v2 else _quota_v1(folder)
        if quota is not None and (best is None or quota < best):
            best = quota
    return best


def _quota_v2(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text(encoding="ascii").split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _quota_v1(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text(encoding="ascii"))
        period = int((folder / "cpu.cfs_period_us").read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes (\\040 ...)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)
