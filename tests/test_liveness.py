"""The pure parts of liveness and interruptions: the verdict, the dedup log, the Ctrl-C line; and the
heartbeat queries on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from campaigns.liveness import Heartbeat, HeartbeatSettings, Role, clock, liveness_of
from campaigns.store.heartbeats import (
    beat,
    forget,
    last_activity,
    live_service,
    orphans,
    read_liveness,
    senders_of,
)
from dispatcher.app.interrupt import interrupted_line
from dispatcher.engine.eventlog import Deduper

NOW = datetime(2026, 11, 29, 8, 22, 0, tzinfo=UTC)  # 11:52 in Tehran


def hb(seen_ago: float, role: str = "send", campaign: int | None = 13) -> Heartbeat:
    seen = NOW - timedelta(seconds=seen_ago)
    return Heartbeat(1, 4242, "host-a", role, campaign, seen, seen)


def test_a_live_sender_is_named_with_pid_host_and_age():
    live = liveness_of(13, "running", [hb(2)], NOW, distributed=False)
    assert not live.unattended
    assert live.detail == "sending in pid 4242 on host-a, seen 2 s ago"
    assert live.sender_json() == {
        "pid": 4242,
        "host": "host-a",
        "seen_at": (NOW - timedelta(seconds=2)).isoformat(),
    }


def test_nothing_sending_says_since_when_and_what_to_start():
    live = liveness_of(13, "running", [], NOW, distributed=False, last_seen=NOW - timedelta(minutes=30))
    assert live.unattended and live.sender is None
    assert live.detail == (
        "nothing has been sending this campaign since 11:22 +03:30; "
        "start `smsdispatch serve` or run `smsdispatch run 13`"
    )


def test_all_sent_and_nothing_polling_points_to_poll_not_run():
    live = liveness_of(13, "running", [], NOW, distributed=False, last_seen=NOW, pending=0)
    assert live.unattended and "smsdispatch poll --until-done" in (live.detail or "")
    assert "smsdispatch run" not in (live.detail or "")  # `run` has nothing left to send


def test_distributed_mode_warns_when_no_worker_takes_a_chunk():
    quiet = liveness_of(
        13, "running", [], NOW, distributed=True, queued_chunks=5, last_claim=NOW - timedelta(minutes=2)
    )
    assert quiet.unattended
    assert quiet.detail == "no worker has taken a chunk for 2 minutes; are workers running?"
    busy = liveness_of(13, "running", [], NOW, distributed=True, queued_chunks=5, last_claim=NOW)
    assert not busy.unattended


def test_a_scheduled_campaign_without_serve_says_nothing_will_start_it():
    live = liveness_of(13, "scheduled", [], NOW, distributed=False)
    assert not live.unattended and "nothing will start it" in (live.detail or "")
    served = liveness_of(13, "scheduled", [], NOW, distributed=False, service=hb(1, "serve", None))
    assert served.detail is None
    waited = liveness_of(13, "scheduled", [hb(2)], NOW, distributed=False)  # `send --at` waits for its time
    assert waited.sender is not None and not waited.unattended
    assert waited.detail == "waiting in pid 4242 on host-a to start it at its time, seen 2 s ago"


def test_clock_carries_the_tehran_offset():
    assert clock(NOW, NOW) == "11:52 +03:30"


def test_heartbeat_settings_refuse_a_stale_shorter_than_the_beat():
    with pytest.raises(ValueError, match="SMSDISPATCH_HEARTBEAT_STALE"):
        HeartbeatSettings.from_env({"SMSDISPATCH_HEARTBEAT_STALE": "1", "SMSDISPATCH_HEARTBEAT_EVERY": "2"})
    assert HeartbeatSettings.from_env({}).stale == 15.0


def test_a_repeated_line_is_said_once_then_counted():
    d = Deduper(every=300)
    assert d.offer("error: provider down", 0) == ["error: provider down"]
    assert all(d.offer("error: provider down", t) == [] for t in range(1, 28))
    out = d.offer("campaign 3 (x): completed", 30)
    assert out == ["error: provider down (repeated 27 more times in 1 min)", "campaign 3 (x): completed"]


def test_a_repeated_line_is_counted_again_after_the_period():
    d = Deduper(every=60)
    d.offer("x", 0)
    d.offer("x", 30)
    assert d.offer("x", 61) == ["x (repeated 2 more times in 1 min)"]


def test_the_ctrl_c_line_names_the_state_and_the_command():
    line = interrupted_line(13, "running", sent=240, total=4000, now=NOW)
    assert "campaign 13 left running with 240 of 4000 sent" in line
    assert "smsdispatch run 13 --wait" in line
    paused = interrupted_line(13, "paused", sent=1, total=2, now=NOW, reason="out of credit.")
    assert paused.endswith("(out of credit); to go on: smsdispatch resume 13")
    sched = interrupted_line(13, "scheduled", sent=0, total=2, now=NOW, send_at=NOW, wait=False)
    assert "scheduled for 11:52 +03:30" in sched and "smsdispatch run 13 " in sched
    served = interrupted_line(13, "running", sent=1, total=2, now=NOW, service=hb(1, "serve", None))
    assert "smsdispatch watch 13" in served


def test_heartbeat_queries(store):
    engine = store.engine
    now = datetime.now(UTC)
    serve_id = beat(engine, None, role=Role.SERVE, pid=1, host="h")
    assert live_service(engine, now, stale=15).id == serve_id
    sender = beat(
        engine, None, role=Role.SEND, campaign_id=7, pid=2, host="h", now=now - timedelta(seconds=60)
    )
    assert senders_of(engine, 7, now, 15) == []  # stale
    assert last_activity(engine, 7) == now - timedelta(seconds=60)
    beat(engine, sender, role=Role.SEND, campaign_id=7, now=now)
    assert [h.pid for h in senders_of(engine, 7, now, 15)] == [2]
    live = read_liveness(engine, 7, "running", now, distributed=False)
    assert live.sender is not None and live.sender.pid == 2
    forget(engine, sender)
    forget(engine, serve_id)
    assert live_service(engine, now, stale=15) is None
    assert orphans(engine, now, 15) == []  # no running campaign in this store


def test_compose_ships_a_serve_service_for_the_embedded_mode():
    from pathlib import Path

    import yaml

    services = yaml.safe_load((Path(__file__).resolve().parents[1] / "docker-compose.yml").read_text())[
        "services"
    ]
    serve = services["serve"]
    assert serve["command"][:2] == ["smsdispatch", "serve"]  # exec form: SIGTERM reaches it
    assert serve["environment"]["SMSDISPATCH_BROKER_URL"] == ""
    assert "embedded" in serve["profiles"]
    unit = (Path(__file__).resolve().parents[1] / "docs" / "smsdispatch-serve.service").read_text()
    assert "ExecStart=" in unit and "smsdispatch serve" in unit
