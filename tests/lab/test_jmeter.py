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


# --- the lab's JMeter driver (shopstream_tools.lab.jmeter_load) -------------------------------------
def stamped(ms: int, elapsed: int, label: str, code: int, ok: bool) -> dict[str, str]:
    return {"timeStamp": str(ms), "elapsed": str(elapsed), "label": label, "responseCode": str(code), "success": str(ok).lower()}


def test_jtl_becomes_a_step_result_with_a_timeline() -> None:
    from shopstream_tools.lab.jmeter_load import summarize_jtl

    t0 = 1_796_466_658_000
    rows = [stamped(t0 - 900, 400, "discover: /products?in_stock", 200, True)]
    rows += [stamped(t0 + 10 * i, 20, "/products/{id}", 200, True) for i in range(50)]  # second 1
    rows += [stamped(t0 + 1000 + 10 * i, 40, "/orders (async)", 201, True) for i in range(29)]  # second 2
    rows += [stamped(t0 + 1500, 3000, "/orders (async)", 503, False)]
    found = summarize_jtl(rows, seconds=2.0)
    assert (found["tool"], found["requests"], found["failures"]) == ("jmeter", 80, 1)
    assert found["rate"] == 40.0 and found["ok_rate"] == 39.5
    assert found["statuses"] == {"200": 50, "201": 29, "503": 1}
    assert found["requests_by_name"] == {"/products/{id}": 50, "/orders (async)": 30}
    assert 19.9 <= found["latency_ms"]["p50"] <= 20.1
    assert [(e["t"], e["requests"], e["failures"]) for e in found["timeline"]] == [(1, 50, 0), (2, 30, 1)]
    assert summarize_jtl([], 5.0)["requests"] == 0


def test_the_warm_up_is_left_out() -> None:
    from shopstream_tools.lab.jmeter_load import after_warmup

    t0 = 1_796_466_658_000
    rows = [stamped(t0 - 500, 300, "discover: /products?in_stock", 200, True)]
    rows += [stamped(t0 + 1000 * s, 10, "/products/{id}", 200, True) for s in range(15)]
    kept = after_warmup(rows, 10)
    assert [int(r["timeStamp"]) - t0 for r in kept] == [1000 * s for s in range(10, 15)]
    assert after_warmup(rows[:1], 10) == []


def test_the_plan_is_run_non_gui_with_the_lab_s_properties(tmp_path: Path) -> None:
    from shopstream_tools.lab.jmeter_load import JMeterPlan

    plan = JMeterPlan("PT-02.jmx", "127.0.0.1", 38080, users=100, seconds=10.4, think_seconds=1.0,
                      spawn_rate=50, mode="sync", lab_data=tmp_path)  # fmt: skip
    argv = plan.argv(Path("/j/bin/ApacheJMeter-5.6.3.jar"), tmp_path / "r.jtl", tmp_path / "j.log")
    assert argv[:1] == ["java"] and argv[argv.index("-jar") + 1] == "/j/bin/ApacheJMeter-5.6.3.jar"
    assert "-n" in argv and argv[argv.index("-t") + 1].endswith("performance-tests/jmeter/PT-02.jmx")
    props = dict(a[2:].split("=", 1) for a in argv if a.startswith("-J"))
    assert props | {"lab_data": ""} == {"host": "127.0.0.1", "port": "38080", "users": "100", "rampup": "2", "duration": "23",
                                       "think": "1000", "mode": "sync", "lab_data": "",
                                       "jmeter.save.saveservice.output_format": "csv"}  # fmt: skip
    assert props["lab_data"] == str(tmp_path)


def test_lab_data_is_what_locust_s_users_draw_from(tmp_path: Path) -> None:
    import json
    import random
    from collections import Counter

    from shopstream_tools.lab.jmeter_load import SAMPLE, write_lab_data
    from shopstream_tools.lab.workload import Workload

    products = [f"p{i}" for i in range(1, 1001)]
    spec = tmp_path / "workload.json"
    spec.write_text(json.dumps({"windows": [["Home%20%26%20Garden", 5, 9, 2, 4]]}))
    workload = Workload(spec, products, ["o1", "o2"], [], 5, ["c1", "c2"], {"c1": "t1", "c2": "t2"})
    folder = write_lab_data(workload, tmp_path / "data", random.Random(7))
    drawn = Counter((folder / "products.txt").read_text().split())
    assert sum(drawn.values()) == SAMPLE
    # Zipf, s=1: the first product is drawn about twice as often as the second, ten times the tenth
    assert 1.6 < drawn["p1"] / drawn["p2"] < 2.5 and drawn["p1"] > 5 * drawn["p10"]
    search = (folder / "searches.txt").read_text().split()[0]
    assert search.startswith("category=Home%20%26%20Garden&min_price=") and search.endswith("&in_stock=true&sort=price_asc&limit=20")
    assert (folder / "customers.txt").read_text().split() == ["c1,t1", "c2,t2"]
    assert (folder / "order_products.txt").read_text().split() == ["o1", "o2"]


def test_a_missing_jmeter_says_how_to_install_it(tmp_path: Path) -> None:
    import json

    import pytest

    from shopstream_tools.lab.jmeter_load import NotInstalled, runtime_jar

    with pytest.raises(NotInstalled, match="bootstrap"):
        runtime_jar(tmp_path / "config.json")
    entry = {"jmeterDirectoryPath": str(tmp_path), "runtimeJarName": "ApacheJMeter-5.6.3.jar"}
    (tmp_path / "config.json").write_text(json.dumps({"configurations": [entry]}))
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "ApacheJMeter-5.6.3.jar").write_bytes(b"PK")
    assert runtime_jar(tmp_path / "config.json") == tmp_path / "bin" / "ApacheJMeter-5.6.3.jar"
