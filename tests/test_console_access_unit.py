"""The console's sign-in rules that need no server: where a sign-in may send the browser back to,
and what counts as a request from the console's own pages (the real server: tests/security)."""

from __future__ import annotations

from typing import Any

import pytest

from shopstream.http import Problem
from shopstream_tools.console import access


@pytest.mark.parametrize(
    ("raw", "target"),
    [
        ("/kafka/groups?x=1", "/kafka/groups?x=1"),
        ("/", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/sign-in?next=/x", "/"),
        ("", "/"),
        ("/x\r\nSet-Cookie: a=b", "/"),
        ("/x\x00", "/"),
    ],
)
def test_sign_in_returns_only_to_a_path_of_the_console(raw: str, target: str) -> None:
    assert access.safe_next(raw) == target


class _Connection:
    def __init__(self, **headers: str) -> None:
        self.headers = {k.replace("_", "-"): v for k, v in headers.items()}
        self.scope: dict[str, Any] = {"method": "POST"}


@pytest.mark.parametrize(
    ("headers", "same"),
    [
        ({"sec_fetch_site": "same-origin"}, True),
        ({"sec_fetch_site": "cross-site", "origin": "http://h:1", "host": "h:1"}, False),
        ({"sec_fetch_site": "same-site"}, False),
        ({"origin": "http://127.0.0.1:8090", "host": "127.0.0.1:8090"}, True),
        ({"origin": "http://127.0.0.1:8091", "host": "127.0.0.1:8090"}, False),
        ({"origin": "null", "host": "127.0.0.1:8090"}, False),
        ({"host": "127.0.0.1:8090"}, False),
    ],
)
def test_a_change_by_cookie_must_come_from_a_console_page(headers: dict[str, str], same: bool) -> None:
    connection: Any = _Connection(**headers)
    assert access.same_origin(connection) is same
    if same:
        access.refuse_cross_site(connection)
    else:
        with pytest.raises(Problem):
            access.refuse_cross_site(connection)
