"""Charts people read: a campaign of 20 and one of 100,000 (built straight through the store), a Persian
name, gaps without sends, the cancel; drawn to PNG and looked at through their matplotlib figures."""

from __future__ import annotations

import struct
from datetime import timedelta

import pytest
from matplotlib import dates, font_manager

from campaigns.clock import utcnow
from campaigns.store import Store
from dispatcher.reports.chart import AWAITING, delivery_timeline
from dispatcher.reports.chart_operators import campaign_charts, draw_operator_chart, operators_path
from dispatcher.reports.chart_text import PERSIAN_FAMILY, register_font, shaped
from dispatcher.reports.outcomes import operator_outcomes
from tests.support.campaign_builder import START, build_campaign


@pytest.fixture
def sqlite_store(tmp_path) -> Store:
    store = Store.from_url(f"sqlite:///{tmp_path / 'charts.db'}")
    store.migrate()
    return store


def _png_size(path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def _axes(store: Store, cid: int, path):
    import matplotlib

    matplotlib.use("Agg")
    from dispatcher.reports import chart

    figs = []
    real = chart.draw_delivery_chart

    def keep(*args, **kwargs):  # the figure the use case drew, to look at its axes
        figs.append(real(*args, **kwargs))
        return figs[-1]

    chart_module_draw = "dispatcher.reports.chart_operators.draw_delivery_chart"
    mp = pytest.MonkeyPatch()
    mp.setattr(chart_module_draw, keep)
    try:
        written = campaign_charts(store, store.campaign(cid), path, utcnow())
    finally:
        mp.undo()
    return figs[0].axes[0], written


def test_twenty_recipients_fill_the_chart_with_whole_recipients(sqlite_store, tmp_path):
    cid = build_campaign(sqlite_store, 20, span=8)
    ax, written = _axes(sqlite_store, cid, tmp_path / "small.png")
    assert written == [tmp_path / "small.png", tmp_path / "small-operators.png"]
    assert _png_size(written[0]) == (1100, 605)
    ticks = [t for t in ax.get_yticks() if 0 <= t <= ax.get_ylim()[1]]
    assert all(float(t).is_integer() for t in ticks) and len(ticks) >= 3  # no 2.5 recipients
    assert 20 <= ax.get_ylim()[1] < 25  # the lines use the height
    # the x axis is clock time in Tehran, spanning the campaign with a small margin on each side
    label = ax.get_xlabel()
    assert label.startswith("Tehran time (UTC+03:30), 2026-11-26 (1405/09/05)")
    left, right = (dates.num2date(x) for x in ax.get_xlim())
    finished = sqlite_store.campaign(cid).finished_at
    assert left < START < left + timedelta(seconds=2) and finished < right < finished + timedelta(seconds=2)
    ax.figure.canvas.draw()
    assert ax.get_xticklabels()[1].get_text().startswith("11:30:")  # 08:00 UTC is 11:30 in Tehran
    assert any(line.get_marker() == "o" for line in ax.get_lines())  # each change of a small campaign shows


def test_a_hundred_thousand_recipients_with_a_pause_and_thousands_separators(sqlite_store, tmp_path):
    cid = build_campaign(sqlite_store, 100_000, span=3 * 3600, gap=(3600, 5400))
    ax, written = _axes(sqlite_store, cid, tmp_path / "big.png")
    assert _png_size(written[0]) == (1100, 605) and written[1].stat().st_size > 0
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "100,000" in labels or any("," in s for s in labels)
    assert all(float(t).is_integer() for t in ax.get_yticks())
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "no sends (paused, window closed or backing off)" in legend
    assert not any(line.get_marker() == "o" for line in ax.get_lines())  # too many steps for dots
    timeline = delivery_timeline(sqlite_store.timeline_rows(cid), START, 10.8)
    assert timeline.gaps and timeline.gaps[0][0] < 3600 < 5400 <= timeline.gaps[0][1] + 11
    assert (
        sum(v for k, v in timeline.final().items() if k != AWAITING) + timeline.final()[AWAITING] == 100_000
    )


def test_a_persian_name_is_drawn_with_the_persian_font_and_the_cancel_marked(sqlite_store, tmp_path):
    name = "کمپین تخفیف پاییزه ۱۴۰۵"
    cid = build_campaign(sqlite_store, 300, span=900, name=name, message="سلام", state="cancelled")
    ax, written = _axes(sqlite_store, cid, tmp_path / "fa.png")
    title = ax.get_title()
    assert name in shaped(title, engine_shapes=True) and ax.title.get_text() == shaped(ax.title.get_text())
    path = font_manager.findfont(
        font_manager.FontProperties(family=register_font()), fallback_to_default=False
    )
    assert "NotoSansArabic" in path  # the font the project installs, not the host's
    assert register_font()[0] == PERSIAN_FAMILY
    texts = [t.get_text() for t in ax.texts]
    assert any(t.startswith("cancelled ") for t in texts)
    ax.figure.canvas.draw()  # no missing-glyph warnings turned errors: every letter is in the font


def test_shaping_is_left_to_matplotlib_when_it_shapes_and_done_otherwise():
    text = "کمپین (ویژه)"
    assert shaped(text, engine_shapes=True) == text
    assert shaped("plain", engine_shapes=False) == "plain"
    pytest.importorskip("arabic_reshaper")
    pytest.importorskip("bidi")
    drawn = shaped(text, engine_shapes=False)
    assert drawn != text and any(0xFB50 <= ord(c) <= 0xFEFF for c in drawn)  # joined presentation forms


def test_operator_chart_stacks_each_operators_outcomes(tmp_path):
    pairs = [("+989121234567", "delivered")] * 3 + [("+989351234567", "failed"), ("+14155550100", "pending")]
    by_operator = operator_outcomes(pairs)
    fig = draw_operator_chart(by_operator, tmp_path / "ops.svg", "Campaign 1 (کمپین) via ghasedak")
    ax = fig.axes[0]
    assert [t.get_text().split(" ")[0] for t in ax.get_yticklabels()] == ["MCI", "Irancell", "other"]
    widths = [p.get_width() for p in ax.patches]
    assert pytest.approx(sum(widths)) == 3.0  # each bar is the whole of its operator
    assert (tmp_path / "ops.svg").read_text().startswith("<?xml")
    assert operators_path(tmp_path / "d.png") == tmp_path / "d-operators.png"


def test_a_campaign_of_seconds_has_ticks_in_tenths_that_differ(tmp_path):
    from dispatcher.reports.chart import draw_delivery_chart

    rows = [("delivered", START + timedelta(seconds=0.1 * i), START + timedelta(seconds=1 + 0.1 * i), None)
            for i in range(20)]  # fmt: skip
    timeline = delivery_timeline(rows, START, 0.1)
    fig = draw_delivery_chart(timeline, tmp_path / "s.png", "seconds", end=START + timedelta(seconds=3))
    ax = fig.axes[0]
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert len(labels) >= 3 and len(set(labels)) == len(labels)  # not the same second over and over
    assert labels[1].startswith("11:30:0") and "." in labels[1]
