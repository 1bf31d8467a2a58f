"""Reading processes from /proc: CPU time (to see where the two cores went), peak memory, and the
connections a process has open."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: state is field 3, utime field 14 and stime field 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / TICKS


def postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL process on the machine (backends, WAL writer, checkpointer)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == "postgres":
                total += cpu_seconds(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue  # a backend that ended meanwhile
    return total


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the most resident memory the process has had so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


@dataclass
class CpuShare:
    """CPU used during a run, in percent of one core: the machine has 200%."""

    server: float
    postgres: float
    client: float


class CpuMeter:
    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.server = cpu_seconds(server_pid)
        self.postgres = postgres_cpu_seconds()

    def share(self, seconds: float, client_cpu_seconds: float) -> CpuShare:
        def percent(cpu: float) -> float:
            return round(100 * cpu / seconds, 1) if seconds else 0.0

        return CpuShare(
            server=percent(cpu_seconds(self.server_pid) - self.server),
            postgres=percent(postgres_cpu_seconds() - self.postgres),
            client=percent(client_cpu_seconds),
        )


def wait_idle(pid: int, *, below: float = 0.05, window: float = 0.5, limit: float = 300.0) -> float:
    """Wait until the process uses under `below` of a core over `window` seconds: requests a load
    generator gave up on still run to their end server-side, and must not weigh on the next run.
    Returns the seconds waited."""
    import time

    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = cpu_seconds(pid)
        time.sleep(window)
        if cpu_seconds(pid) - before < below * window:
            break
    return time.monotonic() - started


def sending_ports(pid: int, remote_port: int) -> set[int]:
    """The local ports of the process's established TCP connections to `remote_port` (IPv4): a
    delivery worker's sends in flight to a receiver on that port, each on a connection of its own."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        if state == "01" and inode in inodes and int(remote.split(":")[1], 16) == remote_port:
            ports.add(int(local.split(":")[1], 16))
    return ports
