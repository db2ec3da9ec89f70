"""JMeter's results file read as the lab's step summary."""

from __future__ import annotations

from pathlib import Path

from shopstream_tools.lab.jmeter import summarize_csv

HEADER = "timeStamp,elapsed,label,responseCode,responseMessage,threadName,dataType,success,failureMessage,bytes,sentBytes,grpThreads,allThreads,URL,Latency,IdleTime,Connect\n"


def row(elapsed: int, label: str, code: int, ok: bool) -> str:
    return f"1796466658024,{elapsed},{label},{code},OK,shoppers 1-1,text,{str(ok).lower()},,1,1,1,1,http://x/,1,0,0\n"


def test_summary_leaves_out_discovery_and_counts_failures(tmp_path: Path) -> None:
    rows = [row(500, "discover: /products?in_stock", 200, True)]
    rows += [row(10, "/products/{id}", 200, True) for _ in range(98)]
    rows += [row(1000, "/orders (async)", 503, False), row(1000, "/orders (async)", 409, True)]
    path = tmp_path / "PT-01.csv"
    path.write_text(HEADER + "".join(rows))
    found = summarize_csv(path, seconds=10)
    assert found["requests"] == 100 and found["failures"] == 1 and found["rate"] == 10.0
    assert 9.9 <= found["p50_ms"] <= 10.1
    assert 990 <= found["p99_ms"] <= 1010
