"""The ``plan`` profile is the seed's test plan as written, and a run can resume per test."""

from __future__ import annotations

import json
from pathlib import Path

from shopstream_tools.lab.profiles import PROFILES
from shopstream_tools.lab.results import measured


def test_plan_profile_has_the_seeds_users_and_durations() -> None:
    p = PROFILES["plan"]
    assert (p.pt01_users, p.pt01_seconds) == ((10, 50, 100, 500), 300)
    assert (p.pt02_users, p.pt02_seconds) == ((100, 500, 1000), 600)
    assert (p.pt03_users, p.pt03_instances, p.pt03_seconds) == (1000, (1, 2, 4, 8), 900)
    assert (p.pt04_users, p.pt04_partitions, p.pt04_seconds) == (500, (1, 3, 6, 12), 600)
    assert (p.pt05_base_users, p.pt05_peak_users, p.pt05_peak_seconds) == (50, 1000, 120)


def test_full_is_not_the_plan() -> None:
    assert PROFILES["full"].pt01_seconds < PROFILES["plan"].pt01_seconds
    assert PROFILES["full"].pt04_users == 0  # a constant order rate, not the plan's 500 users


def test_a_resumed_run_keeps_only_tests_measured_to_the_end(tmp_path: Path) -> None:
    def write(test: str, **result: object) -> None:
        (tmp_path / f"{test}.json").write_text(json.dumps({"test": test, **result}))

    write("PT-01", steps=[{"step": "users=10"}])
    write("PT-02", steps=[{"step": "sync users=100"}], interrupted=True)
    write("PT-03", steps=[{"step": "n=1"}], error="RuntimeError: boom")
    write("PT-04", steps=[])
    found = measured(tmp_path, ["PT-01", "PT-02", "PT-03", "PT-04", "PT-05"])
    assert list(found) == ["PT-01"]
    assert measured(tmp_path, ["PT-02", "PT-05"]) == {}
