"""The slide deck from a small recorded run (the builders' step records written as a run folder):
10-15 slides, each chart slide with its chart drawn (no panel of it empty) and its sentence, a PDF
printed by real headless Chromium with a page per slide, nothing fetched from outside."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import matplotlib.image as mpimg
import numpy as np
import pytest
from matplotlib.figure import Figure

from shopstream_tools.lab import charts, slides
from tests.lab import builders

ENVIRONMENT = {
    "run_id": "20260101T000000Z-abc1234",
    "profile": {"name": "quick"},
    "tests": ["PT-01", "PT-02", "PT-03", "PT-04", "PT-05", "PT-06"],
    "git_revision": "abc1234",
    "machine": {"cores": 2, "cpu_model": "test cpu"},
}


def recorded_run(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "environment.json").write_text(json.dumps(ENVIRONMENT))
    (folder / "ceilings.json").write_text(json.dumps(builders.ceilings()))
    for test, result in builders.tests().items():
        (folder / f"{test}.json").write_text(json.dumps(result, default=str))
    return folder


def _has_data(ax: Any) -> bool:
    return bool(ax.lines or ax.patches or ax.images or ax.collections)


@pytest.fixture(scope="module")
def deck(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    run = recorded_run(tmp_path_factory.mktemp("deck") / "run")
    empty: list[str] = []
    save = Figure.savefig

    def checked(fig: Figure, path: Any, *args: Any, **kwargs: Any) -> Any:
        empty.extend(f"{Path(str(path)).stem}: {ax.get_title() or 'untitled'}" for ax in fig.axes if not _has_data(ax))
        return save(fig, path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Figure, "savefig", checked)
        written = slides.write(run, run / "deck", pdf=True, screenshots=(2,))
    return {"written": written, "html": written["html"].read_text(), "empty": empty}


def test_every_chart_panel_has_data(deck: dict[str, Any]) -> None:
    assert deck["empty"] == []


def test_ten_to_fifteen_slides_each_with_its_content(deck: dict[str, Any]) -> None:
    sections = re.findall(r"<section id=s(\d+) data-chart='([^']*)'>(.*?)</section>", deck["html"], re.S)
    assert 10 <= len(sections) <= 15
    assert [int(n) for n, _, _ in sections] == list(range(1, len(sections) + 1))
    shown = {chart for _, chart, _ in sections if chart}
    # every chart of the plan's tests is on a slide (the heatmap, memory and what each order mode
    # keeps busy stay in the report, and so do the strategy comparisons)
    in_report_only = {"5-resource-heatmap", "11-memory-over-time", "2-sync-vs-async-resources",
                      "12-balancing", "13-keying"}
    assert shown >= set(charts.CHARTS) - in_report_only
    for _, chart, body in sections:
        assert re.search(r"<h[12]>[^<]+</h[12]>", body)
        if chart:
            images = re.findall(r"src='data:image/png;base64,([^']+)'", body)
            assert len(images) == 1, chart
            png = base64.b64decode(images[0])
            pixels = np.asarray(mpimg.imread(io.BytesIO(png)))
            assert pixels.std() > 0.01, f"{chart}: a blank image"
            sentence = re.search(r"<p class=sentence>([^<]+)</p>", body)
            assert sentence and re.search(r"\d", sentence.group(1)), f"{chart}: no sentence with a figure"
        else:
            assert re.search(r"<li>[^<]+</li>|<b>[^<]+</b>|<svg", body)


def test_the_deck_stands_alone(deck: dict[str, Any]) -> None:
    html = deck["html"]
    assert "<script" not in html
    assert not re.search(r"(src|href)=['\"]?(https?:|//|file:)", html)
    assert "Numbers to remember" in html and "What async buys, what it costs" in html


def test_the_pdf_has_a_page_per_slide_and_the_screenshot_is_a_slide(deck: dict[str, Any]) -> None:
    pdf = deck["written"]["pdf"].read_bytes()
    assert pdf.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    assert pages == deck["html"].count("<section ")
    shot = deck["written"]["slide-2"].read_bytes()
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
