"""Line charts over time with a legend, drawn with plotext (monitoring.md §3.3, §3.4).

`LineChart` wraps textual-plotext's widget: `draw` replaces the series and
keeps what it drew in `series` (for tests); with no points the chart shows
its empty-state text instead of axes.
"""

from __future__ import annotations

import datetime
import math

from rich.text import Text
from textual.app import RenderResult
from textual_plotext import PlotextPlot

__all__ = ["LineChart", "Series", "count_ticks", "time_ticks"]

TICKS = 4
PERCENT_TICKS = [0.0, 25.0, 50.0, 75.0, 100.0]


class Series:
    """One line: its legend label, its colour and its values (one per time)."""

    def __init__(self, label: str, values: list[float], color: str) -> None:
        self.label = label
        self.values = values
        self.color = color


def time_ticks(times: list[datetime.datetime]) -> tuple[list[float], list[str]]:
    """Up to four evenly spaced x ticks over the times, labelled `HH:MM` (UTC)."""
    if not times:
        return [], []
    first, last = times[0].timestamp(), times[-1].timestamp()
    count = 1 if last <= first else TICKS
    ticks = [first + (last - first) * i / max(count - 1, 1) for i in range(count)]
    labels = [datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%H:%M") for t in ticks]
    return ticks, labels


def count_ticks(highest: float) -> list[float]:
    """Whole-number y ticks from 0 to just above `highest`, at most six."""
    top = max(1, math.ceil(highest))
    step = max(1, math.ceil(top / 5))
    return [float(v) for v in range(0, top + step, step)]


class LineChart(PlotextPlot):
    """Lines sharing one time axis, each with a legend entry."""

    def __init__(self, title: str, *, empty: str, percent: bool = False, id: str,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.chart_title = title
        self.empty = empty
        self.percent = percent  # y from 0 to 100
        self.times: list[datetime.datetime] = []
        self.series: list[Series] = []

    def legend(self) -> list[str]:
        return [s.label for s in self.series]

    def draw(self, times: list[datetime.datetime], series: list[Series],
             empty: str | None = None) -> None:
        """Show these lines over these times; with no times, the empty-state text."""
        if empty is not None:
            self.empty = empty
        self.times, self.series = times, series if times else []
        plt = self.plt
        plt.clear_figure()
        if self.chart_title:
            plt.title(self.chart_title)
        if times:
            xs = [t.timestamp() for t in times]
            marker = "braille" if len(times) > 1 else "●"  # one braille dot is hard to see
            for s in self.series:
                plt.plot(xs, s.values, label=s.label, color=s.color, marker=marker)
            plt.xticks(*time_ticks(times))
            ticks = PERCENT_TICKS if self.percent else count_ticks(
                max(v for s in self.series for v in s.values))
            plt.ylim(0, ticks[-1])
            plt.yticks(ticks)
        self.refresh()

    def render(self) -> RenderResult:
        if not self.times:
            head = f"{self.chart_title}\n" if self.chart_title else ""
            return Text(head + self.empty, style="dim")
        return super().render()
