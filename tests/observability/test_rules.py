"""Prometheus' recording and alerting rules: valid, and their unit tests pass (promtool)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from shopstream_tools.runtime import prometheus

RULE_FILES = sorted(prometheus.RULES_DIR.glob("*.yml"))
RULE_TESTS = sorted((prometheus.PROMETHEUS_HOME / "tests").glob("*.yml"))


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [prometheus.promtool(), *args], capture_output=True, text=True, timeout=120
    )


def test_rule_files_are_valid() -> None:
    assert RULE_FILES, "no rule files"
    result = promtool("check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("rule_test", RULE_TESTS, ids=lambda p: p.name)
def test_rule_unit_tests_pass(rule_test: Path) -> None:
    result = promtool("test", "rules", str(rule_test))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_test_that_fires_it_and_one_that_does_not() -> None:
    alerts = {
        rule["alert"]
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert alerts, "no alerting rules"
    assert alerts <= fired, f"alerts no test fires: {sorted(alerts - fired)}"
    assert alerts <= quiet, f"alerts no test keeps quiet: {sorted(alerts - quiet)}"


def test_a_broken_expectation_fails(tmp_path: Path) -> None:
    """The harness can fail: the same tests with one expectation changed must not pass."""
    source = RULE_TESTS[0]
    broken = yaml.safe_load(source.read_text())
    broken["rule_files"] = [str((source.parent / f).resolve()) for f in broken["rule_files"]]
    for case in broken["tests"]:
        for check in case.get("alert_rule_test", []):
            if check.get("exp_alerts"):
                check["exp_alerts"] = []
    path = tmp_path / "broken_test.yml"
    path.write_text(yaml.safe_dump(broken))
    result = promtool("test", "rules", str(path))
    assert result.returncode != 0, result.stdout


def test_generated_config_is_valid(tmp_path: Path) -> None:
    """The configuration `up` writes passes `promtool check config` (rules included)."""
    from shopstream.config import Settings

    settings = Settings(data_dir=str(tmp_path))
    path = prometheus.write_config(settings)
    result = promtool("check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {p.stem for p in prometheus.targets_dir(settings).glob("*.json")}
    assert {"gateway", "postgres", "node", "prometheus", "product", "product-relay"} <= jobs
