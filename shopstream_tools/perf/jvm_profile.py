"""Sampling profiles of the Kafka broker with Java Flight Recorder, while a perf step runs.

py-spy sees Python only; the broker is the largest single share of an order's CPU, so it gets the
JVM's own sampler. ``jcmd PID JFR.start`` attaches to the running broker (no restart, no agent);
the ``profile`` settings sample running Java threads every 10 ms. The recording is turned into the
same collapsed-stack text as py-spy's, so the summary and the flame graph are drawn the same way.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

NAME = "perf-check"


def start(pid: int, seconds: float, recording: Path) -> bool:
    recording.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["jcmd", str(pid), "JFR.start", f"name={NAME}", "settings=profile",
         f"duration={int(seconds)}s", f"filename={recording}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return done.returncode == 0


def collapsed(recording: Path) -> str:
    """``jfr print --json`` -> ``frame;frame;frame count`` lines, root first."""
    printed = subprocess.run(
        ["jfr", "print", "--json", "--stack-depth", "64", "--events", "jdk.ExecutionSample",
         str(recording)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return to_collapsed(json.loads(printed.stdout))


def to_collapsed(document: dict[str, Any]) -> str:
    stacks: Counter[str] = Counter()
    for event in document.get("recording", {}).get("events", []):
        trace = event.get("values", {}).get("stackTrace") or {}
        frames = [_frame(f) for f in trace.get("frames", [])]
        if frames:
            stacks[";".join(reversed(frames))] += 1
    return "\n".join(f"{stack} {n}" for stack, n in stacks.most_common())


def _frame(frame: dict[str, Any]) -> str:
    method = frame.get("method", {})
    owner = method.get("type", {}).get("name", "?").replace("/", ".").rsplit(".", 1)[-1]
    return f"{owner}.{method.get('name', '?')}"
