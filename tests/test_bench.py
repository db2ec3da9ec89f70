"""The pure parts of `shopstream bench`: reading wrk, pgbench and /proc, and the arithmetic on top.

No test here measures speed; the wrk tests only check that the Lua scripts and the parser agree.
"""

from __future__ import annotations

import http.server
import re
import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shopstream_tools import bench

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:8080
  2 threads and 64 connections
  Latency Distribution
     50%   18.17ms
  30000 requests in 10.00s, 17.00MB read
Requests/sec:   3000.00
BENCH_JSON {"requests":30000,"duration_us":10000000,"bytes":17825792,\
"errors":{"connect":0,"read":1,"write":0,"status":7,"timeout":2},\
"latency_us":{"min":1206,"mean":19729.6,"stdev":11321.9,"max":123741,\
"p50":18173,"p90":34250,"p99":60851,"p99.9":96676}}
"""

PGBENCH_OUTPUT = """\
pgbench (15.18 (Debian 15.18-0+deb12u1))
transaction type: multiple scripts
scaling factor: 1
query mode: prepared
number of clients: 16
number of threads: 2
maximum number of tries: 1
duration: 10 s
number of transactions actually processed: 497450
number of failed transactions: 3 (0.001%)
latency average = 0.321 ms
initial connection time = 21.004 ms
tps = 49745.123456 (without initial connection time)
SQL script 1: pgbench-search-00.sql
"""


# --- wrk and pgbench output -----------------------------------------------------------------
def test_wrk_json_line_gives_rate_errors_and_latency_in_ms() -> None:
    result = bench.parse_wrk(WRK_OUTPUT)
    assert result.requests == 30000
    assert result.rate == pytest.approx(3000.0)
    assert result.errors == {
        "wrk_connect": 0,
        "wrk_read": 1,
        "wrk_write": 0,
        "wrk_status": 7,
        "wrk_timeout": 2,
    }
    assert result.error_count == 10
    assert result.latency_ms["p50"] == pytest.approx(18.173)
    assert result.latency_ms["p99.9"] == pytest.approx(96.676)


def test_wrk_output_without_the_json_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="BENCH_JSON"):
        bench.parse_wrk("PANIC: unprotected error in call to Lua API\n")


def test_pgbench_summary() -> None:
    assert bench.parse_pgbench(PGBENCH_OUTPUT) == (pytest.approx(49745.123456), 497450, 3)


def test_pgbench_summary_of_pgbench_before_15_counts_no_failures() -> None:
    old = re.sub(r"^number of failed.*\n", "", PGBENCH_OUTPUT, flags=re.MULTILINE)
    assert bench.parse_pgbench(old)[2] == 0


def test_pgbench_that_did_not_run_is_an_error() -> None:
    with pytest.raises(ValueError, match="tps"):
        bench.parse_pgbench('pgbench: error: connection to server failed: FATAL: role "x"\n')


def test_pgbench_transaction_log_latencies_and_failures() -> None:
    lines = [
        "0 1 250 0 1795606295 143000",
        "1 1 1500 3 1795606295 144000",
        "2 7 failed 0 1795606296 1000",
        "",
        "garbage",
    ]
    latencies, failed = bench.parse_pgbench_log(lines)
    assert latencies == [0.25, 1.5]
    assert failed == 1


def test_percentile_is_nearest_rank() -> None:
    values = list(range(100, 0, -1))  # unsorted on purpose
    assert bench.percentile(values, 50) == 50
    assert bench.percentile(values, 99) == 99
    assert bench.percentile(values, 99.9) == 100
    assert bench.percentile(values, 0) == 1
    assert bench.percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        bench.percentile([], 50)


def test_latency_summary() -> None:
    summary = bench.latency_summary([1.0, 2.0, 3.0, 4.0])
    assert summary["mean"] == 2.5 and summary["p50"] == 2.0 and summary["max"] == 4.0
    assert bench.latency_summary([]) == {}


# --- gateway access log and service metrics -----------------------------------------------------
def _log_line(status: int, agent: str = "shopstream-bench") -> str:
    return (
        f'{{"time":"2026-11-25T11:31:35+00:00","uri":"/products/x","status":{status},'
        f'"bytes":0,"user_agent":"{agent}"}}'
    )


def test_gateway_statuses_count_only_the_benchmarks_requests() -> None:
    lines = [
        _log_line(200),
        _log_line(200),
        _log_line(429),
        _log_line(499),
        _log_line(500, agent="curl/8.0"),
        _log_line(200, agent="shopstream-bench-check"),  # the pre-flight check's own agent
        '{"status":200,"user_agent":"shopstream-bench", truncated',
    ]
    statuses = bench.gateway_statuses(lines)
    assert statuses == Counter({200: 3, 429: 1, 499: 1, 0: 1})


def test_non_2xx_leaves_out_connections_cut_at_the_end() -> None:
    assert bench.non_2xx(Counter({200: 10, 204: 1, 499: 5})) == 0
    assert bench.non_2xx(Counter({200: 10, 301: 1, 429: 2, 502: 1, 0: 1})) == 5


def test_cache_lookups_from_prometheus_text() -> None:
    text = (
        "# HELP product_cache_lookups_total Product cache lookups\n"
        "# TYPE product_cache_lookups_total counter\n"
        'product_cache_lookups_total{result="miss"} 9763.0\n'
        'product_cache_lookups_total{result="hit"} 1.168e+03\n'
        'product_cache_lookups_created{result="hit"} 1.79e+09\n'
    )
    assert bench.parse_cache_lookups(text) == (1168.0, 9763.0)
    assert bench.parse_cache_lookups("") == (0.0, 0.0)


# --- /proc ---------------------------------------------------------------------------------------
def _stat(
    pid: int, comm: str, ppid: int, utime: int, stime: int, cutime: int = 0, cstime: int = 0
) -> str:
    # fields 3..17 of proc(5): state ppid pgrp session tty tpgid flags minflt cminflt majflt
    # cmajflt utime stime cutime cstime, then the rest
    return (
        f"{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194560 100 0 0 0 "
        f"{utime} {stime} {cutime} {cstime} 20 0 3 0 1234 1000000 500 18446744073709551615"
    )


def test_proc_stat_with_spaces_and_parentheses_in_the_name() -> None:
    entry = bench.parse_proc_stat(_stat(4242, "nginx: worker (x) 1", 4241, 1500, 250, 7, 3))
    assert entry.pid == 4242 and entry.ppid == 4241 and entry.comm == "nginx: worker (x) 1"
    assert (entry.utime, entry.stime, entry.cutime, entry.cstime) == (1500, 250, 7, 3)
    assert entry.own == 1750
    assert entry.total == 1760


def test_proc_stat_that_is_cut_short_is_rejected() -> None:
    with pytest.raises(ValueError):
        bench.parse_proc_stat("12 (wrk) S 1 12")


def test_proc_stat_of_this_very_process_parses() -> None:
    entry = bench.parse_proc_stat(Path("/proc/self/stat").read_text())
    assert entry.ppid > 0 and entry.own >= 0


def _snapshot(*lines: str) -> dict[int, bench.ProcTimes]:
    return {e.pid: e for e in map(bench.parse_proc_stat, lines)}


def test_group_ticks_follow_the_tree_and_keep_reaped_children() -> None:
    before = _snapshot(
        _stat(100, "postgres", 1, 10, 5),
        _stat(101, "postgres", 100, 40, 10),  # a backend that exits before the next snapshot
        _stat(102, "postgres", 100, 5, 5),
        _stat(200, "nginx", 1, 1000, 1000),  # not in the tree
    )
    after = _snapshot(
        # the postmaster reaped 101, which had used 90 + 30 ticks by the time it exited
        _stat(100, "postgres", 1, 12, 6, cutime=90, cstime=30),
        _stat(102, "postgres", 100, 25, 15),
        _stat(103, "postgres", 100, 7, 1),  # a backend born in between
        _stat(200, "nginx", 1, 5000, 5000),
    )
    assert bench.tree(before, [100]) == {100, 101, 102}
    assert bench.tree(after, [100, 999]) == {100, 102, 103}
    used = bench.group_ticks(after, [100]) - bench.group_ticks(before, [100])
    # postmaster 3 + backend 101's last 70 + backend 102's 30 + backend 103's 8
    assert used == 3 + 70 + 30 + 8
    assert bench.group_ticks(after, []) == 0


def test_cores_from_ticks() -> None:
    assert bench.cores(150, 1.5, 100) == pytest.approx(1.0)
    assert bench.cores(50, 10.0, 100) == pytest.approx(0.05)
    assert bench.cores(50, 0, 100) == 0.0


def test_machine_busy_leaves_out_idle_iowait_and_guest() -> None:
    text = "cpu  100 5 50 800 40 3 2 0 30 0\ncpu0 50 2 25 400 20 1 1 0 15 0\n"
    busy, total = bench.parse_cpu_line(text)
    assert total == 100 + 5 + 50 + 800 + 40 + 3 + 2 + 0
    assert busy == total - 800 - 40
    with pytest.raises(ValueError):
        bench.parse_cpu_line("cpu0 1 2 3 4\n")


def test_load_generator_cpu_is_read_from_proc_before_reaping(tmp_path: Path) -> None:
    # the child burns at least 0.3 s of CPU however busy the machine is
    burn = "import time\nwhile time.process_time() < 0.3:\n    pass\nprint('burnt')\n"
    out = tmp_path / "out.txt"
    result = bench.run_measured([sys.executable, "-c", burn], out)
    assert result["exit_code"] == 0
    assert out.read_text() == "burnt\n"
    assert result["cpu_seconds"] >= 0.25
    assert result["cpu_seconds"] == pytest.approx(result["cpu_seconds_rusage"], abs=0.05)


def test_load_generator_exit_code_is_kept(tmp_path: Path) -> None:
    result = bench.run_measured([sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "o")
    assert result["exit_code"] == 3


# --- medians and ratios ----------------------------------------------------------------------------
def _run(kind: str, n: int, rate: float, errors: int = 0, p99: float = 1.0) -> dict[str, Any]:
    return {
        "kind": kind,
        "round": n,
        "rate": rate,
        "latency_ms": {"p50": rate / 1000, "p99": p99},
        "error_count": errors,
        "load_generator": {"cores": 0.1 * n},
        "cpu": {
            "groups": {
                "product": {
                    "cores": 0.9,
                    "busiest_process": f"py[{n}]",
                    "busiest_process_peak_cores": 0.9 + n / 100,
                }
            },
            "machine_busy_cores": 1.8,
            "driver_cores": 0.01,
        },
    }


def test_ratios_pair_each_target_with_the_ceiling_of_its_own_round() -> None:
    # The machine slows down in round 2: both the target and nginx drop by half.
    runs = [
        _run(bench.FIXED, 1, 100_000),
        _run(bench.BY_ID, 1, 4_000),
        _run(bench.PG_BY_ID, 1, 40_000),
        _run(bench.FIXED, 2, 50_000),
        _run(bench.BY_ID, 2, 2_000),
        _run(bench.PG_BY_ID, 2, 20_000),
        _run(bench.FIXED, 3, 90_000),
        _run(bench.BY_ID, 3, 3_600, errors=2),
        _run(bench.PG_BY_ID, 3, 36_000),
    ]
    assert bench.per_round_ratios(runs, bench.BY_ID, bench.FIXED) == [
        pytest.approx(0.04),
        pytest.approx(0.04),
        pytest.approx(0.04),
    ]
    summary = bench.summarize(runs)
    row = summary[bench.BY_ID]
    assert row["rate"] == 3_600  # the median, not the mean (3,200)
    assert row["vs_nginx"] == pytest.approx(0.04)
    assert row["vs_pgbench"] == pytest.approx(0.1)
    assert row["errors"] == 2
    assert row["load_generator_cores"] == pytest.approx(0.2)
    assert row["busiest"]["product"] == (pytest.approx(0.93), "py[3]")
    # machine 1.8 - product 0.9 - load generator 0.1 * round - driver 0.01, median over rounds
    assert row["other_cores"] == pytest.approx(0.69)
    assert summary[bench.FIXED]["vs_nginx"] is None
    assert bench.SEARCH not in summary


def test_median_of_ratios_differs_from_ratio_of_medians_under_drift() -> None:
    runs = [
        _run(bench.FIXED, 1, 100),
        _run(bench.SEARCH, 1, 10),
        _run(bench.FIXED, 2, 200),
        _run(bench.SEARCH, 2, 40),
        _run(bench.FIXED, 3, 300),
        _run(bench.SEARCH, 3, 15),
    ]
    # per round: 0.1, 0.2, 0.05 -> median 0.1; the ratio of medians would be 15 / 200 = 0.075
    assert bench.summarize(runs)[bench.SEARCH]["vs_nginx"] == pytest.approx(0.1)


def test_a_missing_ceiling_gives_no_ratio() -> None:
    runs = [_run(bench.SEARCH, 1, 10), _run(bench.FIXED, 1, 0)]
    assert bench.summarize(runs)[bench.SEARCH]["vs_nginx"] is None
    assert bench.summarize(runs)[bench.SEARCH]["vs_pgbench"] is None


def test_rounds_alternate_direction() -> None:
    assert bench.round_order(1) == bench.ROUND
    assert bench.round_order(2) == tuple(reversed(bench.ROUND))
    assert bench.round_order(3) == bench.ROUND
    assert bench.ROUND[0] == bench.FIXED and set(bench.ROUND) == set(bench.LABELS)


def test_run_id_is_utc_time_and_revision() -> None:
    from datetime import UTC, datetime

    when = datetime(2026, 11, 25, 11, 34, 52, tzinfo=UTC)
    assert bench.run_id(when, "2f96844") == "20261125T113452Z-2f96844"


# --- the SQL pgbench runs ----------------------------------------------------------------------------
def test_pgbench_statement_binds_and_quotes() -> None:
    sql = "SELECT * FROM t WHERE a = $1 AND b >= $2 AND c = $10 LIMIT $3"
    args = ["Home & O'Brien", 5, 21, 0, 0, 0, 0, 0, 0, "x"]
    out = bench.pgbench_statement(sql, args, {2: ":lo", 3: ":page"})
    assert out == "SELECT * FROM t WHERE a = 'Home & O''Brien' AND b >= :lo AND c = 'x' LIMIT :page"
    with pytest.raises(ValueError):
        bench.pgbench_statement("SELECT $1", [True], {})


def test_search_script_runs_the_services_sql_with_drawn_parameters() -> None:
    from services.product.adapters.repository import search_sql
    from services.product.domain.search import SearchQuery

    window = bench.PriceWindow("Home & Kitchen", 9, 106, 5, 39)
    script = bench.search_script(window)
    assert "\\set min_price random(9, 106)" in script
    assert "\\set max_price :min_price + random(5, 39)" in script
    statement = script.strip().splitlines()[-1]
    assert "$" not in statement
    # Put the drawn values back in: it is then exactly the service's query.
    sql, args = search_sql(
        SearchQuery(
            category="Home & Kitchen",
            min_price_cents=1200,
            max_price_cents=3400,
            in_stock=True,
            sort="price_asc",
            limit=20,
        )
    )
    expected = bench.pgbench_statement(sql, args, {}) + ";"
    filled = (
        statement.replace(":min_cents", "1200").replace(":max_cents", "3400").replace(":page", "21")
    )
    assert filled == expected


def test_by_id_script_reads_the_services_columns_by_primary_key() -> None:
    from services.product.adapters.repository import COLUMNS

    script = bench.by_id_script()
    assert "\\set n random(1, :products)" in script
    assert f"SELECT {COLUMNS} FROM products WHERE id = (SELECT id FROM bench.product_ids" in script


def test_price_windows_cover_every_category_within_its_prices() -> None:
    from services.product.entrypoints.seed import CATALOG

    windows = bench.price_windows()
    assert [w.category for w in windows] == list(CATALOG)
    for w in windows:
        low, high = CATALOG[w.category][2]
        assert low // 100 <= w.min_low <= w.min_high < high // 100
        assert 0 < w.width_low <= w.width_high


def test_windows_file_lines_match_the_lua_pattern() -> None:
    text = bench.windows_file_text([bench.PriceWindow("Sports & Outdoors", 8, 155, 5, 59)])
    assert text == "Sports%20%26%20Outdoors 8 155 5 59\n"
    lua_pattern = re.compile(r"^(\S+) (\d+) (\d+) (\d+) (\d+)$")  # product_search.lua's
    assert all(lua_pattern.match(line) for line in text.splitlines())


# --- the wrk scripts and the parser agree --------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    status = 200
    seen: list[tuple[str, str, str]] = []

    def do_GET(self) -> None:
        self.seen.append(
            (self.path, self.headers.get("X-Client-Id", ""), self.headers.get("User-Agent", ""))
        )
        body = b'{"ok":true}'
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"seen": [], "status": 200})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _wrk(url: str, script: str, *args: str) -> bench.LoadResult:
    wrk = shutil.which("wrk")
    if wrk is None:
        pytest.skip("wrk is not installed (scripts/bootstrap.sh installs it)")
    argv = [wrk, "-t1", "-c2", "-d1s", "--latency", "-s", str(bench.WRK_DIR / script), url]
    done = subprocess.run(
        [*argv, "--", *args] if args else argv,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return bench.parse_wrk(done.stdout)


def test_wrk_by_id_script_draws_ids_from_the_file_and_sets_client_ids(
    server: tuple[str, type[_Handler]], tmp_path: Path
) -> None:
    url, handler = server
    ids = tmp_path / "ids.txt"
    ids.write_text("aaa\nbbb\nccc\n")
    result = _wrk(url, "product_by_id.lua", str(ids))
    assert result.requests > 0 and result.error_count == 0
    paths = {p for p, _, _ in handler.seen}
    assert paths <= {"/products/aaa", "/products/bbb", "/products/ccc"} and len(paths) == 3
    clients = {c for _, c, _ in handler.seen}
    assert len(clients) > 10 and all(re.fullmatch(r"bench-\d+", c) for c in clients)
    assert {a for _, _, a in handler.seen} == {bench.USER_AGENT}


def test_wrk_search_script_stays_inside_the_windows(
    server: tuple[str, type[_Handler]], tmp_path: Path
) -> None:
    url, handler = server
    windows = tmp_path / "windows.txt"
    windows.write_text(bench.windows_file_text([bench.PriceWindow("Home & Kitchen", 9, 12, 5, 6)]))
    _wrk(url, "product_search.lua", str(windows))
    pattern = re.compile(
        r"^/products\?category=Home%20%26%20Kitchen&min_price=(\d+)&max_price=(\d+)"
        r"&in_stock=true&sort=price_asc&limit=20$"
    )
    for path, _, _ in handler.seen:
        match = pattern.match(path)
        assert match, path
        low, high = int(match.group(1)), int(match.group(2))
        assert 9 <= low <= 12 and 5 <= high - low <= 6


def test_wrk_counts_error_statuses(server: tuple[str, type[_Handler]]) -> None:
    url, handler = server
    handler.status = 503
    result = _wrk(url, "fixed.lua")
    assert result.requests > 0
    assert result.errors["wrk_status"] == result.requests


def test_zipf_draws_concentrate_on_a_hot_set_like_zipfs_law() -> None:
    from collections import Counter

    from shopstream_tools.bench.products import zipf_draws

    ids = [f"p{n}" for n in range(10_000)]
    drawn = zipf_draws(ids, 100_000)
    assert drawn == zipf_draws(ids, 100_000), "the same file every run"
    counts = Counter(drawn).most_common()
    harmonic = sum(1 / r for r in range(1, len(ids) + 1))  # ~9.79: rank 1 gets 1/H of the draws
    assert abs(counts[0][1] / len(drawn) - 1 / harmonic) < 0.01
    assert abs(counts[1][1] / counts[0][1] - 0.5) < 0.05  # rank 2 half as often as rank 1
    top_100 = sum(n for _, n in counts[:100]) / len(drawn)
    assert 0.45 < top_100 < 0.60  # H(100)/H(10000) = 0.53: a hot set, not uniform (0.01)


def test_no_process_is_counted_in_two_cpu_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """The supervisor manages PostgreSQL and the gateway too: counted in "background" as well as in
    their own columns, "other" came out negative by their CPU."""
    from shopstream_tools.bench import platform_probes
    from shopstream_tools.runtime import gateway, kafka_broker, postgres, processes

    pids = {"gateway": 10, "postgres": 11, "kafka": 12, "product-1": 13, "product-relay": 14,
            "order-1": 15}  # fmt: skip
    monkeypatch.setattr(gateway, "pid", lambda s: pids["gateway"])
    monkeypatch.setattr(postgres, "pid", lambda s: pids["postgres"])
    monkeypatch.setattr(kafka_broker, "pid", lambda s: pids["kafka"])
    monkeypatch.setattr(processes, "read_pid", lambda s, name: pids.get(name))
    monkeypatch.setattr(processes, "managed_names", lambda s: sorted(pids))
    monkeypatch.setattr(processes, "alive", lambda pid: True)
    monkeypatch.setattr(platform_probes, "product_ports", lambda s: [8081])
    from shopstream.config import Settings

    groups = platform_probes.process_groups(Settings())
    assert groups == {"gateway": [10], "product": [13], "postgres": [11], "kafka": [12],
                      "background": [15, 14]}  # fmt: skip
