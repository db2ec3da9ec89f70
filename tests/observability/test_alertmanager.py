"""Alertmanager: where the alerting rules' alerts go.

Unit tests render the configurations `up` writes and have the real tools (`amtool`, `promtool`)
check them. Integration tests, on the test platform: an alert Prometheus fires reaches Alertmanager
and, through its webhook, the console; a resolution is notified too; the console's views show both
in real headless Chromium.
"""

from __future__ import annotations

import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shopstream.config import Settings
from shopstream_tools.console import alerts
from shopstream_tools.lab.testbed import lab_settings
from shopstream_tools.runtime import alertmanager, observability, prometheus, satellites
from shopstream_tools.runtime import platform as runtime
from tests.observability import browser, prom
from tests.observability.poison import dead_letter

# --- unit: the configurations `up` writes -------------------------------------------------------


def test_alertmanager_config_sends_every_alert_to_the_console_webhook(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path), console_port=18090, alertmanager_port=18093)
    path = alertmanager.write_config(settings)
    assert path == tmp_path / "alertmanager" / "alertmanager.yml"
    config = yaml.safe_load(path.read_text())
    route = config["route"]
    assert route["receiver"] == "console" and route["group_by"] == ["..."]
    [receiver] = config["receivers"]
    assert receiver["name"] == "console"
    credential = tmp_path / "auth" / "alertmanager-token"
    assert receiver["webhook_configs"] == [{
        "url": "http://127.0.0.1:18090/api/alerts/notifications",
        "send_resolved": True,
        "http_config": {"authorization": {"type": "Bearer", "credentials_file": str(credential)}},
    }]  # fmt: skip
    assert credential.stat().st_mode & 0o077 == 0 and len(credential.read_text()) >= 32
    assert credential.read_text() not in path.read_text()  # referenced, never copied
    checked = subprocess.run(
        [alertmanager.amtool(), "check-config", str(path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_without_a_console_alertmanager_still_has_a_valid_receiver(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path), console_port=0, alertmanager_port=18093)
    path = alertmanager.write_config(settings)
    config = yaml.safe_load(path.read_text())
    assert config["receivers"] == [{"name": "console"}]  # alerts kept, shown by amtool
    checked = subprocess.run(
        [alertmanager.amtool(), "check-config", str(path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_prometheus_sends_its_alerts_to_the_local_alertmanager(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path), prometheus_port=19090, alertmanager_port=18093)
    path = prometheus.write_config(settings)
    config = yaml.safe_load(path.read_text())
    assert config["alerting"] == {
        "alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:18093"]}]}]
    }
    assert "alertmanager" in {job["job_name"] for job in config["scrape_configs"]}
    checked = subprocess.run(
        [prometheus.promtool(), "check", "config", str(path)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_port_zero_leaves_alertmanager_out(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path), alertmanager_port=0)
    config = yaml.safe_load(prometheus.config(settings, ["prometheus"]))
    assert "alerting" not in config
    assert "alertmanager" not in prometheus.scrape_targets(settings)
    assert satellites.ALERTMANAGER not in {c.name for c in observability.components(settings)}


def test_alertmanager_starts_before_prometheus_on_loopback_without_gossip(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path), alertmanager_port=18093)
    names = [c.name for c in observability.components(settings)]
    assert names.index("alertmanager") < names.index("prometheus")
    comp = next(c for c in observability.components(settings) if c.name == "alertmanager")
    argv = comp.argv(settings)
    assert "--web.listen-address=127.0.0.1:18093" in argv
    assert "--cluster.listen-address=" in argv  # no 0.0.0.0:9094 shared by every platform
    assert f"--storage.path={tmp_path / 'alertmanager' / 'data'}" in argv
    assert comp.health_url() == "http://127.0.0.1:18093/-/ready"


def test_the_lab_platform_starts_no_alertmanager() -> None:
    assert Settings().alertmanager_port == 9093
    assert lab_settings(Settings(alertmanager_port=9093)).alertmanager_port == 0


# --- unit: the console's notification log ------------------------------------------------------


def _notification(status: str, name: str, fingerprint: str, **labels: str) -> alerts.Notification:
    ends = "2026-01-01T10:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z"
    alert = alerts.ReceivedAlert(
        status=status,  # type: ignore[arg-type]
        labels={"alertname": name, "severity": "page", "platform": "shopstream-local", **labels},
        annotations={"summary": f"{name} summary"},
        starts_at="2026-01-01T10:00:00Z",
        ends_at=ends,
        fingerprint=fingerprint,
    )
    return alerts.Notification(status=status, alerts=[alert], receiver="console")  # type: ignore[arg-type]


def test_the_log_replays_to_each_alerts_latest_state(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path))
    assert alerts.notifications(settings) == []
    alerts.record(settings, _notification("firing", "TargetDown", "a", job="node"))
    alerts.record(settings, _notification("firing", "DeadLetterNotEmpty", "b", topic="dead-letter"))
    alerts.record(settings, _notification("resolved", "TargetDown", "a", job="node"))
    with alerts.log_path(settings).open("a") as f:
        f.write("not json\n")  # a torn or foreign line is skipped, not fatal
    found = alerts.notifications(settings)
    assert [n.status for n in found] == ["firing", "firing", "resolved"]
    assert all(n.received_at for n in found)
    states = alerts.states(found)
    assert [(s.name, s.status) for s in states] == [
        ("DeadLetterNotEmpty", "firing"),  # firing first
        ("TargetDown", "resolved"),
    ]
    down = states[1]
    assert down.labels == {"job": "node"} and down.notifications == 2
    assert down.since == "2026-01-01T10:00:00Z" and down.ended == "2026-01-01T10:05:00Z"
    assert states[0].ended == ""


def test_only_the_logs_end_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(data_dir=str(tmp_path))
    for n in range(20):
        alerts.record(settings, _notification("firing", f"Alert{n}", str(n)))
    monkeypatch.setattr(alerts, "TAIL_BYTES", alerts.log_path(settings).stat().st_size // 2)
    found = alerts.notifications(settings)
    assert 5 < len(found) < 15
    assert found[-1].alerts[0].labels["alertname"] == "Alert19"


# --- integration: the test platform -------------------------------------------------------------


def _am(platform, path: str) -> Any:
    url = f"http://127.0.0.1:{platform.settings.alertmanager_port}{path}"
    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _console(platform, path: str) -> str:
    """The console as an operator (role admin), for Chromium and httpx alike."""
    return browser.operator_url(platform.settings, path)


def _at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


@pytest.mark.integration
def test_alertmanager_runs_and_prometheus_knows_it(platform) -> None:
    rows = {r.name: r for r in runtime.status(platform.settings)}
    assert rows["alertmanager"].health == "up" and rows["alertmanager"].pid, rows["alertmanager"]
    assert rows["alertmanager"].port == platform.settings.alertmanager_port
    url = f"http://127.0.0.1:{platform.settings.alertmanager_port}/api/v2/alerts"
    # Prometheus's notifier takes up its alertmanagers a few seconds after a fresh start
    found = prom.poll(lambda: prom.api(platform.settings, "alertmanagers")["activeAlertmanagers"],
                      30, lambda: "Prometheus never listed an alertmanager")  # fmt: skip
    assert [a["url"] for a in found] == [url]
    [receiver] = _am(platform, "/api/v2/receivers")
    assert receiver["name"] == "console"


@pytest.mark.integration
def test_an_alert_prometheus_fires_reaches_alertmanager_and_the_console(platform) -> None:
    """A dead-lettered message fires DeadLetterNotEmpty (no `for:`): Prometheus -> Alertmanager ->
    the console's webhook. Whatever earlier tests left in the dead-letter topic, the notification
    must be of the alert's current firing (same start), not of an earlier one."""
    settings = platform.settings
    dead_letter(settings, "alert path check")

    def firing_in_prometheus() -> dict | None:
        found = prom.api(settings, "alerts")["alerts"]
        return next(
            (a for a in found if a["labels"]["alertname"] == "DeadLetterNotEmpty"
             and a["state"] == "firing"),
            None,
        )

    fired = prom.poll(firing_in_prometheus, 90, lambda: "DeadLetterNotEmpty never fired")

    def in_alertmanager() -> dict | None:
        return next(
            (a for a in _am(platform, "/api/v2/alerts?active=true")
             if a["labels"]["alertname"] == "DeadLetterNotEmpty"),
            None,
        )

    # Prometheus sends at once when an alert fires, then again every minute while it fires
    received = prom.poll(in_alertmanager, 90, lambda: "Alertmanager never received it")
    assert received["labels"]["topic"] == "dead-letter"
    assert received["labels"]["platform"] == "shopstream-local"  # Prometheus' external label
    assert [r["name"] for r in received["receivers"]] == ["console"]
    started = _at(received["startsAt"])
    assert abs(started - _at(fired["activeAt"])) < timedelta(seconds=1)

    def notified() -> dict | None:
        body = httpx.get(_console(platform, "/api/alerts"), timeout=10).json()
        return next(
            (a for a in body["alerts"] if a["name"] == "DeadLetterNotEmpty"
             and a["status"] == "firing" and abs(_at(a["since"]) - started) < timedelta(seconds=1)),
            None,
        )

    # group_wait (10 s) after Alertmanager received it
    state = prom.poll(notified, 60, lambda: "the console's webhook never got the notification")
    assert state["severity"] == "ticket" and state["labels"] == {"topic": "dead-letter"}
    assert "dead-letter topic" in state["summary"]

    log = alerts.log_path(settings).read_text().splitlines()
    assert any('"DeadLetterNotEmpty"' in line and received["fingerprint"] in line for line in log)

    page = browser.parse(browser.dom(_console(platform, "/")))
    firing = [r for r in page.tables["alerts"][1:] if r[0] == "DeadLetterNotEmpty"]
    assert len(firing) == 1, page.tables["alerts"]
    assert firing[0][1] == "ticket"
    assert firing[0][3] == _at(fired["activeAt"]).strftime("%Y-%m-%d %H:%M:%S")
    assert firing[0][4] == "active"

    # Silenced with the package's amtool: still firing in Prometheus, marked so on the health view.
    am = f"--alertmanager.url=http://127.0.0.1:{settings.alertmanager_port}"
    silence = subprocess.run(
        [alertmanager.amtool(), am, "silence", "add", "alertname=DeadLetterNotEmpty",
         "-c", "alert path check", "-d", "5m"],
        capture_output=True, text=True, timeout=30,
    )
    assert silence.returncode == 0, silence.stderr
    try:

        def marked_silenced() -> bool:
            page = browser.parse(browser.dom(_console(platform, "/")))
            rows = [r for r in page.tables["alerts"][1:] if r[0] == "DeadLetterNotEmpty"]
            return bool(rows) and rows[0][4] == "silenced"

        prom.poll(marked_silenced, 30, lambda: "the health view never showed the silence")
    finally:
        subprocess.run(
            [alertmanager.amtool(), am, "silence", "expire", silence.stdout.strip()],
            check=True, capture_output=True, timeout=30,
        )


@pytest.mark.integration
def test_a_resolved_alert_is_notified_and_shown_resolved(platform) -> None:
    """An alert of the test's own, posted to Alertmanager's API as Prometheus does, then resolved:
    the console receives both notifications and its alerts view shows the alert resolved."""
    name = f"AlertPathCheck{uuid.uuid4().hex[:8]}"
    base = f"http://127.0.0.1:{platform.settings.alertmanager_port}/api/v2/alerts"
    now = datetime.now(UTC)
    alert = {
        "labels": {"alertname": name, "severity": "ticket", "check": "resolution"},
        "annotations": {"summary": f"{name}: posted by the test"},
        "startsAt": now.isoformat(),
    }
    assert httpx.post(base, json=[alert], timeout=10).status_code == 200

    def state(status: str) -> dict | None:
        body = httpx.get(_console(platform, "/api/alerts"), timeout=10).json()
        return next((a for a in body["alerts"] if a["name"] == name and a["status"] == status), None)

    prom.poll(lambda: state("firing"), 60, lambda: f"{name} never notified firing")
    page = browser.parse(browser.dom(_console(platform, "/alerts")))
    rows = [r for r in page.tables["notified-alerts"][1:] if r[1] == name]
    assert len(rows) == 1 and rows[0][0] == "firing" and rows[0][3] == "check=resolution", rows

    ended = datetime.now(UTC)
    resolved = {**alert, "endsAt": ended.isoformat()}
    assert httpx.post(base, json=[resolved], timeout=10).status_code == 200
    # the group's next flush: group_interval (30 s) after the firing notification
    done = prom.poll(lambda: state("resolved"), 90, lambda: f"{name} never notified resolved")
    assert done["notifications"] == 2 and abs(_at(done["ended"]) - ended) < timedelta(seconds=1)

    page = browser.parse(browser.dom(_console(platform, "/alerts")))
    rows = [r for r in page.tables["notified-alerts"][1:] if r[1] == name]
    assert len(rows) == 1, page.tables["notified-alerts"]
    status, _name, severity, labels, summary, since, resolved_at, _notified = rows[0]
    assert (status, severity, labels) == ("resolved", "ticket", "check=resolution")
    assert summary == f"{name}: posted by the test"
    assert since == now.strftime("%Y-%m-%d %H:%M:%S")
    assert resolved_at == ended.strftime("%Y-%m-%d %H:%M:%S")
    log = [r for r in page.tables["notifications"][1:] if name in r[2]]
    assert [r[1] for r in log] == ["resolved", "firing"]  # newest first


@pytest.mark.integration
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b'{"status": "burning", "alerts": []}', "status"),
        (b'{"status": "firing"}', "alerts"),
        (b'{"status": "firing", "alerts": [{"status": "firing", "labels": {"a": 1}}]}', "alerts"),
    ],
)
def test_a_bad_notification_is_a_4xx_problem(platform, body: bytes, field: str) -> None:
    before = alerts.log_path(platform.settings)
    size = before.stat().st_size if before.exists() else 0
    # as Alertmanager sends it: with the credential it holds for the webhook
    credential = alertmanager.credential_path(platform.settings).read_text().strip()
    response = httpx.post(
        f"http://127.0.0.1:{platform.settings.console_port}/api/alerts/notifications",
        content=body,
        headers={"content-type": "application/json", "Authorization": f"Bearer {credential}"},
        timeout=10,
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"].startswith(field)
    assert (before.stat().st_size if before.exists() else 0) == size  # nothing appended
