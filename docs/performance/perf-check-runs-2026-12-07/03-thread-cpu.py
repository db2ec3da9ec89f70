"""CPU per thread of the platform's Python processes over a while (run 03's figures).

``python 03-thread-cpu.py SECONDS`` while perf-check's load runs: for each relay, consumer and
HTTP worker, the CPU ticks (1/100 s) each thread used in SECONDS, from /proc/PID/task/TID/stat,
beside the thread names ``py-spy dump`` gives (the exporter thread is
``OtelBatchSpanRecordProcessor``).
"""

import os
import subprocess
import sys
import time
from pathlib import Path

PY_SPY = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "py-spy"


def platform_processes() -> dict[int, str]:
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        roles = ("relay", "consume", "granian")
        if "shopstream" in cmd and "python" in cmd and any(r in cmd for r in roles):
            found[int(pid)] = cmd
    return found


def thread_ticks(pid: int) -> dict[int, tuple[str, int]]:
    ticks = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        name = stat.split("(", 1)[1].rsplit(")", 1)[0]
        fields = stat.rsplit(")", 1)[1].split()
        ticks[int(tid)] = (name, int(fields[11]) + int(fields[12]))  # utime + stime
    return ticks


def thread_names(pid: int) -> list[str]:
    dump = subprocess.run([str(PY_SPY), "dump", "--nonblocking", "--pid", str(pid)],
                          capture_output=True, text=True, timeout=20).stdout  # fmt: skip
    return [line for line in dump.splitlines() if line.startswith("Thread")]


def main(seconds: float) -> None:
    processes = platform_processes()
    names = {pid: thread_names(pid) for pid in processes}
    before = {pid: thread_ticks(pid) for pid in processes}
    time.sleep(seconds)
    for pid, cmd in processes.items():
        after = thread_ticks(pid)
        spent = {tid: t - before[pid].get(tid, (name, 0))[1] for tid, (name, t) in after.items()}
        print(cmd[-60:], "total ticks", sum(spent.values()))
        for line in names[pid]:
            print("    ", line)
        for tid, ticks in sorted(spent.items()):
            if ticks:
                print("      tid", tid, after[tid][0], ticks)


if __name__ == "__main__":
    main(float(sys.argv[1]))
