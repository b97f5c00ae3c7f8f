"""Run one command and report its wall time and its own peak RSS, as JSON on stdout.

    python -S launch.py STDIN_FILE STDOUT_FILE STDERR_FILE -- COMMAND [ARG...]

Why a launcher: Linux carries a process's peak RSS across fork and exec, so a child
started straight from the (big) pytest process would inherit pytest's peak as its
ru_maxrss. This launcher is a bare interpreter (`-S`, standard library only, a few MB);
the command it spawns starts from that small footprint, and os.wait4 returns that one
child's rusage, so every peer's number is its own, except that it cannot be lower than
the launcher's own peak when it spawned the child: that floor is reported with it.
"""

import json
import os
import sys
import time


def own_peak_rss_kb():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def main(argv):
    if len(argv) < 5 or argv[3] != "--":
        sys.stderr.write(__doc__)
        return 2
    stdin_path, stdout_path, stderr_path, command = argv[0], argv[1], argv[2], argv[4:]
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, stdin_path, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, stdout_path, flags, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, stderr_path, flags, 0o644),
    ]
    floor = own_peak_rss_kb()
    started = time.perf_counter()
    try:
        pid = os.posix_spawnp(command[0], command, os.environ, file_actions=actions)
    except OSError as exc:
        print(json.dumps({"error": f"cannot start {command[0]}: {exc}"}))
        return 0
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    print(json.dumps({
        "wall_seconds": wall,
        "max_rss_kb": usage.ru_maxrss,  # kilobytes on Linux
        "rss_floor_kb": floor,
        "returncode": os.waitstatus_to_exitcode(status),
        "user_seconds": usage.ru_utime,
        "system_seconds": usage.ru_stime,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
