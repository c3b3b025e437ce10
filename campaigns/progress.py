"""Where a campaign stands: how far sending and delivery are, the rate, the ETA, what it waits for.

Pure: the store supplies the facts (a `CampaignView`, a recent-rate sample, the next retry) and
`progress_of` decides what they mean; `read_progress` is the one thin function that asks the store.
`smsdispatch status`, `watch` and `send --wait` all show what this module computes, and every count
means one thing in all of them (the text, the JSON, the bars):

- sent: recipients a provider accepted: awaiting a delivery report, or with one (delivered,
  undelivered, expired, or failed/blacklisted by a report). Never the cancelled, those failed or
  refused before sending, the rejected, nor those held `unknown` (nobody knows whether they went);
- cancelled: recipients cancelled before they were sent;
- awaiting: sent recipients still waiting for a final delivery report; `next_check_at` is when the
  next of them is due a check (the delivery bar: sent - awaiting of sent);
- final: recipients in a final state, or held `unknown` with a reason (nothing more happens to them
  without a person);
- rate: recipients whose send was recorded per second over the last `RATE_WINDOW` (from the start of
  the minute it began in, or since the campaign started, when that is shorter), from the campaign's
  per-minute `sent` counters (`Store.recent_sends`); only while the campaign runs (null otherwise);
- ETA of sending: pending / rate while running; until `send_at` when scheduled; until the window
  opens when outside the send window; none while paused;
- waiting: what holds the campaign up, if anything: `scheduled`, `window`, `paused`, `retrying`
  (every open chunk backs off after transient errors) or `reconciling` (sends being confirmed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from campaigns.states import (
    AWAITING_REPORT,
    FINAL_CAMPAIGN,
    FINAL_RECIPIENT,
    CampaignState,
    ChunkState,
    RecipientState,
)
from campaigns.windows import TEHRAN, parse_window

if TYPE_CHECKING:
    from campaigns.store import CampaignView, Store

RATE_WINDOW = timedelta(minutes=5)
SETTLED = frozenset({*FINAL_RECIPIENT, RecipientState.UNKNOWN})
# States only a recipient a provider accepted can be in (failed and blacklisted may be either: the
# store counts those a delivery report gave, `CampaignView.reported_failed`).
ACCEPTED = frozenset(
    {*AWAITING_REPORT, RecipientState.DELIVERED, RecipientState.UNDELIVERED, RecipientState.EXPIRED}
)
C, K = CampaignState, ChunkState


@dataclass(frozen=True)
class RateSample:
    """`sent` recipients had their send recorded at or after `since` (Store.recent_sends)."""

    sent: int
    since: datetime


@dataclass(frozen=True)
class RetryInfo:
    """Chunks of the campaign backing off after transient errors (Store.next_retry)."""

    chunks: int
    next_at: datetime | None
    error: str | None


class WaitingReason(StrEnum):
    """What holds a campaign up (`status --json` prints the value)."""

    SCHEDULED = "scheduled"
    WINDOW = "window"
    PAUSED = "paused"
    RETRYING = "retrying"
    RECONCILING = "reconciling"
    UNATTENDED = "unattended"  # running, and nothing is sending it (campaigns/liveness.py)


W = WaitingReason


@dataclass(frozen=True)
class Waiting:
    reason: WaitingReason
    until: datetime | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "until": self.until.isoformat() if self.until else None,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class CampaignProgress:
    campaign: int
    state: str
    reason: str | None
    total: int
    pending: int
    sent: int
    final: int
    rate: float | None
    eta_seconds: float | None
    waiting: Waiting | None
    now: datetime
    cancelled: int = 0
    awaiting: int = 0  # sent, no final delivery report yet
    next_check_at: datetime | None = None  # the next delivery check of an awaiting recipient

    @property
    def finished(self) -> bool:
        return self.state in FINAL_CAMPAIGN

    @property
    def eta_at(self) -> datetime | None:
        return None if self.eta_seconds is None else self.now + timedelta(seconds=self.eta_seconds)

    @property
    def eta_text(self) -> str:
        """One line for people: '4m 10s (about 10:42 Tehran (+03:30))', or what it is waiting for."""
        if self.finished:
            return self.state
        if self.waiting is not None and self.waiting.reason in (W.SCHEDULED, W.WINDOW, W.PAUSED):
            return self.waiting.detail
        if self.pending == 0 and self.state == C.RUNNING:
            return "all sent; waiting for delivery reports" + self.next_check_text
        if self.eta_seconds is None:
            return "estimating (no send recorded in the last minutes)"
        assert self.eta_at is not None
        return f"{duration(self.eta_seconds)} (about {tehran_time(self.eta_at, self.now)})"

    @property
    def next_check_text(self) -> str:
        """'; next check at 11:32:10 Tehran (+03:30)' (a past time: 'now'), or '' when nothing awaits a check."""
        at = self.next_check_at
        if at is None or self.awaiting == 0:
            return ""
        if at <= self.now:
            return "; next check now"
        return f"; next check at {tehran_time(at, self.now, seconds=True)}"

    def as_json(self) -> dict[str, Any]:
        """The keys `status --json` adds to the campaign's own."""
        eta_at = self.eta_at
        return {
            "progress": {
                "total": self.total,
                "sent": self.sent,
                "final": self.final,
                "cancelled": self.cancelled,
            },
            "next_check_at": self.next_check_at.isoformat() if self.next_check_at and self.awaiting else None,
            "rate": None if self.rate is None else round(self.rate, 3),
            "eta_seconds": None if self.eta_seconds is None else round(self.eta_seconds),
            "eta": eta_at.isoformat() if eta_at else None,
            "waiting": self.waiting.as_json() if self.waiting else None,
        }


def duration(seconds: float) -> str:
    s = max(int(round(seconds)), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def tehran_time(at: datetime, now: datetime, seconds: bool = False) -> str:
    """'HH:MM Tehran (+03:30)': Tehran's clock with its offset, the date in front when it is not today
    there (`seconds`: HH:MM:SS)."""
    local, today = at.astimezone(TEHRAN), now.astimezone(TEHRAN)
    clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
    if local.date() != today.date():
        clock = f"{local:%Y-%m-%d} {clock}"
    offset = local.strftime("%z")
    return f"{clock} Tehran ({offset[:3]}:{offset[3:]})"


def rate_of(sample: RateSample | None, started_at: datetime | None, now: datetime) -> float | None:
    """Recipients per second over the sample, counted from the campaign's start when that is later."""
    if sample is None or started_at is None:
        return None
    since = max(sample.since, started_at)
    elapsed = max((now - since).total_seconds(), 1.0)
    return sample.sent / elapsed


def waiting_for(view: CampaignView, retry: RetryInfo | None, now: datetime) -> Waiting | None:
    pending = view.counts.get(RecipientState.PENDING, 0)
    if view.state == C.SCHEDULED:
        until = view.send_at
        when = tehran_time(until, now) if until else "its start time"
        return Waiting(W.SCHEDULED, until, f"scheduled: starts at {when}")
    if view.state == C.PAUSED:
        return Waiting(W.PAUSED, None, f"paused: {view.state_reason or 'paused'}")
    if view.state != C.RUNNING or pending == 0:
        return None
    if view.window:
        opens_in = parse_window(view.window).seconds_until_open(now)
        if opens_in > 0:
            until = now + timedelta(seconds=opens_in)
            return Waiting(
                W.WINDOW,
                until,
                f"waiting for the window {view.window}, opens at {tehran_time(until, now)}",
            )
    chunks = view.chunk_counts
    moving = sum(chunks.get(s, 0) for s in (K.PLANNED, K.QUEUED, K.SENDING))
    if moving:
        return None
    if retry is not None and retry.chunks:
        when = f"; next attempt at {tehran_time(retry.next_at, now, seconds=True)}" if retry.next_at else ""
        return Waiting(
            W.RETRYING,
            retry.next_at,
            f"{retry.chunks} chunk(s) backing off after transient errors ({retry.error or 'no detail'}){when}",
        )
    if chunks.get(K.UNKNOWN, 0):
        return Waiting(
            W.RECONCILING, None, "sends that could not be confirmed are being checked with the provider"
        )
    return None


def progress_of(
    view: CampaignView,
    sample: RateSample | None,
    retry: RetryInfo | None,
    now: datetime,
    next_check: datetime | None = None,
) -> CampaignProgress:
    """The campaign's progress from its view (counts by state), a rate sample, its retries and the next
    delivery check (Store.next_poll_time of the campaign): pure."""
    counts = view.counts
    total = view.recipients or sum(counts.values())
    pending = counts.get(RecipientState.PENDING, 0)
    final = sum(n for s, n in counts.items() if s in SETTLED)
    rate = rate_of(sample, view.started_at, now) if view.state == C.RUNNING else None
    waiting = waiting_for(view, retry, now)
    eta: float | None = None
    if view.state in FINAL_CAMPAIGN or waiting is not None and waiting.reason == W.PAUSED:
        eta = None
    elif waiting is not None and waiting.reason in (W.SCHEDULED, W.WINDOW) and waiting.until is not None:
        eta = max((waiting.until - now).total_seconds(), 0.0)
    elif pending == 0:
        eta = 0.0
    elif rate:
        eta = pending / rate
    return CampaignProgress(
        campaign=view.id,
        state=view.state,
        reason=view.state_reason,
        total=total,
        pending=pending,
        sent=sum(counts.get(st, 0) for st in ACCEPTED) + view.reported_failed,
        final=final,
        rate=rate,
        eta_seconds=eta,
        waiting=waiting,
        now=now,
        cancelled=counts.get(RecipientState.CANCELLED, 0),
        awaiting=sum(counts.get(st, 0) for st in AWAITING_REPORT),
        next_check_at=next_check,
    )


def read_progress(
    store: Store, campaign_id: int, now: datetime, window: timedelta = RATE_WINDOW
) -> tuple[CampaignView | None, CampaignProgress | None]:
    """The campaign's view and its progress, from three small reads (None when there is no such campaign)."""
    view = store.campaign(campaign_id)
    if view is None:
        return None, None
    sample = RateSample(*store.recent_sends(campaign_id, now - window))
    retry = RetryInfo(*store.next_retry(campaign_id)) if view.chunk_counts.get(K.RETRY) else None
    awaiting = any(view.counts.get(st) for st in AWAITING_REPORT)
    next_check = store.next_poll_time(campaign_id, now) if awaiting else None
    return view, progress_of(view, sample, retry, now, next_check)
