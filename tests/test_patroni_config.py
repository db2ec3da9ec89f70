"""The HA profile's Patroni files: a synchronous pair that rewinds its old primary, on the profile's
ports, with passwords on every path in (replication included) and kept private; the programs run
with /dev/null as their input."""

from __future__ import annotations

import dataclasses
import shlex
import stat
from pathlib import Path

import yaml

from shopstream.config import Settings
from shopstream_tools.runtime import patroni_config, postgres_ha, profiles


def _settings(tmp_path: Path) -> Settings:
    base = Settings(data_dir=str(tmp_path), postgres_port=32432)
    return dataclasses.replace(base, **profiles.PROFILES["ha"])


def test_each_node_is_a_synchronous_member_that_rewinds(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    patroni_config.write_configs(settings)
    written = yaml.safe_load(patroni_config.config_path(settings, 2).read_text())
    dcs = written["bootstrap"]["dcs"]
    assert dcs["synchronous_mode"] is True
    assert dcs["postgresql"]["use_pg_rewind"] is True
    assert dcs["postgresql"]["parameters"]["wal_log_hints"] == "on"
    assert dcs["postgresql"]["parameters"]["synchronous_commit"] == "remote_apply"
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"], "Patroni refuses otherwise"
    assert written["postgresql"]["listen"] == "127.0.0.1:32433"
    assert written["restapi"]["listen"] == "127.0.0.1:32533"
    assert written["raft"]["self_addr"] == "127.0.0.1:32634"
    assert written["raft"]["partner_addrs"] == ["127.0.0.1:32633", "127.0.0.1:32635"]
    hba = written["postgresql"]["pg_hba"]
    assert all(line.split()[-1] == "scram-sha-256" for line in hba)
    assert any(line.split()[1] == "replication" for line in hba)
    replication = written["postgresql"]["authentication"]["replication"]["password"]
    assert len(replication) > 30
    for path in (
        patroni_config.config_path(settings, 1),
        patroni_config.witness_config_path(settings),
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_patroni_reads_no_pipe(tmp_path: Path) -> None:
    argv = postgres_ha._no_stdin(["/opt/a b/patroni", str(tmp_path / "node 1.yml")])
    command = shlex.split(" ".join(argv))  # as supervisord reads its command line
    assert command[:2] == ["/bin/sh", "-c"]
    assert command[2] == f"exec '/opt/a b/patroni' '{tmp_path / 'node 1.yml'}' </dev/null"


def test_prometheus_scrapes_each_patroni_in_the_ha_profile_only(tmp_path: Path) -> None:
    from shopstream_tools.runtime import prometheus

    jobs = prometheus.scrape_targets(_settings(tmp_path))
    assert [g["targets"] for g in jobs["patroni"]] == [["127.0.0.1:32532"], ["127.0.0.1:32533"]]
    assert "patroni" not in prometheus.scrape_targets(Settings(data_dir=str(tmp_path)))
