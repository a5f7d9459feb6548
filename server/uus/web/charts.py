"""Server-rendered SVG charts: no JavaScript library to ship, readable without scripts."""

from __future__ import annotations

from dataclasses import dataclass

ROW = 26  # px per bar
LABEL_W = 120
BAR_W = 240


@dataclass
class Bar:
    label: str
    value: int
    color: str
    y: int = 0
    width: int = 0


@dataclass
class BarChart:
    bars: list[Bar]
    height: int
    label_w: int = LABEL_W
    bar_x: int = LABEL_W


def bar_chart(rows: list[tuple[str, int, str]]) -> BarChart:
    """Horizontal bars scaled to the largest value."""
    top = max((v for _, v, _ in rows), default=0) or 1
    bars = [
        Bar(label, value, color, i * ROW, round(BAR_W * value / top)) for i, (label, value, color) in enumerate(rows)
    ]
    return BarChart(bars=bars, height=max(ROW, ROW * len(bars)))
