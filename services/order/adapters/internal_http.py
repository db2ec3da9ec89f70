"""Just enough HTTP/1.1 for one service calling another inside the platform: plain HTTP to one
origin, keep-alive connections, a JSON body, answers framed by Content-Length or chunked.

Why not httpx: on the sync order path its client, transport and pool layers cost about 1 ms of
CPU per call on this machine (0.45 ms for httpcore alone), against 0.01 ms for the same request
written to an asyncio stream; a sync order makes two such calls (docs/performance, "Sync order
path profile"). This client does nothing else: no TLS, proxies, redirects, cookies or
compression, none of which an internal call needs. Calls must be idempotent: one sent on a kept
connection that the server had dropped meanwhile is sent again on a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgspec

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_NO_BODY = frozenset({204, 304})


class TransportError(Exception):
    """No usable answer: the connection failed, was closed early, or timed out."""


class _ClosedBeforeAnswer(Exception):
    """The server had closed the connection before answering (an idle keep-alive it dropped)."""


@dataclass(frozen=True, slots=True)
class Response:
    status_code: int
    content: bytes

    def json(self) -> Any:
        return msgspec.json.decode(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class InternalHTTP:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        connect_timeout: float,
        headers: dict[str, str],
        max_connections: int = 200,
        max_idle: int = 50,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme != "http" or not url.hostname:
            raise ValueError(f"an internal URL is http://host[:port][/path], got {base_url!r}")
        self.host = url.hostname
        self.port = url.port or 80
        self.prefix = url.path.rstrip("/")
        fixed = {"Host": url.netloc, **headers}
        self._headers = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode("latin-1")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_idle = max_idle
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[Connection] = []

    async def request(
        self, method: str, path: str, json: Any = None, headers: dict[str, str] | None = None
    ) -> Response:
        body = b"" if json is None else msgspec.json.encode(json)
        head = f"{method} {self.prefix}{path} HTTP/1.1\r\n".encode("latin-1") + self._headers
        for name, value in (headers or {}).items():
            head += f"{name}: {value}\r\n".encode("latin-1")
        if method != "GET":
            head += b"Content-Length: %d\r\n" % len(body)
            if json is not None:
                head += b"Content-Type: application/json\r\n"
        message = head + b"\r\n" + body
        async with self._slots:
            try:
                async with asyncio.timeout(self.timeout):
                    return await self._send(method, message)
            except TimeoutError:
                raise TransportError(f"no answer within {self.timeout:g} s") from None

    async def _send(self, method: str, message: bytes) -> Response:
        while True:
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await self._connect()
            try:
                response, keep = await _exchange(conn, method, message)
            except _ClosedBeforeAnswer:
                _close(conn)
                # Dropped while idle (a server's keep-alive timeout, a restart): the server did
                # not answer, and every internal call is idempotent, so a fresh connection may
                # take it without counting as a failed attempt.
                if reused:
                    continue
                raise TransportError("connection closed before the answer") from None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ValueError) as exc:
                _close(conn)
                raise TransportError(f"{type(exc).__name__}: {exc}") from exc
            except BaseException:  # cancelled or timed out mid-answer: the stream is unusable
                _close(conn)
                raise
            if keep and len(self._idle) < self.max_idle:
                self._idle.append(conn)
            else:
                _close(conn)
            return response

    async def _connect(self) -> Connection:
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            raise TransportError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            _close(conn)
        for _, writer in idle:
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _close(conn: Connection) -> None:
    conn[1].close()


async def _exchange(conn: Connection, method: str, message: bytes) -> tuple[Response, bool]:
    """Write the request, read the whole answer; also says whether the connection can be reused."""
    reader, writer = conn
    if reader.at_eof() or writer.is_closing():
        raise _ClosedBeforeAnswer()
    try:
        writer.write(message)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise _ClosedBeforeAnswer() from None
        raise
    except ConnectionError:  # reset or broken before a byte of the answer came back
        raise _ClosedBeforeAnswer() from None
    lines = head[:-4].split(b"\r\n")
    version, status_text = lines[0].split(b" ", 2)[:2]
    status = int(status_text)
    length: int | None = None
    chunked = False
    keep = version == b"HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        value = value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            keep = b"close" not in value and (keep or b"keep-alive" in value)
    if method == "HEAD" or status in _NO_BODY or 100 <= status < 200:
        content = b""
    elif chunked:
        content = await _read_chunked(reader)
    elif length is not None:
        content = await reader.readexactly(length)
    else:  # framed by the end of the connection
        content = await reader.read()
        keep = False
    return Response(status, content), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, if any
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
