"""How the settings name PostgreSQL's roles and build the URLs (no server: unit tests)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from shopstream.config import Settings
from shopstream_tools.runtime import database_roles


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"SHOPSTREAM_DATA_DIR": str(tmp_path), **env})


def test_each_service_connects_as_its_own_role_with_its_generated_password(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    database_roles.ensure_local_passwords(settings)
    for service in ("product", "order"):
        url = urlsplit(settings.database_url(service))
        assert url.username == f"{service}_service"
        assert url.path == f"/{service}"
        stored = (tmp_path / "auth" / "postgres" / f"{service}_service").read_text()
        assert unquote(url.password or "") == stored
    admin = urlsplit(settings.admin_database_url("order"))
    assert (admin.username, admin.path) == ("shopstream", "/order")
    assert urlsplit(settings.admin_database_url()).path == "/postgres"


def test_generated_passwords_stay_and_files_are_private(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    database_roles.ensure_local_passwords(settings)
    first = settings.postgres_password_of("order_service")
    database_roles.ensure_local_passwords(settings)
    assert settings.postgres_password_of("order_service") == first
    folder = settings.postgres_credentials_path
    assert {p.name for p in folder.iterdir()} == {
        "pgpass", "shopstream", "product_service", "order_service"
    }
    assert all(p.stat().st_mode & 0o077 == 0 for p in folder.iterdir())
    database_roles.ensure_local_passwords(settings, rotate=("order_service",))
    assert settings.postgres_password_of("order_service") != first


def test_a_given_role_and_password_win_and_are_quoted(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        SHOPSTREAM_POSTGRES_USER="product_service",
        SHOPSTREAM_POSTGRES_PASSWORD="p@ss:w/rd?#",
        SHOPSTREAM_POSTGRES_ADMIN_PASSWORD="adm in",
    )
    url = urlsplit(settings.database_url("product"))
    assert (url.username, unquote(url.password or "")) == ("product_service", "p@ss:w/rd?#")
    assert url.hostname == "127.0.0.1" and url.path == "/product"
    assert unquote(urlsplit(settings.admin_database_url()).password or "") == "adm in"


def test_the_admin_url_keeps_an_explicit_urls_server_and_database(tmp_path: Path) -> None:
    settings = _settings(
        tmp_path,
        SHOPSTREAM_PRODUCT_DATABASE_URL="postgresql://someone:secret@db.example:6543/shop_product",
        SHOPSTREAM_POSTGRES_ADMIN_PASSWORD="root",
    )
    url = urlsplit(settings.admin_database_url("product"))
    assert (url.username, url.password, url.hostname, url.port) == ("shopstream", "root", "db.example", 6543)
    assert url.path == "/shop_product"
    assert urlsplit(settings.admin_database_url("product", "postgres")).path == "/postgres"


def test_the_libpq_password_file_escapes_its_separators(tmp_path: Path) -> None:
    settings = _settings(tmp_path, SHOPSTREAM_POSTGRES_ADMIN_PASSWORD="a:b\\c")
    database_roles.ensure_local_passwords(settings)
    line = database_roles.pgpass_path(settings).read_text().splitlines()[0]
    assert line == "127.0.0.1:15432:*:shopstream:a\\:b\\\\c"


def test_a_tool_told_to_log_in_as_the_admin_uses_the_password_it_was_given(tmp_path: Path) -> None:
    """The compose stack's host tools read both databases as the admin."""
    settings = _settings(
        tmp_path, SHOPSTREAM_POSTGRES_USER="shopstream", SHOPSTREAM_POSTGRES_PASSWORD="given"
    )
    for service in ("product", "order"):
        url = urlsplit(settings.database_url(service))
        assert (url.username, url.password) == ("shopstream", "given")


def test_server_settings_are_written_at_every_start_and_win(tmp_path: Path) -> None:
    from shopstream_tools.runtime import postgres

    conf = tmp_path / "postgresql.conf"
    conf.write_text("# made by initdb\nwal_compression = off\n# shopstream private cluster\n")
    postgres._write_settings(tmp_path)
    postgres._write_settings(tmp_path)  # a second start changes nothing
    text = conf.read_text()
    assert text.count("include 'shopstream.conf'") == 1 and text.endswith("include 'shopstream.conf'\n")
    assert "wal_compression = lz4" in (tmp_path / "shopstream.conf").read_text()


def test_libpq_tools_name_every_node_so_they_reach_the_primary() -> None:
    from shopstream_tools.runtime import postgres

    one = Settings(postgres_port=15432, postgres_nodes=1)
    assert postgres.server_args(one) == ["-h", "127.0.0.1", "-p", "15432"]
    pair = Settings(postgres_port=15432, postgres_nodes=2, postgres_node_port_step=1)
    assert postgres.server_args(pair) == ["-h", "127.0.0.1,127.0.0.1", "-p", "15432,15433"]
