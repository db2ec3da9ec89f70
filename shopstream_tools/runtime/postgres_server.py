"""What every PostgreSQL server of the private cluster shares, the single one and the HA profile's
pair alike: its settings, its client authentication and where the server's binaries are."""

from __future__ import annotations

from pathlib import Path

SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "400",
    "shared_buffers": "256MB",
    "work_mem": "8MB",
    "max_wal_size": "2GB",
    "checkpoint_timeout": "15min",
    # After a checkpoint, the first change to each page logs the whole page; with UUID keys
    # nearly every insert touches another index page, so full pages were most of the WAL's bytes
    # (perf-check: 2.7 per order, ~22 of 35 KB). lz4 compresses them for little CPU.
    "wal_compression": "lz4",
    "log_min_duration_statement": "1000",
    "log_line_prefix": "'%m [%p] %d '",
    "password_encryption": "'scram-sha-256'",
}
# Passwords on every path in: no `trust`, no `peer`, loopback included (issue 12).
HBA = """# shopstream private cluster: a SCRAM password on every connection (shopstream_tools/runtime/postgres.py)
local   all all                scram-sha-256
host    all all 127.0.0.1/32   scram-sha-256
host    all all ::1/128        scram-sha-256
"""


def bin_dir() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=_major)
    if not candidates:
        raise RuntimeError("PostgreSQL server not found: run scripts/bootstrap.sh")
    return candidates[-1].parent


def _major(path: Path) -> int:
    try:
        return int(path.parent.parent.name)
    except ValueError:
        return 0
