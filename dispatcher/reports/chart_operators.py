"""Outcomes by operator as stacked bars, and the use case that draws both charts of a campaign.

`draw_operator_chart`: one horizontal bar per operator (MCI, Irancell, Rightel, other; an estimate by
number prefix, `campaigns.operators`), split into the recipients' outcomes as shares of that
operator's recipients, so a 20-recipient and a 200,000-recipient campaign read the same; the counts
are in the bar labels. `campaign_charts` reads the store and writes `FILE` (delivery over time) and
`FILE-operators.SUFFIX` (this chart).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from campaigns.operators import PERSIAN_NAMES, Operator
from campaigns.states import CampaignState, RecipientState
from campaigns.store import CampaignView, Store
from dispatcher.reports.chart import COLOURS, delivery_timeline, draw_delivery_chart, resolution_for
from dispatcher.reports.chart_text import register_font, shaped
from dispatcher.reports.outcomes import DESCRIPTIONS, operator_outcomes

R = RecipientState
AWAITING_LABEL = "awaiting a report"
# Segments left to right; the states in one segment are added together.
SEGMENTS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("delivered", (R.DELIVERED,), COLOURS[R.DELIVERED]),
    ("undelivered", (R.UNDELIVERED,), COLOURS[R.UNDELIVERED]),
    ("blacklisted", (R.BLACKLISTED,), COLOURS[R.BLACKLISTED]),
    ("failed", (R.FAILED, R.REJECTED), COLOURS[R.FAILED]),
    ("expired", (R.EXPIRED,), COLOURS[R.EXPIRED]),
    (AWAITING_LABEL, (R.SENT, R.SENT_TO_OPERATOR), "#90caf9"),
    ("unknown", (R.UNKNOWN,), "#fdd835"),
    ("cancelled / not sent", (R.CANCELLED, R.PENDING), "#e0e0e0"),
)
LABEL_SHARE = 0.06  # a segment this wide or wider gets its percentage written on it


def operators_path(chart: Path) -> Path:
    """Where the operator chart of `chart` goes: `delivery.png` -> `delivery-operators.png`."""
    return chart.with_name(f"{chart.stem}-operators{chart.suffix}")


def _persian_word(label: str) -> str:
    state = {"failed": R.FAILED, AWAITING_LABEL: R.SENT, "cancelled / not sent": R.CANCELLED}.get(
        label, label
    )
    try:
        return DESCRIPTIONS[RecipientState(state)][1].split("(")[0].split(":")[0].split("،")[0].strip()
    except ValueError:
        return ""


def draw_operator_chart(by_operator: dict[Operator, Counter[str]], out: Path, title: str) -> Any:
    """Stacked horizontal bars of outcome shares per operator; PNG or SVG by the file's suffix.
    Returns the matplotlib Figure drawn (already saved)."""
    import matplotlib
    from matplotlib import ticker
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    operators = [op for op in Operator if sum(by_operator.get(op, Counter()).values())] or list(Operator)
    with matplotlib.rc_context({"font.family": register_font()}):
        fig = Figure(figsize=(10, 1.6 + 0.75 * len(operators)), dpi=110, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        names = [
            shaped(f"{op} ({sum(by_operator.get(op, Counter()).values()):,}) · {PERSIAN_NAMES[op]}")
            for op in operators
        ]
        left = [0.0] * len(operators)
        for label, states, colour in SEGMENTS:
            counts = [sum(by_operator.get(op, Counter()).get(s, 0) for s in states) for op in operators]
            totals = [sum(by_operator.get(op, Counter()).values()) for op in operators]
            shares = [c / t if t else 0.0 for c, t in zip(counts, totals, strict=True)]
            if not any(counts):
                continue
            word = _persian_word(label)
            bars = ax.barh(
                names,
                shares,
                left=left,
                color=colour,
                edgecolor="white",
                label=shaped(f"{label} · {word}" if word else label),
            )
            for bar, share, count in zip(bars, shares, counts, strict=True):
                if share >= LABEL_SHARE:
                    ax.text(
                        bar.get_x() + bar.get_width() / 2,
                        bar.get_y() + bar.get_height() / 2,
                        f"{share:.0%}\n{count:,}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if colour not in ("#e0e0e0", "#fdd835", "#90caf9") else "black",
                    )
            left = [a + b for a, b in zip(left, shares, strict=True)]
        ax.set_xlim(0, 1)
        ax.xaxis.set_major_formatter(ticker.PercentFormatter(1.0))
        ax.invert_yaxis()  # MCI on top, in Operator order
        ax.set_xlabel("share of the operator's recipients (operator by number prefix: an estimate)")
        ax.set_title(shaped(title))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), title="outcome", fontsize=9)
        fig.savefig(out)
    return fig


def campaign_title(view: CampaignView, what: str) -> str:
    """`Campaign 3 (name) via ghasedak: what`; the name in any script (shaped when drawn)."""
    return f"Campaign {view.id} ({view.name}) via {view.provider}: {what}"


def campaign_charts(store: Store, view: CampaignView, chart: Path, now: datetime) -> list[Path]:
    """Draw delivery over time to `chart` and outcomes by operator next to it; the paths written."""
    start = view.started_at or view.created_at
    end = view.finished_at or now
    timeline = delivery_timeline(store.timeline_rows(view.id), start, resolution_for(start, end))
    draw_delivery_chart(
        timeline,
        chart,
        campaign_title(view, "delivery over time"),
        end=end,
        total=view.recipients,
        cancelled_at=view.finished_at if view.state == CampaignState.CANCELLED else None,
        paused=view.state == CampaignState.PAUSED,
    )
    pairs = ((r["phone"], r["state"]) for r in store.recipients_rows(view.id))
    second = operators_path(chart)
    draw_operator_chart(operator_outcomes(pairs), second, campaign_title(view, "outcomes by operator"))
    return [chart, second]
