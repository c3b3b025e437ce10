"""Delivery over time: the pure series from rows, and the chart of a real campaign (embedded, SQLite)."""

from __future__ import annotations

import json
import struct
from collections import Counter
from datetime import UTC, datetime, timedelta

from campaigns.store import Store
from dispatcher.reports.chart import AWAITING, delivery_timeline, resolution_for
from tests.support.cli import run_cli
from tests.test_status_cli import cli_env  # noqa: F401 - the fixture

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_timeline_counts_each_outcome_when_it_happened():
    rows = [
        ("delivered", at(1), at(5), at(6)),  # sent at 1 s, delivered at 5 s (the report's own time)
        ("delivered", at(1.5), None, at(9)),  # no report time: its last update
        ("undelivered", at(2), at(4), at(4)),
        ("failed", None, None, at(3)),  # failed before any send (a failed chunk)
        ("blacklisted", at(2), at(2), at(2)),  # refused at send
        ("expired", at(3), None, at(20)),
        ("sent", at(3), None, at(3)),  # still awaiting its report
        ("unknown", at(4), None, at(4)),  # sent, then held: nothing to wait for
        ("pending", None, None, at(0)),
        ("delivered", at(7), at(6), at(8)),  # a report dated before the send counts at the send
    ]
    t = delivery_timeline(rows, T0)
    assert t.times == [1, 2, 3, 4, 5, 7, 9, 20]
    s = t.series
    assert s["delivered"] == [0, 0, 0, 0, 1, 2, 3, 3]
    assert s["undelivered"] == [0, 0, 0, 1, 1, 1, 1, 1]
    assert s["failed"] == [0, 0, 1, 1, 1, 1, 1, 1]
    assert s["blacklisted"] == [0, 1, 1, 1, 1, 1, 1, 1]
    assert s["expired"] == [0, 0, 0, 0, 0, 0, 0, 1]
    # sent: 2 by 1 s, 4 by 2 s (one blacklisted at once), ...; the held unknown never waits
    assert s[AWAITING] == [2, 3, 5, 4, 3, 3, 2, 1]
    assert t.final() == {
        "delivered": 3,
        "undelivered": 1,
        "failed": 1,
        "blacklisted": 1,
        "expired": 1,
        AWAITING: 1,
    }


def test_resolution_keeps_about_a_thousand_steps():
    assert resolution_for(T0, at(5)) == 0.1
    assert resolution_for(T0, at(72 * 3600)) == 259.2


def test_timeline_of_nothing_is_empty():
    t = delivery_timeline([("pending", None, None, None)], T0)
    assert t.times == [] and all(v == [] for v in t.series.values())


def test_report_draws_the_chart_of_a_real_campaign(cli_env, capsys):  # noqa: F811
    code, out, err = run_cli(
        ["send", str(cli_env["src"]), "-p", "ghasedak", "-m", "Hi {name}", "--wait", "--json"], capsys
    )
    assert code == 0, err
    campaign = json.loads(out.strip().splitlines()[-1])["campaign"]
    png, report = cli_env["tmp"] / "delivery.png", cli_env["tmp"] / "r.csv"
    code, out, err = run_cli(["report", str(campaign), "--out", str(report), "--chart", str(png)], capsys)
    assert code == 0, err
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    assert (width, height) == (1100, 605)
    # the series ends where the campaign ended: each final state's count, nothing left awaiting
    store = Store.from_url(cli_env["db"])
    view = store.campaign(campaign)
    step = resolution_for(view.started_at, view.finished_at)
    assert step == 0.1  # a campaign of seconds: tenths of a second
    timeline = delivery_timeline(store.timeline_rows(campaign), view.started_at, step)
    counts = Counter(view.counts)
    assert timeline.final() == {
        "delivered": counts["delivered"],
        "undelivered": counts["undelivered"],
        "failed": counts["failed"],
        "blacklisted": counts["blacklisted"],
        "expired": counts["expired"],
        AWAITING: 0,
    }
    assert counts["delivered"] > 0 and max(timeline.series[AWAITING]) > 0


def test_bad_chart_name_is_exit_2_and_writes_nothing(cli_env, capsys):  # noqa: F811
    report = cli_env["tmp"] / "r.csv"
    code, _, err = run_cli(["report", "1", "--out", str(report), "--chart", "d.jpg"], capsys)
    assert code == 2 and "--chart d.jpg" in err and ".png" in err
    assert not report.exists()
