"""Sampling profiles of the pipeline's Python processes with py-spy, while a perf step runs.

py-spy attaches from outside (no change to the processes) and samples their stacks; ``--idle``
is off, so a sample is CPU being spent. Each process gets a collapsed-stack file (``name.txt``:
one ``frame;frame;frame count`` line per stack, readable by speedscope or inferno) and the summary
lists, per process, the functions where the CPU is spent (self) and the frames it passes through
(inclusive), as shares of that process's samples.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.perf import jvm_profile

PY_SPY = PROJECT_ROOT / ".venv" / "bin" / "py-spy"
# inferno (crates.io) draws the flame graphs: `cargo install inferno --root .tools`
INFERNO = PROJECT_ROOT / ".tools" / "bin" / "inferno-flamegraph"
RATE = 100  # samples per second: enough for shares of a few %, cheap for the sampled process
NOT_PYTHON = ("kafka", "postgres", "gateway", "prometheus", "zipkin")


@dataclass
class Recorder:
    folder: Path
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    recordings: dict[str, Path] = field(default_factory=dict)  # the brokers' flight recordings

    def finish(self, summary_to: Path) -> None:
        for child in self.children.values():
            child.wait(timeout=120)
        for name, recording in self.recordings.items():
            if _written(recording):
                (self.folder / f"{name}.txt").write_text(jvm_profile.collapsed(recording))
        summary_to.mkdir(parents=True, exist_ok=True)
        lines = []
        for name in sorted([*self.children, *self.recordings]):
            raw = self.folder / f"{name}.txt"
            if raw.exists():
                shutil.copy(raw, summary_to / raw.name)
                lines.append(summarize(name, raw.read_text()))
                flame_graph(raw, summary_to / f"{name}.svg", name)
        (summary_to / "summary.md").write_text("\n".join(lines))


def start(settings: Settings, groups: Mapping[str, list[int]], folder: Path | None,
          seconds: float) -> Recorder | None:  # fmt: skip
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(folder)
    for name, pids in groups.items():
        if name.startswith("kafka") and pids:
            recording = folder / f"{name}.jfr"
            if jvm_profile.start(pids[0], seconds, recording):
                recorder.recordings[name] = recording
            continue
        if name.startswith(NOT_PYTHON) or not pids:
            continue
        argv = [str(PY_SPY), "record", "--pid", str(pids[0]), "--subprocesses", "--nonblocking",
                "--rate", str(RATE), "--duration", str(int(seconds)), "--format", "raw",
                "--output", str(folder / f"{name}.txt")]  # fmt: skip
        recorder.children[name] = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    return recorder


def _written(recording: Path, wait: float = 30.0) -> bool:
    # JFR writes the file when its duration ends, which can be a moment after py-spy's
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if recording.exists() and recording.stat().st_size > 0:
            time.sleep(0.5)
            return True
        time.sleep(0.5)
    return False


def flame_graph(stacks: Path, svg: Path, title: str) -> None:
    if not INFERNO.exists():
        return
    with stacks.open("rb") as source, svg.open("wb") as sink:
        subprocess.run([str(INFERNO), "--title", title, "--minwidth", "0.5"],
                       stdin=source, stdout=sink, stderr=subprocess.DEVNULL, check=False)  # fmt: skip


def parse(text: str) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def short(frame: str) -> str:
    """``fn (path/to/module.py:12)`` -> ``fn (module.py)``: the line moves with every edit."""
    name, _, where = frame.partition(" (")
    module = where.rsplit("/", 1)[-1].split(":", 1)[0].rstrip(")")
    return f"{name} ({module})" if module else name


def summarize(name: str, text: str, top: int = 12) -> str:
    stacks = parse(text)
    total = sum(stacks.values())
    if not total:
        return f"## {name}\n\nno samples (idle)\n"
    own: Counter[str] = Counter()
    through: Counter[str] = Counter()
    for stack, n in stacks.items():
        frames = [short(f) for f in stack if not f.startswith("process ")]
        if frames:
            own[frames[-1]] += n
        for frame in set(frames):
            through[frame] += n
    out = [f"## {name} ({total} samples)", "", "| self | function | | inclusive | frame |",
           "|---:|---|---|---:|---|"]  # fmt: skip
    for (fn, n), (fr, m) in zip(
        own.most_common(top), _inclusive(through, total, top), strict=False
    ):
        out.append(f"| {100 * n / total:.1f}% | `{fn}` | | {100 * m / total:.1f}% | `{fr}` |")
    return "\n".join(out) + "\n"


def _inclusive(through: Counter[str], total: int, top: int) -> list[tuple[str, int]]:
    # the frames every stack passes (thread bootstrap, the event loop's run) say nothing
    return [(f, n) for f, n in through.most_common(top * 3) if n < 0.97 * total][:top]
