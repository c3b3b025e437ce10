"""Heartbeat rows in the store: which process sends, polls or serves what, and when it was last seen.

Functions take an Engine and return plain `campaigns.liveness.Heartbeat` values; what they mean is
decided in `campaigns.liveness`. `Beating` keeps one row fresh from a thread of its own for as long
as its `with` block runs, and deletes it on the way out (a killed process leaves a row that goes stale).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import UTC, datetime
from types import TracebackType

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from campaigns.liveness import Heartbeat, HeartbeatSettings, Liveness, Role, liveness_of
from campaigns.models import Campaign, Chunk
from campaigns.models import Heartbeat as HeartbeatRow
from campaigns.states import CampaignState

log = logging.getLogger("campaigns.store.heartbeats")
heartbeats_t = HeartbeatRow.__table__
campaigns_t = Campaign.__table__
chunks_t = Chunk.__table__


def _now() -> datetime:
    return datetime.now(UTC)


def _as_utc(value: datetime | str | None) -> datetime | None:
    """An aggregate's time as aware UTC (SQLite's max() of a text column comes back as text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ago(now: datetime, seconds: float) -> datetime:
    return datetime.fromtimestamp(now.timestamp() - seconds, UTC)


def _hb(row) -> Heartbeat:  # noqa: ANN001 - a Row of heartbeats_t
    return Heartbeat(row.id, row.pid, row.host, row.role, row.campaign_id, row.started_at, row.seen_at)


def beat(
    engine: Engine,
    heartbeat_id: int | None,
    *,
    role: Role | str,
    campaign_id: int | None = None,
    now: datetime | None = None,
    pid: int | None = None,
    host: str | None = None,
) -> int:
    """Refresh this process's row (insert it when `heartbeat_id` is None or the row is gone); its id."""
    now = now or _now()
    with engine.begin() as conn:
        if heartbeat_id is not None:
            done = conn.execute(
                update(heartbeats_t).where(heartbeats_t.c.id == heartbeat_id).values(seen_at=now)
            )
            if done.rowcount:
                return heartbeat_id
        return conn.execute(
            insert(heartbeats_t)
            .values(
                pid=pid if pid is not None else os.getpid(),
                host=host or socket.gethostname(),
                role=str(role),
                campaign_id=campaign_id,
                started_at=now,
                seen_at=now,
            )
            .returning(heartbeats_t.c.id)
        ).scalar_one()


def forget(engine: Engine, heartbeat_id: int) -> None:
    """Delete the row (a clean stop: nothing is left to look stale)."""
    with engine.begin() as conn:
        conn.execute(delete(heartbeats_t).where(heartbeats_t.c.id == heartbeat_id))


def senders_of(engine: Engine, campaign_id: int, now: datetime, stale: float) -> list[Heartbeat]:
    """The live rows (seen within `stale` seconds) of processes working on the campaign, newest first."""
    since = _ago(now, stale)
    with engine.connect() as conn:
        rows = conn.execute(
            select(heartbeats_t)
            .where(heartbeats_t.c.campaign_id == campaign_id, heartbeats_t.c.seen_at >= since)
            .order_by(heartbeats_t.c.seen_at.desc())
        ).all()
    return [_hb(r) for r in rows]


def live_service(engine: Engine, now: datetime | None = None, stale: float | None = None) -> Heartbeat | None:
    """A live `smsdispatch serve` on this database (its own row, seen within `stale` seconds), or None.

    `send`, `run` and `resume` call it to hand a campaign to the service instead of sending it themselves.
    """
    now = now or _now()
    since = _ago(now, HeartbeatSettings.from_env(os.environ).stale if stale is None else stale)
    with engine.connect() as conn:
        row = conn.execute(
            select(heartbeats_t)
            .where(
                heartbeats_t.c.role == Role.SERVE,
                heartbeats_t.c.campaign_id.is_(None),
                heartbeats_t.c.seen_at >= since,
            )
            .order_by(heartbeats_t.c.seen_at.desc())
            .limit(1)
        ).first()
    return _hb(row) if row else None


def last_activity(engine: Engine, campaign_id: int) -> datetime | None:
    """The last sign anything worked on the campaign: a heartbeat of it (live or not) or a chunk's claim."""
    with engine.connect() as conn:
        seen = conn.execute(
            select(func.max(heartbeats_t.c.seen_at)).where(heartbeats_t.c.campaign_id == campaign_id)
        ).scalar()
        claimed = last_claim(engine, campaign_id, conn=conn)
    return max((t for t in (_as_utc(seen), claimed) if t is not None), default=None)


def last_claim(engine: Engine, campaign_id: int, *, conn=None) -> datetime | None:  # noqa: ANN001
    """When a chunk of the campaign was last taken for sending (chunks.sending_since), or None."""
    stmt = select(func.max(chunks_t.c.sending_since)).where(chunks_t.c.campaign_id == campaign_id)
    if conn is None:
        with engine.connect() as own:
            value = own.execute(stmt).scalar()
    else:
        value = conn.execute(stmt).scalar()
    return _as_utc(value)


def orphans(engine: Engine, now: datetime, stale: float) -> list[int]:
    """Running campaigns no live process is working on (their sender died, or none was ever started)."""
    since = _ago(now, stale)
    live = select(heartbeats_t.c.campaign_id).where(
        heartbeats_t.c.campaign_id.is_not(None), heartbeats_t.c.seen_at >= since
    )
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(campaigns_t.c.id)
                .where(campaigns_t.c.state == CampaignState.RUNNING, campaigns_t.c.id.not_in(live))
                .order_by(campaigns_t.c.id)
            ).scalars()
        )


def prune(engine: Engine, older_than: datetime) -> int:
    """Delete rows of processes dead since before `older_than` (their last sign is kept that long)."""
    with engine.begin() as conn:
        return conn.execute(delete(heartbeats_t).where(heartbeats_t.c.seen_at < older_than)).rowcount


def read_liveness(
    engine: Engine,
    campaign_id: int,
    state: str,
    now: datetime,
    *,
    distributed: bool,
    queued_chunks: int = 0,
    started_at: datetime | None = None,
    settings: HeartbeatSettings | None = None,
    pending: int | None = None,
    window_opens: datetime | None = None,
) -> Liveness:
    """`liveness_of` over this store's facts (three or four small reads)."""
    settings = settings or HeartbeatSettings.from_env(os.environ)
    senders = senders_of(engine, campaign_id, now, settings.stale)
    service = None if distributed else live_service(engine, now, settings.stale)
    wants_history = state == CampaignState.RUNNING and not senders
    return liveness_of(
        campaign_id,
        state,
        senders,
        now,
        distributed=distributed,
        last_seen=last_activity(engine, campaign_id) if wants_history and not distributed else None,
        service=service,
        queued_chunks=queued_chunks,
        last_claim=last_claim(engine, campaign_id) if wants_history and distributed else None,
        started_at=started_at,
        settings=settings,
        pending=pending,
        window_opens=window_opens,
    )


class Beating:
    """`with Beating(engine, Role.SEND, campaign_id):` keeps a row fresh every `every` seconds from a
    daemon thread; the row is deleted when the block ends (also on an exception or Ctrl-C)."""

    def __init__(
        self,
        engine: Engine,
        role: Role | str,
        campaign_id: int | None = None,
        settings: HeartbeatSettings | None = None,
    ) -> None:
        self.engine = engine
        self.role = role
        self.campaign_id = campaign_id
        self.settings = settings or HeartbeatSettings.from_env(os.environ)
        self.id: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _beat(self) -> None:
        try:
            self.id = beat(self.engine, self.id, role=self.role, campaign_id=self.campaign_id)
        except SQLAlchemyError as exc:  # a database hiccup: the next beat tries again
            log.warning("heartbeat not written: %s", type(exc).__name__)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.every):
            self._beat()

    def __enter__(self) -> Beating:
        self._beat()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.id is not None:
            try:
                forget(self.engine, self.id)
            except SQLAlchemyError:
                log.warning("heartbeat row %s left behind; it goes stale", self.id)
