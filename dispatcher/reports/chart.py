"""Delivery over time, by state: a pure time series from the store's rows, and a thin matplotlib drawing.

`delivery_timeline` reads (state, sent_at, delivered_at, updated_at) rows streamed from the store and
returns cumulative counts per final state (delivered, undelivered, failed, blacklisted, expired) and
of recipients sent and still awaiting their report, at each second since the campaign started.
A final outcome counts at `delivered_at` (the provider's report time) or, without one, at the row's
last update; never before its own send. `Timeline.gaps` are the stretches with no send at all
(`MIN_GAP` seconds or longer): the store keeps no history of pauses, so the chart marks these gaps
as "no sends (paused, window closed or backing off)", and the cancel at the campaign's finish time.

`draw_delivery_chart` needs matplotlib (the `chart` extra) and draws with the Agg renderer: no
display, no pyplot global state. The x axis is Tehran clock time (the zone and the Jalali date in
its label), the y axis whole recipients with thousands separators, readable from 20 recipients to
hundreds of thousands; Persian text is shaped (`dispatcher.reports.chart_text`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from campaigns.states import RecipientState
from campaigns.windows import TEHRAN
from dispatcher.humane import jalali
from dispatcher.reports.chart_text import register_font, shaped
from dispatcher.reports.outcomes import DESCRIPTIONS

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
MIN_GAP = 60.0  # seconds without a send that the chart marks (a rate limit's waits are shorter)
GAP_STEPS = 20  # ... and at least this many steps of the timeline, so a gap is wide enough to see
MARKERS_UP_TO = 60  # steps; fewer than this and each change gets a dot (a small campaign stays legible)


@dataclass(frozen=True)
class Timeline:
    start: datetime
    times: list[float]  # seconds since `start`, ascending: the moments something changed
    series: dict[str, list[int]]  # label -> cumulative count at each of `times`
    gaps: tuple[tuple[float, float], ...] = ()  # (from, to) seconds since `start` with no send
    last_send: float | None = None  # seconds since `start` of the last send

    def final(self) -> dict[str, int]:
        return {label: values[-1] if values else 0 for label, values in self.series.items()}


def resolution_for(start: datetime, end: datetime, points: int = 1000) -> float:
    """Seconds per step so that a campaign of any length draws in about `points` steps (at least 0.1 s)."""
    return max((end - start).total_seconds() / points, 0.1)


def delivery_timeline(rows: Iterable[Row], start: datetime, resolution: float = 1.0) -> Timeline:
    """Cumulative recipients per final state, and sent-awaiting, per `resolution` seconds since `start`."""
    steps: dict[str, Counter[int]] = defaultdict(Counter)
    sent_buckets: Counter[int] = Counter()

    def bucket(at: datetime) -> int:
        return max(math.floor((at - start).total_seconds() / resolution), 0)

    for state, sent_at, delivered_at, updated_at in rows:
        sent = bucket(sent_at) if sent_at is not None else None
        if sent is not None:
            steps[AWAITING][sent] += 1
            sent_buckets[sent] += 1
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
    sends = sorted(k for k, n in sent_buckets.items() if n)
    least = max(MIN_GAP, GAP_STEPS * resolution) / resolution
    gaps = tuple((a * resolution, b * resolution) for a, b in pairwise(sends) if b - a >= least)
    keys = sorted({k for counter in steps.values() for k in counter})
    series: dict[str, list[int]] = {}
    for label in (*CHART_STATES, AWAITING):
        total, values = 0, []
        for k in keys:
            total += steps[label][k]
            values.append(total)
        series[str(label)] = values
    return Timeline(
        start, [k * resolution for k in keys], series, gaps, sends[-1] * resolution if sends else None
    )


def legend_label(label: str, count: int) -> str:
    """`delivered (1,234) · تحویل شد`: the state, its final count, its Persian words (last, so the
    right-to-left run stands alone)."""
    state = R.SENT if label == AWAITING else label
    persian = {str(k): v[1] for k, v in DESCRIPTIONS.items()}.get(state, "")
    word = persian.split("(")[0].split(":")[0].split("،")[0].strip()
    return shaped(f"{label} ({count:,}) · {word}" if word else f"{label} ({count:,})")


def _clock_axis(ax: Any, start: datetime, end: datetime) -> None:
    """x axis in Tehran clock time: ticks matplotlib picks for the span, the zone and dates in the label."""
    from matplotlib import dates

    span = (end - start).total_seconds()
    fmt = "%H:%M:%S" if span <= 900 else "%H:%M" if span <= 2 * 86400 else "%m-%d %H:%M"
    ax.xaxis.set_major_locator(dates.AutoDateLocator(tz=TEHRAN, minticks=4, maxticks=9))
    if span < 20:  # a campaign of seconds: tenths of a second, or every tick reads the same

        def tenths(x: float, _: Any) -> str:
            at = dates.num2date(x, tz=TEHRAN)
            return f"{at:%H:%M:%S}.{at.microsecond // 100_000}"

        ax.xaxis.set_major_formatter(tenths)
    else:
        ax.xaxis.set_major_formatter(dates.DateFormatter(fmt, tz=TEHRAN))
    local = start.astimezone(TEHRAN)
    offset = local.strftime("%z")
    days = f"{local:%Y-%m-%d} ({jalali(start)[:10]})"
    if end.astimezone(TEHRAN).date() != local.date():
        days += f" to {end.astimezone(TEHRAN):%Y-%m-%d} ({jalali(end)[:10]})"
    ax.set_xlabel(f"Tehran time (UTC{offset[:3]}:{offset[3:]}), {days}")


def draw_delivery_chart(
    timeline: Timeline,
    out: Path,
    title: str,
    *,
    end: datetime | None = None,
    total: int | None = None,
    cancelled_at: datetime | None = None,
    paused: bool = False,
) -> Any:
    """A PNG (or SVG/PDF, by the file's suffix) of the timeline: one step line per state, over Tehran time.

    `end`: where the x axis ends (the campaign's finish, or now); `total`: recipients (the y axis
    reaches it); `cancelled_at`: a marked cancel; `paused`: the campaign is paused now (the stretch
    after its last send is marked so). Returns the matplotlib Figure drawn (already saved).
    """
    import matplotlib
    from matplotlib import dates, ticker
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    last = timeline.start + timedelta(seconds=timeline.times[-1] if timeline.times else 0.0)
    end = max(end or last, last, timeline.start + timedelta(seconds=1))
    span = (end - timeline.start).total_seconds()
    with matplotlib.rc_context({"font.family": register_font(), "axes.unicode_minus": False}):
        fig = Figure(figsize=(10, 5.5), dpi=110, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        xs = [timeline.start + timedelta(seconds=t) for t in [0.0, *timeline.times]] + [end]
        marker = "o" if len(timeline.times) <= MARKERS_UP_TO else None
        for label, values in timeline.series.items():
            if not any(values):
                continue
            ax.step(
                xs,
                [0, *values, values[-1]],
                where="post",
                label=legend_label(label, values[-1]),
                color=COLOURS.get(label),
                linestyle="--" if label == AWAITING else "-",
                linewidth=2,
                marker=marker,
                markersize=4,
            )
        for i, (a, b) in enumerate(timeline.gaps):
            ax.axvspan(
                timeline.start + timedelta(seconds=a),
                timeline.start + timedelta(seconds=b),
                color="#9e9e9e",
                alpha=0.2,
                label="no sends (paused, window closed or backing off)" if i == 0 else None,
            )
        if paused and timeline.last_send is not None:
            ax.axvspan(
                timeline.start + timedelta(seconds=timeline.last_send),
                end,
                color="#ffb300",
                alpha=0.2,
                label="paused now",
            )
        if cancelled_at is not None:
            ax.axvline(cancelled_at, color="#c62828", linestyle=":", linewidth=2)
            ax.annotate(
                f"cancelled {cancelled_at.astimezone(TEHRAN):%H:%M:%S}",
                (dates.date2num(cancelled_at), 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(-4, -4),
                textcoords="offset points",
                ha="right",
                va="top",
                color="#c62828",
            )
        ax.set_title(shaped(title))
        _clock_axis(ax, timeline.start, end)
        ax.set_ylabel("recipients (cumulative)")
        # a little room on the left, more on the right: the final counts are read off the lines' ends
        ax.set_xlim(timeline.start - timedelta(seconds=span * 0.02), end + timedelta(seconds=span * 0.06))
        top = max(
            [
                total or 0,
                *(v[-1] for v in timeline.series.values() if v),
                *(max(v) for v in timeline.series.values() if v),
                1,
            ]
        )
        ax.set_ylim(0, top * 1.06)
        ax.yaxis.set_major_locator(ticker.MaxNLocator(integer=True, min_n_ticks=3))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda y, _: f"{int(y):,}"))
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="state (final count)", fontsize=9)
        fig.savefig(out)
    return fig
