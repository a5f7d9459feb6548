"""Server-rendered SVG charts: no JavaScript library to ship, readable without scripts."""

from __future__ import annotations

from dataclasses import dataclass

ROW = 26  # px per bar
LABEL_W = 120  # the narrowest label column
LABEL_MAX_W = 220
CHAR_W = 6.5  # px per character of a label at the chart's font size
BAR_W = 240
VALUE_W = 60  # room for the number after the longest bar


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
    width: int = LABEL_W + BAR_W + VALUE_W


def bar_chart(rows: list[tuple[str, int, str]]) -> BarChart:
    """Horizontal bars scaled to the largest value."""
    top = max((v for _, v, _ in rows), default=0) or 1
    bars = [
        Bar(label, value, color, i * ROW, round(BAR_W * value / top)) for i, (label, value, color) in enumerate(rows)
    ]
    # the label column grows with the longest label, so "fix available, not approved" is not cut off
    label_w = min(LABEL_MAX_W, max(LABEL_W, round(CHAR_W * max((len(r[0]) for r in rows), default=0)) + 8))
    return BarChart(
        bars=bars, height=max(ROW, ROW * len(bars)), label_w=label_w, bar_x=label_w, width=label_w + BAR_W + VALUE_W
    )
