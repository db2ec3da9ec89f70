"""The compose tooling's own logic, without an engine: identity files and the comparison figures."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from shopstream import auth
from shopstream.config import Settings
from shopstream_tools.compose import compare, identity


def test_containers_get_the_public_keys_and_the_credential_but_never_the_signing_key(
    tmp_path: Path,
) -> None:
    home = tmp_path / "shopstream-x"
    shown = identity.prepare(home)

    assert sorted(p.name for p in shown.iterdir()) == ["jwks.json", "service-token"]
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "auth" / "issuer-key.pem").stat().st_mode) == 0o600
    # a token minted on the host verifies against what the containers read
    settings = Settings.from_env({"SHOPSTREAM_DATA_DIR": str(home),
                                  "SHOPSTREAM_AUTH_JWKS_URL": str(shown / "jwks.json")})  # fmt: skip
    principal = auth.Verifier(settings).verify(auth.customer_token(settings, "c-1"))
    assert principal.subject == "c-1"
    # made once: a second start keeps the keys, so tokens minted before stay valid
    keys = (shown / "jwks.json").read_text()
    identity.prepare(home)
    assert (shown / "jwks.json").read_text() == keys
    assert json.loads(keys)["keys"][0]["alg"] == "ES256"


def test_memory_figures_of_podman_and_docker_stats_are_read_in_megabytes() -> None:
    assert compare.megabytes("58.2MB / 24.6GB") == 58.2
    assert compare.megabytes("1GiB / 2GiB") == 1073.741824
    assert compare.megabytes("512kB") == 0.512
    assert compare.megabytes("") == 0.0


def test_the_comparison_is_compose_over_local() -> None:
    local = {"start_s": 20.0, "memory_mb": 1000.0, "accepted_per_s": 150.0, "failures": 0,
             "http_ms": {"p50": 5.0, "p99": 40.0}, "accepted_to_ended_ms": {"p50": 90.0}}  # fmt: skip
    compose = {"start_s": 60.0, "memory_mb": 1200.0, "accepted_per_s": 120.0, "failures": 3,
               "http_ms": {"p50": 10.0, "p99": 80.0}, "accepted_to_ended_ms": {}}  # fmt: skip

    ratios = compare.ratios(compose, local)

    assert ratios["start_s"] == 3.0
    assert ratios["memory_mb"] == 1.2
    assert ratios["accepted_per_s"] == 0.8
    assert ratios["http_ms_p99"] == 2.0
    assert ratios["accepted_to_ended_ms_p50"] is None  # not measured on one side: no ratio
    text = compare.table({"local": local, "compose": compose, "compose_over_local": ratios})
    assert "| async orders accepted/s | 150.0 | 120.0 | 0.8 |" in text
