"""A printable report of one night or a range of nights: PDF through matplotlib's PDF backend.

Page 1: the subject, the nights side by side (one row each, with the spread of the PLMS index:
one night says little), and what the report is not and what the sensor cannot see. Then each
night from a new page: its summary figures, flags, per-leg counts, the picture of the night
(`analysis.figure.draw_night`), the IMI histogram, tremor episodes and the journal notes of
that night (noon to noon local time). Every page ends with the subject, the algorithm version,
"not a diagnosis" and its number.

Pages are A4 or US Letter. The content is 174 mm wide (A4's width less two 18-mm margins),
centred across the page, with 18 mm at the top and bottom: at least 18 mm of white on every side
of either paper, so it prints without scaling or cropping; a block that does not fit the page
starts the next one. Times are the subject's
local clock (its zone is named on page 1). Fonts are embedded (matplotlib's Type 3 subsets, with
a Unicode map, so the text can be searched and copied; TrueType subsetting took 2 s more).
"""

from __future__ import annotations

import io
import statistics
import tempfile
import textwrap
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.ticker import MaxNLocator

from analysis.figure import draw_night
from analysis.plm import MAX_IMI_S, MIN_IMI_S
from analysis.result import DISCLAIMER, NightResult
from analysis.sleep import EPOCH_S
from api.exports.marks import one_line
from limbwatch.store.records import Note, Subject, night_date

PageSize = Literal["a4", "letter"]
PAGE_MM: dict[PageSize, tuple[float, float]] = {"a4": (210.0, 297.0), "letter": (215.9, 279.4)}
MARGIN_MM = 18.0
CONTENT_MM = 174.0  # A4 width less two margins; centred, so Letter has 21 mm at each side
FOOTER_MM = 9.0  # inside the bottom margin's inner edge
BODY_PT, SMALL_PT, HEAD_PT, TITLE_PT = 8.5, 7.0, 11.0, 15.0
IMI_MM = 40.0  # height of the IMI histogram
KEEP_MM = 13.0  # a heading stays on the page of at least three lines of what follows
_MM_PER_PT = 25.4 / 72
_CHAR_EM = 0.55  # mean character width of DejaVu Sans, in em, for wrapping
_PYPLOT = threading.Lock()  # draw_night uses pyplot, whose state is not thread-safe

NOT_A_DIAGNOSIS = "This report is not a diagnosis. " + DISCLAIMER
CANNOT_SEE = (
    "What the sensor cannot see. It measures movement at the ankle only. No EMG: muscle activity "
    "without movement is missed, and LMs are found from movement, not scored on the leg EMG "
    "that the WASM and AASM rules assume. No breathing: LMs linked to breathing events cannot be "
    "set apart. No EEG: no arousals (no PLM-arousal index) and no sleep stages; sleep and wake "
    "come from movement, so lying awake and still reads as sleep. No normative PLMS figures exist "
    "for infants under one year. The detectors were checked on simulated nights, not against "
    "polysomnography."
)


def night_report_pdf(nights: Sequence[NightResult], *, subject: Subject,
                     notes: Sequence[Note] = (), algorithm_version: str,
                     page_size: PageSize = "a4") -> bytes:
    """The report of `nights` (one or more of one subject, printed in time order) as PDF bytes.

    `notes` are the subject's journal notes; each is printed with the night it belongs to.
    """
    if not nights:
        raise ValueError("no nights to print")
    ordered = sorted(nights, key=lambda r: r.start)
    pages = _Pages(page_size)
    with matplotlib.rc_context({"pdf.fonttype": 3, "font.family": "DejaVu Sans"}):
        _overview(pages, ordered, subject, algorithm_version)
        for result in ordered:
            day = night_date(result.start, subject.time_zone)
            _night(pages, result, subject,
                   [n for n in notes if night_date(n.time, subject.time_zone) == day])
        footer = (f"{subject.name} ({subject.id}) - limbwatch {algorithm_version} - not a "
                  "diagnosis: it supports, and does not replace, a clinician's assessment")
        return pages.pdf(footer, {"Title": f"limbwatch report: {subject.name}",
                                  "Author": "limbwatch", "Creator": f"limbwatch "
                                  f"{algorithm_version}", "CreationDate": None})


class _Pages:
    """Pages filled from the top: a cursor `y` (mm from the top) moves down as blocks are put."""

    def __init__(self, size: PageSize) -> None:
        self.w, self.h = PAGE_MM[size]
        self.x0 = (self.w - CONTENT_MM) / 2  # left edge of the content, mm
        self.figs: list[Figure] = []
        self.y = 0.0
        self.new_page()

    def new_page(self) -> None:
        self.figs.append(Figure(figsize=(self.w / 25.4, self.h / 25.4)))
        self.y = MARGIN_MM

    def room(self, height_mm: float) -> None:
        """Start a new page unless `height_mm` fits above the footer."""
        if self.y + height_mm > self.h - MARGIN_MM - FOOTER_MM:
            self.new_page()

    def text(self, x_mm: float, y_mm: float, s: str, size: float, bold: bool = False) -> None:
        self.figs[-1].text(x_mm / self.w, 1 - y_mm / self.h, s, fontsize=size, va="top",
                           weight="bold" if bold else "normal")

    def line(self, s: str, size: float = BODY_PT, bold: bool = False) -> None:
        self.room(_line_mm(size))
        self.text(self.x0, self.y, s, size, bold)
        self.y += _line_mm(size)

    def heading(self, s: str, size: float = HEAD_PT, keep_mm: float = KEEP_MM) -> None:
        """A bold line, on the next page unless `keep_mm` of what follows fits below it."""
        self.room(_line_mm(size) + 2 + keep_mm)
        self.y += 2
        self.line(s, size, bold=True)

    def paragraph(self, s: str, size: float = BODY_PT) -> None:
        for part in _wrap(s, CONTENT_MM, size):
            self.line(part, size)
        self.y += 1

    def table(self, header: Sequence[str] | None, rows: Sequence[Sequence[str]],
              widths_mm: Sequence[float], size: float = BODY_PT) -> None:
        """Columns of `widths_mm`; the last one wraps; the header (if any) repeats on a new
        page."""
        def put(cells: Sequence[str], bold: bool) -> None:
            last = _wrap(cells[-1], widths_mm[-1], size) or [""]
            height = len(last) * _line_mm(size)
            if self.y + height > self.h - MARGIN_MM - FOOTER_MM:
                self.new_page()
                if header is not None and not bold:
                    put(header, True)
            x = self.x0
            for cell, width in zip(cells[:-1], widths_mm[:-1], strict=True):
                self.text(x, self.y, cell, size, bold)
                x += width
            for k, part in enumerate(last):
                self.text(x, self.y + k * _line_mm(size), part, size, bold)
            self.y += height

        if header is not None:
            put(header, True)
        for row in rows:
            put(row, False)
        self.y += 1.5

    def axes(self, height_mm: float, inset: tuple[float, float] = (0.0, 0.0)) -> Axes:
        """Axes across the content width; `inset` (left, bottom) mm leaves room for labels."""
        self.room(height_mm)
        left, bottom = inset
        ax = self.figs[-1].add_axes((
            (self.x0 + left) / self.w, 1 - (self.y + height_mm - bottom) / self.h,
            (CONTENT_MM - left - 2) / self.w, (height_mm - bottom - 2) / self.h,
        ))
        self.y += height_mm
        return ax

    def pdf(self, footer: str, metadata: dict[str, str | None]) -> bytes:
        out = io.BytesIO()
        with PdfPages(out, metadata=metadata) as pdf:
            for k, fig in enumerate(self.figs, start=1):
                y = self.h - MARGIN_MM - FOOTER_MM + 3
                fig.text(self.x0 / self.w, 1 - y / self.h, footer, fontsize=SMALL_PT,
                         va="top")
                fig.text((self.x0 + CONTENT_MM) / self.w, 1 - y / self.h,
                         f"page {k} of {len(self.figs)}", fontsize=SMALL_PT, va="top", ha="right")
                pdf.savefig(fig)
        return out.getvalue()


def _overview(pages: _Pages, nights: Sequence[NightResult], subject: Subject,
              algorithm_version: str) -> None:
    tz = subject.time_zone
    first, last = (night_date(r.start, tz) for r in (nights[0], nights[-1]))
    pages.line("limbwatch night report", TITLE_PT, bold=True)
    pages.line("Leg movements during sleep, measured with ankle accelerometers")
    pages.y += 2
    born = "not given" if subject.birth_date is None else subject.birth_date.isoformat()
    pages.line(f"Subject: {subject.name} (id {subject.id}), born {born}, age "
               f"{_age(subject, nights[0].start)} on the first night")
    span = first.isoformat() if first == last else f"{first} to {last}"
    pages.line(f"Nights: {len(nights)} ({span}); times are local, {tz}")
    pages.line(f"Algorithm version {algorithm_version}; PLM rules "
               f"{', '.join(sorted({_rules(r) for r in nights}))}")
    pages.heading("The nights side by side")
    pages.table(
        ["night of", "sleep h", "effic.", "WASO", "awak.", "PLMS/h", "PI", "LMs", "jerks",
         "tremor", "data", "flags"],
        [[night_date(r.start, tz).isoformat(), f"{r.sleep.total_sleep_min / 60:.1f}",
          f"{r.sleep.efficiency:.0%}", f"{r.sleep.waso_min:.0f}", str(r.sleep.awakenings),
          f"{r.figures().plm_index:.1f}", _pi(r), str(sum(len(leg.lms) for leg in r.legs)),
          str(r.brief_jerks), f"{r.figures().tremor_min:.1f}", f"{r.figures().coverage:.0%}",
          ", ".join(f.code for f in r.flags) or "none"] for r in nights],
        [21, 13, 12, 11, 11, 14, 11, 11, 11, 13, 11, 35], SMALL_PT)
    pages.paragraph(
        "sleep h: total sleep; effic.: sleep efficiency; WASO: wake after sleep onset, min; "
        "awak.: awakenings of 1 min or more; PLMS/h: PLMS index, per hour of sleep; PI: "
        "periodicity index; LMs: leg movements, both legs; jerks: brief jerks in sleep; tremor: "
        "min; data: share of the recording with data.", SMALL_PT)
    if len(nights) > 1:
        index = [r.figures().plm_index for r in nights]
        pages.paragraph(
            f"PLMS index over {len(nights)} nights: median {statistics.median(index):.1f}/h, "
            f"range {min(index):.1f} to {max(index):.1f}/h. The index varies a lot from night to "
            "night; read it over several nights rather than one.")
    pages.heading("What this report is, and is not")
    pages.paragraph(NOT_A_DIAGNOSIS)
    pages.paragraph(CANNOT_SEE)


def _night(pages: _Pages, r: NightResult, subject: Subject, notes: Sequence[Note]) -> None:
    tz, s, fig = subject.time_zone, r.sleep, r.figures()
    pages.new_page()
    pages.line(f"Night of {night_date(r.start, tz):%A %d %B %Y}", HEAD_PT + 2, bold=True)
    sensors = ", ".join(f"{leg.side} {leg.sample_rate_hz:g} Hz ({leg.coverage:.0%} data)"
                        for leg in r.legs)
    pages.line(f"Recording {_clock(r.start, tz, '%Y-%m-%d %H:%M')} to "
               f"{_clock(r.end, tz, '%Y-%m-%d %H:%M')} ({(r.end - r.start) / 3600:.1f} h); "
               f"sensors: {sensors}")
    onset, offset = s.onset_epoch, s.offset_epoch
    figures = [
        ("Total sleep", f"{s.total_sleep_min / 60:.1f} h ({s.total_sleep_min:g} min)"),
        ("Sleep efficiency", f"{s.efficiency:.0%}"),
        ("Sleep onset", "none" if onset is None else _clock(r.start + onset * EPOCH_S, tz)),
        ("Final awakening",
         "none" if offset is None else _clock(r.start + (offset + 1) * EPOCH_S, tz)),
        ("Wake after sleep onset", f"{s.waso_min:.0f} min"),
        ("Awakenings (>= 1 min)", str(s.awakenings)),
        ("PLMS index", f"{fig.plm_index:.1f} /h of sleep"),
        ("PLMS (both legs)", f"{r.plm.count} ({_rules(r)})"),
        ("Periodicity index", _pi(r) + (" (too few LMs)" if _pi(r) == "n/a" else "")),
        ("LM index (CLM in sleep)", f"{r.plm.lm_index:.1f} /h"),
        ("PLM series", str(len(r.plm_series))),
        ("Brief jerks in sleep", str(r.brief_jerks)),
        ("Tremor", f"{len(r.tremor)} episodes, {fig.tremor_min:.1f} min"),
        ("Sensor off the ankle", f"{fig.nonwear_min:.0f} min"),
        ("Data coverage", f"{fig.coverage:.0%}"),
        ("Age", _age(subject, r.start)),
        ("Sleep-onset latency", _latency(r)),
        ("PLMW index", "no wake" if r.plmw_index is None else f"{r.plmw_index:.1f} /h of wake"),
        ("Kicking settling / later", _kicking(r)),
        ("Jerk clusters", f"{len(r.jerk_clusters)} ({sum(c.count for c in r.jerk_clusters)} "
                          "jerks)"),
    ]
    pages.heading("Summary")
    pages.table(None, [[*figures[k], *figures[k + 1]]
                                   for k in range(0, len(figures), 2)], [44, 43, 44, 43])
    pages.paragraph(
        "Sleep-onset latency: from the caregiver's lights-out note when there is one before "
        "sleep, else from when the sensor went on. Kicking settling / later: minutes of "
        "PLM-like series (the PLM rules applied in wake) before the first sleep / while "
        "returning to sleep after awakenings; PLMW index: periodic LMs per hour of wake.",
        SMALL_PT)
    pages.heading("Flags")
    if r.flags:
        pages.table(["severity", "code", "what it means"],
                    [[f.severity, f.code, f.message] for f in r.flags], [17, 40, 117])
    else:
        pages.paragraph("No flags were raised for this night.")
    pages.heading("Each leg")
    pages.table(["leg", "rate Hz", "data", "LMs", "in sleep", "PLM", "jerks", "tremor", "off",
                 "gaps"], [_leg_row(r, leg.side) for leg in r.legs], [17.4] * 10)
    pages.paragraph(
        "LMs: leg movements of 0.5 s or more; in sleep: starting in sleep; PLM: LMs in sleep "
        "that are part of a PLM series (a movement of both legs appears on both, so the legs "
        "add up to more than the PLMS count); jerks: brief jerks in sleep; minutes of tremor "
        "(episodes on this leg, both-leg episodes on each), of the sensor off the ankle, and of "
        "gaps (no data for more than 1 s).", SMALL_PT)
    _picture(pages, r)
    pages.heading("Inter-movement intervals in sleep", keep_mm=IMI_MM)
    _imi(pages.axes(IMI_MM, inset=(14, 9)), r)
    pages.heading("Tremor episodes")
    if r.tremor:
        pages.table(["start", "end", "duration", "side", "frequency"],
                    [[_clock(t.start, tz, "%H:%M:%S"), _clock(t.end, tz, "%H:%M:%S"),
                      f"{t.duration_s:.0f} s", t.side, f"{t.frequency_hz:.1f} Hz"]
                     for t in r.tremor], [25, 25, 25, 25, 74])
    else:
        pages.paragraph("No tremor episodes were found.")
    pages.heading("Journal notes")
    if notes:
        pages.table(["time", "h from start", "kind", "note"],
                    [[_clock(n.time, tz), f"{(n.time - r.start) / 3600:.2f}", n.kind,
                      one_line(n.text)]
                     for n in sorted(notes, key=lambda n: n.time)], [20, 26, 30, 98])
    else:
        pages.paragraph("No notes for this night.")


def _latency(r: NightResult) -> str:
    first = r.first_settling
    if first is None:
        return "no sleep"
    return f"{first.minutes:.0f} min " + (
        "(from lights out)" if r.lights_out is not None else "(from sensor on)")


def _kicking(r: NightResult) -> str:
    """Minutes of PLM-like series awake: the first settling / the returns to sleep."""
    first = r.first_settling
    returns = sum(p.kicking_min for p in r.settling if not p.first)
    return f"{0.0 if first is None else first.kicking_min:.0f} / {returns:.0f} min"


def _leg_row(r: NightResult, side: str) -> list[str]:
    leg = next(leg for leg in r.legs if leg.side == side)
    tremor_s = sum(t.duration_s for t in r.tremor if t.side in (side, "bilateral"))
    return [side, f"{leg.sample_rate_hz:g}", f"{leg.coverage:.0%}", str(len(leg.lms)),
            str(sum(m.in_sleep for m in leg.lms)),
            str(sum(m.in_sleep and m.periodic for m in leg.lms)),
            str(sum(j.in_sleep for j in leg.jerks)), f"{tremor_s / 60:.1f}",
            f"{sum(b - a for a, b in leg.nonwear) / 60:.0f}",
            f"{sum(b - a for a, b in leg.gaps) / 60:.1f}"]


def _picture(pages: _Pages, r: NightResult) -> None:
    with tempfile.TemporaryDirectory() as tmp, _PYPLOT:
        image = imread(draw_night(r, Path(tmp) / "night.png"))
    height = CONTENT_MM * image.shape[0] / image.shape[1]
    pages.heading("The night", keep_mm=height)
    ax = pages.axes(height)
    ax.imshow(image, interpolation="antialiased")
    ax.set_axis_off()


def _imi(ax: Axes, r: NightResult) -> None:
    edges = r.plm.imi_edges_s
    ax.bar(edges[:-1], r.plm.imi_counts, width=edges[1] - edges[0], align="edge",
           color="#3b6ea5")
    low = MIN_IMI_S[r.rules]
    ax.axvspan(low, MAX_IMI_S, color="#c0392b", alpha=0.08, linewidth=0)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_ylim(0, max(1, *r.plm.imi_counts) * 1.1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if not any(r.plm.imi_counts):
        ax.text(0.5, 0.5, "no intervals between LMs in sleep", transform=ax.transAxes,
                ha="center", va="center", fontsize=BODY_PT)
    ax.set_xlabel(f"interval from one LM onset to the next, s (2-s bins; shaded: "
                  f"{low:g}-{MAX_IMI_S:g} s, the PLM range)", fontsize=SMALL_PT)
    ax.set_ylabel("count", fontsize=SMALL_PT)
    ax.tick_params(labelsize=SMALL_PT)


def _rules(r: NightResult) -> str:
    return {"wasm2016": "WASM 2016", "aasm": "AASM"}[r.rules]


def _pi(r: NightResult) -> str:
    pi = r.plm.periodicity_index
    return "n/a" if pi is None else f"{pi:.2f}"


def _age(subject: Subject, at: float) -> str:
    months = subject.age_months(at)
    if months is None:
        return "not known (children's thresholds used)"
    if months < 24:
        return f"{months:.0f} months"
    return f"{int(months // 12)} years {int(months % 12)} months"


def _clock(t: float, time_zone: str, fmt: str = "%H:%M") -> str:
    return datetime.fromtimestamp(t, ZoneInfo(time_zone)).strftime(fmt)


def _line_mm(size_pt: float) -> float:
    return size_pt * _MM_PER_PT * 1.45


def _wrap(text: str, width_mm: float, size_pt: float) -> list[str]:
    return textwrap.wrap(text, max(8, int(width_mm / (size_pt * _MM_PER_PT * _CHAR_EM))))
