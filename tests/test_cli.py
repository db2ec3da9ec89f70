"""The command line: each command's --profile means its own thing (a platform's, a lab plan's,
perf-check's profiler folder), and none is read as another's."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopstream_tools import cli
from shopstream_tools.runtime import profiles


def test_up_profile_is_the_platforms() -> None:
    args = cli.parser().parse_args(["up", "--profile", "ha"])
    assert args.platform_profile == "ha"


@pytest.mark.parametrize(
    "argv",
    [
        ["lab", "run", "--profile", "quick", "PT-01"],
        ["perf-check", "--profile", "/tmp/profile-dir"],
    ],
)
def test_other_commands_profiles_are_not_taken_for_a_platform_profile(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPSTREAM_DATA_DIR", str(tmp_path))
    args = cli.parser().parse_args(argv)
    assert getattr(args, "platform_profile", None) is None
    chosen: list[object] = []
    monkeypatch.setattr(args, "func", lambda settings, a: chosen.append(a.profile) or 0)
    monkeypatch.setattr(cli, "parser", lambda: _Fixed(args))
    assert cli.main(argv) == 0
    assert chosen == [args.profile]
    assert profiles.current(cli.Settings.from_env()) == "default"


class _Fixed:
    def __init__(self, args: object) -> None:
        self.args = args

    def parse_args(self, _argv: object = None) -> object:
        return self.args


def test_lab_run_offers_every_test_of_the_registry() -> None:
    from shopstream_tools.lab.tests import TESTS

    for test in TESTS:
        assert cli.parser().parse_args(["lab", "run", test]).tests == [test]
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["lab", "run", f"PT-0{len(TESTS) + 1}"])


def test_gateway_cert_issues_from_the_platforms_local_ca(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ssl

    from cryptography import x509

    monkeypatch.setenv("SHOPSTREAM_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "secret"
    assert cli.main(["gateway-cert", "--name", "gateway.shop.test", "--name", "10.1.2.3", "--out", str(out)]) == 0
    cert = x509.load_pem_x509_certificate((out / "gateway.crt").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["gateway.shop.test"]
    assert (out / "ca.crt").read_bytes() == (tmp_path / "data" / "gateway" / "tls" / "ca.crt").read_bytes()
    assert (out / "gateway.key").stat().st_mode & 0o077 == 0
    context = ssl.create_default_context(cafile=str(out / "ca.crt"))
    context.load_cert_chain(out / "gateway.crt", out / "gateway.key")  # the key matches
