"""The printable report, rendered by Debian's poppler (pdftoppm, pdftotext) at A4 and Letter.

Needs `poppler-utils` (apt). Checks the page size, that nothing is printed within 16 mm of any
edge, that every page carries its footer, and that the figures are printed as the night has
them: the PLMS index, each leg's counts, tremor episodes, notes, the statement.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from matplotlib.image import imread
from test_exports_nights import NIGHTS, SUBJECT, VERSION, night

from analysis.result import NightResult
from api.exports.printable import PageSize, night_report_pdf

PAGE_MM: dict[PageSize, tuple[float, float]] = {"a4": (210.0, 297.0), "letter": (215.9, 279.4)}
CLEAR_MM = 16.0  # no ink this close to any edge
DPI = 50


def poppler(tool: str, *args: str) -> str:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} not found: install Debian's poppler-utils")
    return subprocess.run([tool, *args], check=True, capture_output=True, text=True).stdout


@cache
def report(page_size: PageSize) -> bytes:
    nights = [night(name) for name in NIGHTS]
    return night_report_pdf([n.result for n in nights], subject=SUBJECT,
                            notes=[note for n in nights for note in n.notes],
                            algorithm_version=VERSION, page_size=page_size)


def pages_text(pdf: Path) -> list[str]:
    return poppler("pdftotext", "-layout", str(pdf), "-").split("\f")[:-1]


def night_pages(pages: list[str], r: NightResult) -> str:
    """The text of the pages of one night (from its heading to the next night's)."""
    title = f"Night of {datetime.fromtimestamp(r.start, ZoneInfo(SUBJECT.time_zone)):%A %d}"
    text = "\f".join(pages)
    start = text.index(title)
    end = text.find("Night of ", start + len(title))
    return text[start: end if end > 0 else None]


def leg_row(r: NightResult, side: str) -> list[str]:
    """What the per-leg table must print for one leg, from the night's own lists."""
    leg = next(x for x in r.legs if x.side == side)
    tremor = sum(t.end - t.start for t in r.tremor if t.side in (side, "bilateral")) / 60
    return [side, f"{leg.sample_rate_hz:g}", f"{round(100 * leg.coverage)}%", str(len(leg.lms)),
            str(len([m for m in leg.lms if m.in_sleep])),
            str(len([m for m in leg.lms if m.in_sleep and m.periodic])),
            str(len([j for j in leg.jerks if j.in_sleep])), f"{tremor:.1f}",
            f"{sum(b - a for a, b in leg.nonwear) / 60:.0f}",
            f"{sum(b - a for a, b in leg.gaps) / 60:.1f}"]


@pytest.mark.parametrize("page_size", PAGE_MM)
def test_pages_render_at_the_paper_size_with_clear_margins(tmp_path: Path,
                                                           page_size: PageSize) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(report(page_size))
    info = poppler("pdfinfo", str(pdf))
    pages_line = re.search(r"Pages:\s+(\d+)", info)
    assert pages_line
    count = int(pages_line.group(1))
    poppler("pdftoppm", "-r", str(DPI), "-png", str(pdf), str(tmp_path / "page"))
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) == count >= 1 + len(NIGHTS)
    w_mm, h_mm = PAGE_MM[page_size]
    clear = round(CLEAR_MM / 25.4 * DPI)
    for path in images:
        ink = imread(path)[:, :, :3].min(axis=2) < 0.9
        assert ink.shape == pytest.approx((h_mm / 25.4 * DPI, w_mm / 25.4 * DPI), abs=1)
        assert ink.any()
        inner = np.zeros_like(ink)
        inner[clear:-clear, clear:-clear] = True
        assert not (ink & ~inner).any(), f"{path.name}: ink within {CLEAR_MM} mm of an edge"
    pages = pages_text(pdf)
    assert len(pages) == count
    for k, page in enumerate(pages, start=1):
        assert f"page {k} of {count}" in page and f"limbwatch {VERSION}" in page
        assert "not a diagnosis" in page


@pytest.mark.parametrize("page_size", PAGE_MM)
def test_the_figures_are_printed_as_the_night_has_them(tmp_path: Path,
                                                       page_size: PageSize) -> None:
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(report(page_size))
    pages = pages_text(pdf)
    first = " ".join(pages[0].split())
    for words in ("This report is not a diagnosis", "No EMG", "No breathing", "no arousals",
                  "infants under one year", f"Algorithm version {VERSION}", SUBJECT.name,
                  f"born {SUBJECT.birth_date}", f"PLMS index over {len(NIGHTS)} nights"):
        assert words in first, words
    for name in NIGHTS:
        n = night(name)
        r, text = n.result, night_pages(pages, n.result)
        lines = text.splitlines()
        assert re.search(rf"PLMS index\s+{r.figures().plm_index:.1f} /h of sleep", text)
        assert re.search(rf"PLMS \(both legs\)\s+{r.plm.count} ", text)
        assert re.search(rf"Brief jerks in sleep\s+{r.brief_jerks}\b", text)
        first = r.first_settling
        assert first is not None
        assert re.search(rf"Sleep-onset latency\s+{first.minutes:.0f} min \(from sensor on\)",
                         text)
        assert r.plmw_index is not None
        assert re.search(rf"PLMW index\s+{r.plmw_index:.1f} /h of wake", text)
        returns = sum(p.kicking_min for p in r.settling if not p.first)
        assert re.search(rf"Kicking settling / later\s+{first.kicking_min:.0f} / {returns:.0f} min",
                         text)
        assert re.search(rf"Jerk clusters\s+{len(r.jerk_clusters)} \(", text)
        for leg in r.legs:
            row = next(line.split() for line in lines if line.startswith(leg.side + " "))
            assert row == leg_row(r, leg.side)
        for t in r.tremor:
            start = datetime.fromtimestamp(t.start, ZoneInfo(SUBJECT.time_zone))
            assert re.search(rf"{start:%H:%M:%S}\s+\S+\s+{t.end - t.start:.0f} s\s+{t.side}\s+"
                             rf"{t.frequency_hz:.1f} Hz", text)
        assert "38,5 °C; gave paracetamol" in text and "shaking_seen" in text
        assert "bottle, 180 ml" in text  # a note of the evening before the recording
        for flag in r.flags:
            assert flag.code in text


def test_the_same_inputs_give_the_same_bytes() -> None:
    n = night("nonwear")

    def once() -> bytes:
        return night_report_pdf([n.result], subject=SUBJECT, notes=n.notes,
                                algorithm_version=VERSION, page_size="letter")

    assert once() == once()
