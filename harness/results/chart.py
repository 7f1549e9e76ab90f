"""The report's timing chart: per cell, how long each stage took, as an inline SVG."""

from __future__ import annotations

import html
from dataclasses import dataclass

from harness.results.model import Cell


@dataclass
class TimingBar:
    cell: str
    build: float  # config + build
    boot: float
    test: float


def timing_bar(cell: Cell) -> TimingBar:
    def seconds(name: str) -> float:
        return cell.stage(name).seconds

    return TimingBar(
        cell.name, seconds("config") + seconds("build"), seconds("boot"), seconds("test")
    )


CHART_LABEL_WIDTH = 150


CHART_PANEL_WIDTH = 250


CHART_ROW_HEIGHT = 26


CHART_TOP = 30


# (TimingBar attribute, panel title, colour)
CHART_PANELS = (
    ("build", "config + build", "#4e79a7"),
    ("boot", "boot", "#f28e2b"),
    ("test", "test", "#59a14f"),
)


def format_seconds(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def timing_chart_svg(bars: list[TimingBar]) -> str:
    """Horizontal bars of build (config+build), boot and test time per cell, one panel
    per stage with its own scale, so a 3-minute build does not flatten a 2-second boot."""
    width = CHART_LABEL_WIDTH + CHART_PANEL_WIDTH * len(CHART_PANELS)
    height = CHART_TOP + CHART_ROW_HEIGHT * len(bars) + 8
    parts = [
        f'<svg id="timing-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="build, boot and test time per cell" font-family="sans-serif" font-size="12">'
    ]
    for row, bar in enumerate(bars):
        y = CHART_TOP + row * CHART_ROW_HEIGHT
        parts.append(f'<text x="0" y="{y + 15}" fill="#222">{html.escape(bar.cell)}</text>')
    for column, (stage, title, colour) in enumerate(CHART_PANELS):
        left = CHART_LABEL_WIDTH + column * CHART_PANEL_WIDTH
        parts.extend(_chart_panel(bars, stage, title, colour, left))
    parts.append("</svg>")
    return "\n".join(parts)


def _chart_panel(
    bars: list[TimingBar], stage: str, title: str, colour: str, left: int
) -> list[str]:
    values = [float(getattr(bar, stage)) for bar in bars]
    longest = max(values, default=0.0) or 1.0
    room = CHART_PANEL_WIDTH - 80  # leave space for the value's label
    parts = [
        f'<text x="{left}" y="16" font-weight="bold" fill="#222">{title}</text>',
        f'<line x1="{left}" y1="{CHART_TOP - 4}" x2="{left}" '
        f'y2="{CHART_TOP + CHART_ROW_HEIGHT * len(bars)}" stroke="#999"/>',
    ]
    for row, (bar, value) in enumerate(zip(bars, values, strict=True)):
        y = CHART_TOP + row * CHART_ROW_HEIGHT
        length = max(1.0, room * value / longest) if value else 0.0
        label = format_seconds(value)
        parts.append(
            f'<rect class="bar" data-cell="{html.escape(bar.cell)}" data-stage="{stage}" '
            f'x="{left}" y="{y + 3}" width="{length:.1f}" height="16" fill="{colour}">'
            f"<title>{html.escape(bar.cell)} {stage}: {label}</title></rect>"
        )
        parts.append(f'<text x="{left + length + 4:.1f}" y="{y + 15}" fill="#333">{label}</text>')
    return parts
