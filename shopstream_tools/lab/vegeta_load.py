"""vegeta (open loop, constant rate), run as a child process with its own CPU measured: every
request is scheduled at start + seq/rate whatever happens to the earlier ones; its per-request
results are read back and each latency is counted from the request's *scheduled* time
(``hdr.corrected_latency_ns``), so a generator that fell behind cannot hide a stall (no
coordinated omission). Ctrl-C asks it to stop (SIGINT) and what it measured is kept."""

from __future__ import annotations

import base64
import csv
import json
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shopstream_tools.lab.hdr import Latencies, corrected_latency_ns
from shopstream_tools.lab.load import (
    BUSINESS_STATUSES,
    VEGETA,
    VEGETA_BEHIND_RATIO,
    Child,
    Progress,
    loadgen_record,
)
from shopstream_tools.lab.step_result import timeline, totals


# --- vegeta --------------------------------------------------------------------------------------
def vegeta_target(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> str:
    """One target line in vegeta's JSON format."""
    target: dict[str, Any] = {"method": method, "url": url}
    if body is not None:
        target["body"] = base64.b64encode(body).decode()
    if headers:
        target["header"] = {k: [v] for k, v in headers.items()}
    return json.dumps(target, separators=(",", ":"))


def write_targets(path: Path, lines: Iterable[str]) -> int:
    count = 0
    with path.open("w") as fh:
        for line in lines:
            fh.write(line + "\n")
            count += 1
    return count


@dataclass
class VegetaHit:
    seq: int
    sent_ns: int
    latency_ns: int
    status: int
    error: str


def parse_vegeta_csv(lines: Iterable[str]) -> list[VegetaHit]:
    """``vegeta encode --to csv``: timestamp, code, latency, bytes out, bytes in, error, body,
    attack, seq, method, url, headers."""
    hits = []
    for row in csv.reader(lines):
        if len(row) < 9:
            continue
        hits.append(VegetaHit(int(row[8]), int(row[0]), int(row[2]), int(row[1]), row[5]))
    return hits


def summarize_vegeta(hits: Sequence[VegetaHit], rate: float, seconds: float) -> dict[str, Any]:
    """Open-loop figures: latencies from the schedule (HDR), how far the sender fell behind, and
    a per-second timeline (by scheduled second)."""
    if not hits:
        return {"tool": "vegeta", "requests": 0, "failures": 0, "rate": 0.0, "latency_ms": {}}
    start = min(h.sent_ns - round(h.seq * 1e9 / rate) for h in hits)
    corrected, raw, lateness = Latencies(), Latencies(), Latencies()
    statuses: Counter[str] = Counter()
    failures = 0
    per_second: dict[int, list[float]] = {}
    fails_per_second: Counter[int] = Counter()
    for h in hits:
        value = corrected_latency_ns(h.sent_ns, h.latency_ns, start, h.seq, rate)
        corrected.record_ms(value / 1e6)
        raw.record_ms(h.latency_ns / 1e6)
        lateness.record_ms(max(0, value - h.latency_ns) / 1e6 + 0.001)
        statuses[str(h.status)] += 1
        # vegeta reports every non-2xx as an error; 402 and 409 are business outcomes here
        bad = h.status == 0 or (h.status >= 400 and h.status not in BUSINESS_STATUSES)
        failures += bad
        second = int(h.seq / rate)
        per_second.setdefault(second, []).append(value / 1e6)
        fails_per_second[second] += bad
    last_sent = max(h.sent_ns for h in hits)
    sent_seconds = max((last_sent - start) / 1e9, 1e-9)
    return {
        **totals("vegeta", seconds, len(hits), failures, corrected),
        "target_rate": rate,
        "sent_rate": len(hits) / sent_seconds if len(hits) > 1 else 0.0,
        "statuses": dict(statuses),
        "uncorrected_latency_ms": raw.summary(),
        "send_lateness_ms": lateness.summary(),
        "hdr": corrected.encode(),
        "timeline": timeline(per_second, fails_per_second),
    }


def run_vegeta(
    targets: Path,
    rate: float,
    seconds: float,
    workdir: Path,
    name: str,
    stop: threading.Event,
    on_start: Callable[[int], None],
    progress: Progress,
    timeout_seconds: float = 30.0,
    metrics_port: int = 0,
) -> dict[str, Any]:
    if not VEGETA.exists():
        raise RuntimeError(f"{VEGETA} is missing: run scripts/bootstrap.sh")
    results = workdir / f"{name}.vegeta.bin"
    argv = [
        str(VEGETA), "attack",
        f"-targets={targets}", "-format=json", "-lazy",
        f"-rate={rate:g}/s", f"-duration={seconds:g}s",
        f"-timeout={timeout_seconds:g}s",
        f"-output={results}",
        "-keepalive=true",
    ]  # fmt: skip
    if metrics_port:
        argv.append(f"-prometheus-addr=127.0.0.1:{metrics_port}")
    child = Child(argv, workdir / f"{name}.vegeta.log", {}, signal.SIGINT)
    last = [0.0]

    def tick(elapsed: float) -> None:
        if elapsed - last[0] >= 2.0:
            last[0] = elapsed
            progress({"elapsed": elapsed, "rate": rate})

    done = child.run(stop, on_start, tick, deadline=seconds + timeout_seconds + 10)
    encoded = subprocess.run(
        [str(VEGETA), "encode", "--to", "csv", str(results)],
        capture_output=True,
        text=True,
        check=False,
    )
    hits = parse_vegeta_csv(encoded.stdout.splitlines())
    ran = min(seconds, done.wall_seconds)
    summary = summarize_vegeta(hits, rate, ran)
    behind = bool(hits) and summary["sent_rate"] < VEGETA_BEHIND_RATIO * rate and not done.interrupted
    why = (
        f"vegeta sent {summary['sent_rate']:.0f}/s of the {rate:.0f}/s scheduled" if behind else ""
    )
    results.unlink(missing_ok=True)
    return summary | {"loadgen": loadgen_record("vegeta", done, behind, why)}
