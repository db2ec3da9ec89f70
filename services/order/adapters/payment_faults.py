"""The payment simulator's fault switch: a small JSON file every order process reads.

``shopstream fault payment hang|fail|slow [--for S]`` (and the lab, and the tests) write it;
``shopstream fault payment off`` removes it. Each process re-reads it at most every
``REFRESH_SECONDS``, so a flip reaches every instance and consumer within that time, without a
restart and without an endpoint on the order service.

- ``hang``: the provider takes the request (and decides it) but never answers;
- ``fail``: the provider answers with an error at once;
- ``slow``: every answer comes ``delay_ms`` later than usual.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Mode = Literal["off", "hang", "fail", "slow"]
MODES: tuple[Mode, ...] = ("off", "hang", "fail", "slow")
REFRESH_SECONDS = 0.25


@dataclass(frozen=True)
class Fault:
    mode: Mode = "off"
    until: float | None = None  # wall-clock seconds; None: until switched off
    delay_ms: float = 0.0

    def active(self, now: float) -> Mode:
        if self.until is not None and now >= self.until:
            return "off"
        return self.mode


def write(path: Path, mode: Mode, seconds: float | None = None, delay_ms: float = 1500.0) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}")
    if mode == "off":
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    until = time.time() + seconds if seconds else None
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"mode": mode, "until": until, "delay_ms": delay_ms}))
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def read(path: Path) -> Fault:
    try:
        raw = json.loads(path.read_text())
        mode = raw.get("mode", "off")
        return Fault(
            mode if mode in MODES else "off", raw.get("until"), float(raw.get("delay_ms", 0))
        )
    except (FileNotFoundError, ValueError, TypeError, AttributeError):
        return Fault()


class FaultSwitch:
    """The current fault, read from ``path`` at most every ``REFRESH_SECONDS``."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fault = Fault()
        self._read_at = float("-inf")

    def current(self) -> Fault:
        if self.path is None:
            return self._fault
        now = time.monotonic()
        if now - self._read_at >= REFRESH_SECONDS:
            self._fault = read(self.path)
            self._read_at = now
        return self._fault

    def mode(self) -> Mode:
        return self.current().active(time.time())
