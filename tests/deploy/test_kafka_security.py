"""The Kafka clients' security settings: plaintext locally, TLS + SCRAM on MSK, nothing else."""

from __future__ import annotations

import pytest

from shopstream import kafka
from shopstream.config import Settings

MSK = {
    "SHOPSTREAM_KAFKA_BOOTSTRAP": "b-1.msk.example:9096",
    "SHOPSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "SHOPSTREAM_KAFKA_SASL_USERNAME": "shopstream",
    "SHOPSTREAM_KAFKA_SASL_PASSWORD": "s3cret",
}


def test_plaintext_by_default() -> None:
    assert kafka.security(Settings()) == {"security.protocol": "PLAINTEXT"}


def test_sasl_ssl_logs_in_with_scram_and_verifies_the_broker() -> None:
    config = kafka.security(Settings.from_env(MSK))
    assert config == {
        "security.protocol": "SASL_SSL",
        "ssl.endpoint.identification.algorithm": "https",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "shopstream",
        "sasl.password": "s3cret",
    }


def test_tls_with_a_ca_bundle_and_no_login() -> None:
    settings = Settings.from_env(
        {"SHOPSTREAM_KAFKA_SECURITY_PROTOCOL": "ssl", "SHOPSTREAM_KAFKA_CA_LOCATION": "/ca.pem"}
    )
    config = kafka.security(settings)
    assert config["security.protocol"] == "SSL" and config["ssl.ca.location"] == "/ca.pem"
    assert "sasl.mechanism" not in config


@pytest.mark.parametrize(
    "env, field",
    [
        ({"SHOPSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "SECURITY_PROTOCOL"),
        ({"SHOPSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "SASL_USERNAME"),
    ],
)
def test_a_wrong_or_incomplete_setting_fails_at_start_naming_it(
    env: dict[str, str], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        kafka.security(Settings.from_env(env))


def test_every_client_carries_the_security_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[dict[str, object]] = []
    monkeypatch.setattr(kafka, "Producer", built.append)
    monkeypatch.setattr(kafka, "Consumer", built.append)
    settings = Settings.from_env(MSK)
    kafka.producer(settings)
    kafka.consumer(settings, "product-saga")
    built.append(kafka.admin_config(settings))
    for config in built:
        assert config["security.protocol"] == "SASL_SSL" and config["sasl.username"] == "shopstream"


def test_consumers_fetch_in_batches_as_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[dict[str, object]] = []
    monkeypatch.setattr(kafka, "Consumer", built.append)
    kafka.consumer(Settings(), "order-saga")
    kafka.consumer(Settings.from_env({"SHOPSTREAM_KAFKA_FETCH_WAIT_MS": "5",
                                      "SHOPSTREAM_KAFKA_FETCH_MIN_BYTES": "1"}), "order-saga")  # fmt: skip
    assert [(c["fetch.wait.max.ms"], c["fetch.min.bytes"]) for c in built] == [(50, 65536), (5, 1)]
