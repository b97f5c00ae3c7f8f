"""What machine a benchmark ran on, and what a running process has used so far.

Shared by the converter benchmark (conftest.py) and the end-to-end one (ingest/).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1e6
    except OSError:
        pass
    return None


def load_average() -> float:
    """The 1-minute load average: other work on a shared machine slows every measurement."""
    return round(os.getloadavg()[0], 2)


@dataclass(frozen=True)
class ProcessUsage:
    """CPU seconds (user + system) and peak resident memory of one live process, so far."""

    pid: int
    cpu_seconds: float
    peak_rss_kb: int

    def since(self, before: ProcessUsage | None) -> ProcessUsage:
        """The CPU used after `before` (same process); the peak stays the process's own."""
        if before is None or before.pid != self.pid:
            return self
        return ProcessUsage(self.pid, self.cpu_seconds - before.cpu_seconds, self.peak_rss_kb)


def process_usage(pid: int) -> ProcessUsage | None:
    """Read /proc/PID/stat (utime + stime) and /proc/PID/status (VmHWM); None once the process is gone.

    VmHWM is the peak RSS of the process's own address space, which exec replaces: unlike
    getrusage's ru_maxrss it does not carry the parent's peak into a child (launch.py).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    # Fields after the ")" that closes the command name; utime and stime are fields 14 and 15.
    fields = stat.rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS
    peak = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return ProcessUsage(pid, cpu, peak)
