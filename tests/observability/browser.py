"""Real headless Chromium (Debian's `chromium`) loading a page: its DOM after load, or a screenshot."""

from __future__ import annotations

import http.client
import shutil
import subprocess
import tempfile
import threading
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from shopstream import auth
from shopstream.config import Settings

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError("chromium is not installed: run scripts/bootstrap.sh")
    return found


def _run(*args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        result = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=90,
        )
    if result.returncode != 0:
        raise RuntimeError(f"chromium exited {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout


def _budget(wait_ms: int) -> list[str]:
    # virtual time runs until the page's scripts and fetches are done (or the budget is spent), so
    # charts drawn from /api/charts are in the DOM and on the screenshot
    return [f"--virtual-time-budget={wait_ms}"] if wait_ms else []


# No name resolves but the loopback's: a page that needs the internet (a CDN) fails as offline.
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"


def dom(url: str, wait_ms: int = 0, offline: bool = False) -> str:
    """The page's DOM as Chromium built it (`--dump-dom`), after ``wait_ms`` of virtual time."""
    return _run(*_budget(wait_ms), *([OFFLINE] if offline else []), "--dump-dom", url)


def screenshot(url: str, path: Path, width: int = 1280, height: int = 900, wait_ms: int = 0) -> Path:
    _run(*_budget(wait_ms), f"--window-size={width},{height}", "--hide-scrollbars", f"--screenshot={path}", url)
    if not path.exists() or path.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        raise RuntimeError(f"no PNG written to {path}")
    return path


class Charts(HTMLParser):
    """Every drawn chart: {title: (series, points, has a canvas)} from charts.js' data attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, list[int]] = {}
        self.canvases: dict[str, int] = {}
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "div" and found.get("class") == "chart":
            self._open = found.get("data-title") or ""
            self.charts[self._open] = [int(found.get("data-series") or -1), int(found.get("data-points") or -1)]
            self.canvases[self._open] = 0
        elif tag == "canvas" and self._open is not None:
            self.canvases[self._open] += 1


def charts(html: str) -> Charts:
    parser = Charts()
    parser.feed(html)
    return parser


class Tables(HTMLParser):
    """The text of every table cell, by table class: {class: [[cell, ...], ...]}; plus all text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.text: list[str] = []
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("class") or ""
            self.tables.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table is not None:
            self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> Tables:
    parser = Tables()
    parser.feed(html)
    return parser


# The console is for operators -------------------------------------------------------------------
# Headless Chromium run with --dump-dom cannot sign in and keep the session cookie for the next run,
# so the pages it loads go through a loopback reverse proxy that adds an operator's bearer token to
# every request (the page's own script fetches too). The console checks that token exactly as it
# checks a session (shopstream_tools/console/access.py); tests/security/test_console_access.py
# proves the sign-in itself.

_PROXIES: dict[str, str] = {}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate", "host", "content-length"}  # fmt: skip


def operator_url(settings: Settings, path: str = "/") -> str:
    """``path`` of the console as an operator sees it: through the signing proxy (started once)."""
    target = f"127.0.0.1:{settings.console_port}"
    if target not in _PROXIES:
        _PROXIES[target] = _start_proxy(target, auth.admin_token(settings, 6 * 3600))
    return _PROXIES[target] + path


def _start_proxy(target: str, token: str) -> str:
    class Forward(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Authorization"] = f"Bearer {token}"
            upstream = http.client.HTTPConnection(target, timeout=60)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
            finally:
                upstream.close()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_HEAD = _forward

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="console-operator-proxy", daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"
