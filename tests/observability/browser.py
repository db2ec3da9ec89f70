"""Real headless Chromium (Debian's `chromium`) loading a page: its DOM after load, or a screenshot."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

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
