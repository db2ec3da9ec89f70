"""``shopstream lab slides RUN``: the run's slide deck, generated from its folder and never edited by
hand. ``slides.html`` is self-contained (charts inlined as PNG, no script, no font or file from
outside: it works offline), one 16:9 slide per screen, dark on light, large type; ``slides.pdf``
is the same deck printed by headless Chromium, one slide a page.

The figures are the run's: when its raw results are in the folder (``PT-*.json``) the summary is
computed again with today's analysis, otherwise its ``summary.json`` is read as it was written.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shopstream_tools.lab import analysis, charts
from shopstream_tools.lab.deck import Slide, slides
from shopstream_tools.lab.html import esc
from shopstream_tools.lab.plotting import plt
from shopstream_tools.lab.tests import TESTS

WIDTH, HEIGHT = 1280, 720
CSS = f"""
@page{{size:{WIDTH}px {HEIGHT}px;margin:0}}
html{{scroll-snap-type:y mandatory}}
body{{margin:0;background:#d5d8dc;font-family:'DejaVu Sans',system-ui,sans-serif;color:#1a1a1a}}
section{{box-sizing:border-box;width:{WIDTH}px;height:{HEIGHT}px;margin:0 auto 16px;padding:36px 56px;background:#fff;
  display:flex;flex-direction:column;overflow:hidden;scroll-snap-align:start;page-break-after:always;break-after:page;position:relative}}
h1{{font-size:64px;margin:170px 0 24px}}h2{{font-size:40px;margin:0 0 14px}}
.panel{{flex:1;min-height:0;display:flex;align-items:center;justify-content:center}}
.panel img{{max-width:100%;max-height:100%;object-fit:contain}}.panel svg{{width:100%;max-height:100%}}
.sentence{{font-size:27px;line-height:1.3;margin:14px 0 0;font-weight:600}}
ul{{font-size:32px;line-height:1.45;margin:10px 0;padding-left:1.1em}}li{{margin:.2em 0}}
.numbers{{display:grid;grid-template-columns:1fr 1fr;gap:22px 48px;margin-top:18px}}
.numbers b{{display:block;font-size:60px;color:#1f4e79}}.numbers span{{font-size:24px}}
.foot{{position:absolute;right:56px;bottom:14px;font-size:16px;color:#666}}
@media print{{body{{background:#fff}}section{{margin:0}}}}
"""


def load_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(summary, environment, raw test results) of a run folder."""
    environment = json.loads((run_dir / "environment.json").read_text())
    tests = {t: json.loads((run_dir / f"{t}.json").read_text()) for t in TESTS if (run_dir / f"{t}.json").exists()}
    if tests and (run_dir / "ceilings.json").exists():
        ceilings = json.loads((run_dir / "ceilings.json").read_text())
        summary = analysis.summarize(ceilings, tests, (environment.get("machine") or {}).get("cores") or 2)
    else:
        summary = json.loads((run_dir / "summary.json").read_text())
        summary.setdefault("machine_cores", (environment.get("machine") or {}).get("cores") or 2)
    return summary, environment, tests


def _image(path: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f"<img alt='chart' src='data:image/png;base64,{data}'>"


def render_slide(slide: Slide, number: int, total: int, drawn: Mapping[str, Mapping[str, str]]) -> str:
    parts = [f"<section id=s{number} data-chart='{esc(slide.chart or '')}'>"]
    if number == 1:
        parts.append(f"<h1>{esc(slide.title)}</h1>")
    else:
        parts.append(f"<h2>{esc(slide.title)}</h2>")
    if slide.chart:
        parts.append(f"<div class=panel>{_image(drawn[slide.chart]['path'])}</div>")
    elif slide.picture:
        parts.append(f"<div class=panel>{slide.picture}</div>")
    if slide.points:
        parts.append("<ul>" + "".join(f"<li>{esc(p)}</li>" for p in slide.points) + "</ul>")
    if slide.numbers:
        parts.append("<div class=numbers>" + "".join(f"<div><b>{esc(n)}</b><span>{esc(what)}</span></div>" for n, what in slide.numbers) + "</div>")
    if slide.sentence:
        parts.append(f"<p class=sentence>{esc(slide.sentence)}</p>")
    parts.append(f"<div class=foot>{number} / {total}</div></section>")
    return "".join(parts)


def page(title: str, sections: list[str]) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{esc(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(sections)}</body></html>")  # fmt: skip


def draw(summary: Mapping[str, Any], tests: Mapping[str, Any], folder: Path) -> dict[str, dict[str, str]]:
    """The charts again, in larger type for a room (the report's are drawn for a screen)."""
    with plt.rc_context({"font.size": 13, "axes.titlesize": 15, "axes.labelsize": 13, "legend.fontsize": 10}):
        return charts.draw_all(summary, tests, folder)


def chromium(*args: str, timeout: float = 120) -> None:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        raise RuntimeError("chromium is not installed (Debian package chromium)")
    with tempfile.TemporaryDirectory(prefix="slides-chromium-") as profile:
        done = subprocess.run(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--disable-background-networking", "--hide-scrollbars", f"--user-data-dir={profile}", *args],
            capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr[-1500:]}")


def write(run_dir: Path, out_dir: Path | None = None, pdf: bool = True, screenshots: tuple[int, ...] = ()) -> dict[str, Path]:
    """Write slides.html (and slides.pdf, and PNGs of the slides numbered in ``screenshots``) for the
    run in ``run_dir``; returns what was written."""
    out_dir = out_dir or run_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    summary, environment, tests = load_run(run_dir)
    written: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="slides-") as tmp:
        drawn = draw(summary, tests, Path(tmp) / "charts")
        deck = slides(summary, environment, drawn)
        sections = [render_slide(s, i, len(deck), drawn) for i, s in enumerate(deck, start=1)]
        title = f"shopstream lab {environment.get('run_id', '')}"
        html_path = out_dir / "slides.html"
        html_path.write_text(page(title, sections))
        written["html"] = html_path
        if pdf:
            pdf_path = out_dir / "slides.pdf"
            chromium("--no-pdf-header-footer", f"--print-to-pdf={pdf_path}", html_path.resolve().as_uri())
            written["pdf"] = pdf_path
        for n in screenshots:
            one = Path(tmp) / f"slide-{n}.html"
            one.write_text(page(title, [sections[n - 1]]).replace("margin:0 auto 16px", "margin:0"))
            png = out_dir / f"slide-{n}.png"
            chromium(f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={png}", one.as_uri())
            written[f"slide-{n}"] = png
    return written
