"""Delivery over time, by state: a pure time series from the store's rows, and a thin matplotlib drawing.

`delivery_timeline` reads (state, sent_at, delivered_at, updated_at) rows streamed from the store and
returns cumulative counts per final state (delivered, undelivered, failed, blacklisted, expired) and
of recipients sent and still awaiting their report, at each second since the campaign started.
A final outcome counts at `delivered_at` (the provider's report time) or, without one, at the row's
last update; never before its own send. `draw_delivery_chart` needs matplotlib (the `chart` extra)
and draws with the Agg renderer: no display, no pyplot global state.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from campaigns.states import RecipientState
from campaigns.windows import TEHRAN

R = RecipientState
CHART_STATES = (R.DELIVERED, R.UNDELIVERED, R.FAILED, R.BLACKLISTED, R.EXPIRED)
AWAITING = "sent, awaiting a report"
STILL_AWAITING = frozenset({R.SENT, R.SENT_TO_OPERATOR})
COLOURS = {
    R.DELIVERED: "#2e7d32",
    R.UNDELIVERED: "#ef6c00",
    R.FAILED: "#c62828",
    R.BLACKLISTED: "#4a148c",
    R.EXPIRED: "#757575",
    AWAITING: "#1565c0",
}

Row = tuple[str, datetime | None, datetime | None, datetime | None]


@dataclass(frozen=True)
class Timeline:
    start: datetime
    times: list[float]  # seconds since `start`, ascending: the moments something changed
    series: dict[str, list[int]]  # label -> cumulative count at each of `times`

    def final(self) -> dict[str, int]:
        return {label: values[-1] if values else 0 for label, values in self.series.items()}


def resolution_for(start: datetime, end: datetime, points: int = 1000) -> float:
    """Seconds per step so that a campaign of any length draws in about `points` steps (at least 0.1 s)."""
    return max((end - start).total_seconds() / points, 0.1)


def delivery_timeline(rows: Iterable[Row], start: datetime, resolution: float = 1.0) -> Timeline:
    """Cumulative recipients per final state, and sent-awaiting, per `resolution` seconds since `start`."""
    steps: dict[str, Counter[int]] = defaultdict(Counter)

    def bucket(at: datetime) -> int:
        return max(math.floor((at - start).total_seconds() / resolution), 0)

    for state, sent_at, delivered_at, updated_at in rows:
        sent = bucket(sent_at) if sent_at is not None else None
        if sent is not None:
            steps[AWAITING][sent] += 1
        if state in CHART_STATES:
            at = delivered_at or updated_at or sent_at
            if at is None:
                continue
            done = bucket(at) if sent is None else max(bucket(at), sent)
            steps[state][done] += 1
            if sent is not None:
                steps[AWAITING][done] -= 1
        elif sent is not None and state not in STILL_AWAITING:
            steps[AWAITING][sent] -= 1  # sent, then held unknown or cancelled: no report to wait for
    keys = sorted({k for counter in steps.values() for k in counter})
    series: dict[str, list[int]] = {}
    for label in (*CHART_STATES, AWAITING):
        total, values = 0, []
        for k in keys:
            total += steps[label][k]
            values.append(total)
        series[str(label)] = values
    return Timeline(start, [k * resolution for k in keys], series)


def draw_delivery_chart(timeline: Timeline, out: Path, title: str) -> None:
    """A PNG (or SVG/PDF, by the file's suffix) of the timeline: one step line per state."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    span = timeline.times[-1] if timeline.times else 0.0
    unit, scale = (
        ("seconds", 1.0) if span <= 180 else ("minutes", 60.0) if span <= 3 * 3600 else ("hours", 3600.0)
    )
    fig = Figure(figsize=(10, 5.5), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    xs = [0.0] + [t / scale for t in timeline.times]
    for label, values in timeline.series.items():
        if not any(values):
            continue
        ax.step(
            xs,
            [0, *values],
            where="post",
            label=f"{label} ({values[-1]})",
            color=COLOURS.get(label),
            linestyle="--" if label == AWAITING else "-",
            linewidth=2,
        )
    ax.set_title(title)
    ax.set_xlabel(
        f"{unit} since the campaign started ({timeline.start.astimezone(TEHRAN):%Y-%m-%d %H:%M} Tehran time)"
    )
    ax.set_ylabel("recipients (cumulative)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", title="state (final count)")
    fig.savefig(out)
