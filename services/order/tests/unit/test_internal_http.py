"""The internal HTTP client against a real local server that answers as scripted: framing,
keep-alive reuse, an idle connection the server dropped, and failures as TransportError."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from services.order.adapters.internal_http import InternalHTTP, TransportError

Answer = Callable[[bytes], bytes | None]
"""From the request head and body to the raw answer; None closes the connection unanswered."""


class Server:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.connections = 0
        self.requests: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                raw = self.answer(request)
                if raw is None:
                    break
                writer.write(raw)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def drop_all(self) -> None:
        for writer in self.writers:
            writer.close()

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        self.drop_all()
        await self.server.wait_closed()


def sized(status: int, body: bytes, extra: str = "") -> bytes:
    return f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., asyncio.Future[tuple[Server, InternalHTTP]]]]:
    started: list[tuple[Server, InternalHTTP]] = []

    async def start(answer: Answer, **options: float) -> tuple[Server, InternalHTTP]:
        server = Server(answer)
        port = await server.start()
        client = InternalHTTP(f"http://127.0.0.1:{port}/base", headers={"X-Client-Id": "t"},
                              timeout=options.get("timeout", 2.0), connect_timeout=1.0)
        started.append((server, client))
        return server, client

    yield start  # type: ignore[misc]
    for server, client in started:
        await client.aclose()
        await server.stop()


async def test_a_json_call_is_framed_and_its_connection_reused(serve) -> None:
    server, client = await serve(lambda _: sized(201, b'{"lines": [1, 2]}'))
    first = await client.request("POST", "/reservations", {"order_id": "o-1"})
    second = await client.request("GET", "/reservations/o-1")
    assert (first.status_code, first.json()) == (201, {"lines": [1, 2]})
    assert second.status_code == 201
    assert server.connections == 1
    post, get = server.requests
    assert post.startswith(b"POST /base/reservations HTTP/1.1\r\n")
    assert b"\r\nX-Client-Id: t\r\n" in post and b"\r\nContent-Type: application/json\r\n" in post
    assert post.endswith(b'\r\n\r\n{"order_id":"o-1"}')
    assert get.startswith(b"GET /base/reservations/o-1 HTTP/1.1\r\n")
    assert b"Content-Length" not in get


async def test_a_chunked_answer_is_read_whole(serve) -> None:
    chunked = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\n{\"a\":\r\n3;x=y\r\n 1}\r\n0\r\n\r\n")
    server, client = await serve(lambda _: chunked)
    assert (await client.request("POST", "/x")).json() == {"a": 1}
    assert (await client.request("POST", "/x")).json() == {"a": 1}
    assert server.connections == 1


async def test_connection_close_is_honoured(serve) -> None:
    server, client = await serve(lambda _: sized(200, b"{}", "Connection: close\r\n"))
    await client.request("POST", "/x")
    await client.request("POST", "/x")
    assert server.connections == 2


async def test_an_idle_connection_the_server_dropped_is_replaced_silently(serve) -> None:
    server, client = await serve(lambda _: sized(200, b"{}"))
    await client.request("POST", "/x")
    server.drop_all()
    await asyncio.sleep(0.05)
    assert (await client.request("POST", "/x")).status_code == 200
    assert server.connections == 2


async def test_a_fresh_connection_closed_unanswered_is_a_transport_error(serve) -> None:
    _, client = await serve(lambda _: None)
    with pytest.raises(TransportError):
        await client.request("POST", "/x")


async def test_a_slow_answer_is_a_transport_error(serve) -> None:
    def never(_: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{"  # 9 bytes never come

    _, client = await serve(never, timeout=0.2)
    with pytest.raises(TransportError, match="within"):
        await client.request("POST", "/x")


async def test_no_server_is_a_transport_error() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    client = InternalHTTP(f"http://127.0.0.1:{port}", headers={}, timeout=1, connect_timeout=1)
    with pytest.raises(TransportError, match="cannot connect"):
        await client.request("GET", "/")


def test_only_plain_http_urls() -> None:
    with pytest.raises(ValueError):
        InternalHTTP("https://product:8081", headers={}, timeout=1, connect_timeout=1)
