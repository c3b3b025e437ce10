"""Is anything sending this campaign? Pure: from its state, the heartbeats and now, one verdict and one line.

Every process that sends, polls or serves a campaign keeps a heartbeat row (campaigns/store/heartbeats.py);
a row not refreshed for `stale` seconds belongs to a process that died. From those facts:

- embedded mode, running: "sending in pid 4242 on host-a, seen 2 s ago", or, with no live row,
  "nothing has been sending this campaign since 11:52 +03:30; start `smsdispatch serve` or run
  `smsdispatch run 13`" (unattended: rate and ETA become null, `waiting.reason` is `unattended`);
- embedded mode, scheduled: the `send` or `run` process that waits to start it at its time ("waiting in
  pid 4242 on host-a to start it at its time, seen 2 s ago"), or, with none and no `serve` alive, a note
  that nothing will start it at its time;
- embedded mode, running outside its send window with nothing alive: "nothing will send it when its
  window opens at 09:00 +03:30; start `smsdispatch serve` or run `smsdispatch run 13`" (the campaign
  still shows that it waits for its window: `attended` keeps `waiting.reason` `window` and its ETA);
- distributed mode, running with chunks queued: when no worker has taken a chunk for `claim_stale`
  seconds, "no worker has taken a chunk for 2 minutes; are workers running?" (unattended too), unless
  the window is closed (the chunks wait for it in the database, not for a worker).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from campaigns.windows import TEHRAN

if TYPE_CHECKING:
    from campaigns.progress import CampaignProgress

STALE_ENV = "SMSDISPATCH_HEARTBEAT_STALE"
EVERY_ENV = "SMSDISPATCH_HEARTBEAT_EVERY"
CLAIM_STALE_ENV = "SMSDISPATCH_WORKER_STALE"


class Role(StrEnum):
    SEND = "send"  # `smsdispatch send` sending in its own process (embedded)
    RUN = "run"  # `smsdispatch run` / `resume` sending in its own process (embedded)
    POLL = "poll"  # `smsdispatch poll`
    SERVE = "serve"  # `smsdispatch serve` (its own row has no campaign; one row per campaign it runs)
    WORKER = "worker"  # a Celery worker (distributed)


@dataclass(frozen=True)
class Heartbeat:
    """One process's row: `seen_at` is when it last said it was alive (UTC)."""

    id: int
    pid: int
    host: str
    role: str
    campaign_id: int | None
    started_at: datetime
    seen_at: datetime

    def as_json(self) -> dict[str, Any]:
        """The `sender` object of `status --json`."""
        return {"pid": self.pid, "host": self.host, "seen_at": self.seen_at.isoformat()}


@dataclass(frozen=True)
class HeartbeatSettings:
    """every: seconds between beats; stale: seconds after which a silent row is a dead process;
    claim_stale: seconds without any worker taking a queued chunk before distributed mode warns."""

    every: float = 2.0
    stale: float = 15.0
    claim_stale: float = 120.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HeartbeatSettings:
        """Read SMSDISPATCH_HEARTBEAT_EVERY / _STALE and SMSDISPATCH_WORKER_STALE (seconds).

        Raises ValueError naming the variable when one is not a positive number or stale <= every.
        """
        values: dict[str, float] = {}
        for key, name in ((EVERY_ENV, "every"), (STALE_ENV, "stale"), (CLAIM_STALE_ENV, "claim_stale")):
            raw = env.get(key, "").strip()
            if not raw:
                continue
            try:
                values[name] = float(raw)
            except ValueError:
                raise ValueError(f"{key}={raw!r}: give a number of seconds") from None
            if values[name] <= 0:
                raise ValueError(f"{key}={raw!r}: give a positive number of seconds")
        settings = cls(**values)
        if settings.stale <= settings.every:
            raise ValueError(f"{STALE_ENV} must be longer than {EVERY_ENV} (a beat would look stale)")
        return settings


@dataclass(frozen=True)
class Liveness:
    """sender: the live process sending the campaign (None when none); unattended: a running campaign
    that nothing moves (rate and ETA must not be guessed); detail: one line for people, or None."""

    sender: Heartbeat | None
    unattended: bool
    since: datetime | None
    detail: str | None

    def sender_json(self) -> dict[str, Any] | None:
        return self.sender.as_json() if self.sender else None


def clock(at: datetime, now: datetime) -> str:
    """'11:52 +03:30' in Tehran time (the date in front when it is not today there)."""
    local = at.astimezone(TEHRAN)
    offset = local.strftime("%z")
    zone = f"{offset[:3]}:{offset[3:]}"
    if local.date() == now.astimezone(TEHRAN).date():
        return f"{local:%H:%M} {zone}"
    return f"{local:%Y-%m-%d %H:%M} {zone}"


def ago(seconds: float) -> str:
    """'2 s ago', '3 min ago', '2 h ago'."""
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s} s ago"
    if s < 7200:
        return f"{s // 60} min ago"
    return f"{s // 3600} h ago"


def span(seconds: float) -> str:
    """'40 seconds', '2 minutes', '3 hours'."""
    s = max(int(seconds), 0)
    if s < 120:
        return f"{s} seconds"
    if s < 7200:
        return f"{s // 60} minutes"
    return f"{s // 3600} hours"


def describe(hb: Heartbeat, now: datetime) -> str:
    """'sending in pid 4242 on host-a, seen 2 s ago' (or 'polling …', or 'served by …')."""
    seen = ago((now - hb.seen_at).total_seconds())
    if hb.role == Role.SERVE:
        return f"served by `smsdispatch serve`, pid {hb.pid} on {hb.host}, seen {seen}"
    verb = "polling delivery" if hb.role == Role.POLL else "sending"
    return f"{verb} in pid {hb.pid} on {hb.host}, seen {seen}"


def liveness_of(
    campaign_id: int,
    state: str,
    senders: Sequence[Heartbeat],
    now: datetime,
    *,
    distributed: bool,
    last_seen: datetime | None = None,
    service: Heartbeat | None = None,
    queued_chunks: int = 0,
    last_claim: datetime | None = None,
    started_at: datetime | None = None,
    settings: HeartbeatSettings = HeartbeatSettings(),
    pending: int | None = None,
    window_opens: datetime | None = None,
) -> Liveness:
    """The verdict for one campaign.

    senders: the live rows of this campaign (campaigns.store.heartbeats.senders_of), best first;
    last_seen: the last sign anything sent it (a row's last beat, a chunk's claim), for "since …";
    service: a live `serve` (its own row), which picks up running campaigns and starts scheduled ones;
    queued_chunks / last_claim / started_at: distributed mode's evidence that workers take chunks;
    pending: recipients not sent yet (0: all sent, only delivery reports are awaited, which `poll` collects);
    window_opens: when the campaign's send window next opens, when it is closed now (None: open, or none).
    """
    sender = senders[0] if senders else None
    if state == "scheduled" and not distributed and sender is not None:  # `send --at`/`run` waits for it
        seen = ago((now - sender.seen_at).total_seconds())
        return Liveness(
            sender,
            False,
            sender.seen_at,
            f"waiting in pid {sender.pid} on {sender.host} to start it at its time, seen {seen}",
        )
    if state == "scheduled" and not distributed and service is None:
        return Liveness(
            None,
            False,
            None,
            f"nothing will start it at its time: start `smsdispatch serve`, or run `smsdispatch run {campaign_id}`",
        )
    if state != "running":
        return Liveness(sender, False, None, None)
    if sender is not None:
        return Liveness(sender, False, sender.seen_at, describe(sender, now))
    waits_for_window = window_opens is not None and pending != 0
    if distributed:
        since = max((t for t in (last_claim, started_at) if t is not None), default=None)
        if waits_for_window:  # its chunks wait in the database for the window, not for a worker
            return Liveness(None, False, since, None)
        if queued_chunks and since is not None and (now - since).total_seconds() >= settings.claim_stale:
            return Liveness(
                None,
                True,
                since,
                f"no worker has taken a chunk for {span((now - since).total_seconds())}; are workers running?",
            )
        return Liveness(None, False, since, None)
    if service is not None:
        return Liveness(service, False, service.seen_at, describe(service, now))
    cure = f"start `smsdispatch serve` or run `smsdispatch run {campaign_id}`"
    if waits_for_window:
        assert window_opens is not None
        return Liveness(
            None,
            True,
            last_seen,
            f"nothing will send it when its window opens at {clock(window_opens, now)}; {cure}",
        )
    if pending == 0:  # all sent: what is left is collecting the delivery reports
        cure = (
            "start `smsdispatch serve` or run `smsdispatch poll --until-done` to collect its delivery reports"
        )
    if last_seen is None:
        return Liveness(None, True, None, f"nothing is sending this campaign; {cure}")
    return Liveness(
        None, True, last_seen, f"nothing has been sending this campaign since {clock(last_seen, now)}; {cure}"
    )


def attended(progress: CampaignProgress, live: Liveness) -> CampaignProgress:
    """The progress as shown: an unattended campaign has no rate and no ETA, and waits for a sender; one
    that waits for its send window still says so (and when it opens), the missing sender in `live`."""
    if not live.unattended:
        return progress
    from campaigns.progress import Waiting, WaitingReason

    if progress.waiting is not None and progress.waiting.reason == WaitingReason.WINDOW:
        return dataclasses.replace(progress, rate=None)
    waiting = Waiting(WaitingReason.UNATTENDED, None, live.detail or "nothing is sending this campaign")
    return dataclasses.replace(progress, rate=None, eta_seconds=None, waiting=waiting)


def stale_before(now: datetime, settings: HeartbeatSettings) -> datetime:
    """Rows last seen before this instant belong to processes that died."""
    return now - timedelta(seconds=settings.stale)
