"""What the HTTP API keeps between requests, in the database so that every `web` process shares it
(migration 0013_web): idempotency keys and drafts. Functions over an Engine, each its own transaction.

- `idempotency_keys`: one row per (principal, key), claimed by an INSERT before the work starts, so two
  identical requests racing in two processes create ONE campaign (the second INSERT fails on the unique
  constraint and that request waits for the first one's answer). The answer is kept with the row.
- `drafts` and `draft_blocks`: a checked upload (the preflight's kept rows, one Parquet blob per block)
  waiting to be sent; it expires after `DRAFT_TTL`.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import (
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from campaigns.models import Base, BigId, UTCDateTime

IDEMPOTENCY_TTL = timedelta(hours=24)  # a key may be used again for another request after this
DRAFT_TTL = timedelta(hours=24)

idempotency_t = Table(
    "idempotency_keys",
    Base.metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("principal", String(100), nullable=False),  # whose key space: "key:7", "user:3"
    Column("key", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),  # sha256 of the method, path and body
    Column("status_code", Integer, nullable=True),  # None while the first request works
    Column("response", Text, nullable=True),  # the JSON answered
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("principal", "key", name="uq_idempotency_keys_key"),
)
drafts_t = Table(
    "drafts",
    Base.metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("principal", String(100), nullable=False),
    Column("request", Text, nullable=False),  # JSON: what the campaign is made of (no secret)
    Column("summary", Text, nullable=False),  # JSON: the preflight's answer
    Column("blocks", Integer, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),  # claimed for sending (compare-and-set)
    Column("campaign_id", BigId, nullable=True),
    Index("ix_drafts_expires", "expires_at"),
)
draft_blocks_t = Table(
    "draft_blocks",
    Base.metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("draft_id", BigId, nullable=False),
    Column("seq", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),  # one loader block as Parquet (dtypes kept)
    Index("ix_draft_blocks_draft", "draft_id", "seq"),
)
i, d, b = idempotency_t.c, drafts_t.c, draft_blocks_t.c


# ---- idempotency -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeyRecord:
    """An idempotency key as stored: `status_code` None while the request that claimed it works."""

    request_hash: str
    status_code: int | None
    response: str | None
    created_at: datetime


def claim_key(engine: Engine, principal: str, key: str, request_hash: str, now: datetime) -> KeyRecord | None:
    """Claim the key for this request: None when claimed (do the work, then `complete_key`), else the
    record of the request that holds it (an expired record is removed and the key claimed anew)."""
    for _ in range(3):
        try:
            with engine.begin() as conn:
                conn.execute(
                    insert(idempotency_t).values(
                        principal=principal, key=key, request_hash=request_hash, created_at=now
                    )
                )
            return None
        except IntegrityError:
            found = read_key(engine, principal, key)
            if found is None:  # released in between: claim again
                continue
            if found.created_at + IDEMPOTENCY_TTL < now:
                with engine.begin() as conn:
                    conn.execute(
                        delete(idempotency_t).where(
                            i.principal == principal, i.key == key, i.created_at == found.created_at
                        )
                    )
                continue
            return found
    raise RuntimeError("idempotency key kept changing hands; try again")


def read_key(engine: Engine, principal: str, key: str) -> KeyRecord | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(i.request_hash, i.status_code, i.response, i.created_at).where(
                i.principal == principal, i.key == key
            )
        ).first()
    return KeyRecord(*row) if row is not None else None


def complete_key(engine: Engine, principal: str, key: str, status_code: int, response: str) -> None:
    """The claimed request's answer, kept for its retries."""
    with engine.begin() as conn:
        conn.execute(
            update(idempotency_t)
            .where(i.principal == principal, i.key == key)
            .values(status_code=status_code, response=response)
        )


def release_key(engine: Engine, principal: str, key: str) -> None:
    """The claimed request failed before it changed anything: the key is free for a retry."""
    with engine.begin() as conn:
        conn.execute(
            delete(idempotency_t).where(i.principal == principal, i.key == key, i.status_code.is_(None))
        )


# ---- drafts ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DraftRecord:
    id: int
    principal: str
    request: str
    summary: str
    blocks: int
    created_at: datetime
    expires_at: datetime
    sent_at: datetime | None
    campaign_id: int | None


def save_draft(
    engine: Engine, principal: str, request: str, summary: str, blocks: Iterable[pd.DataFrame], now: datetime
) -> int:
    """Store a checked draft and its kept rows in one transaction; its id. Expired drafts are removed."""
    with engine.begin() as conn:
        _purge(conn, now)
        draft_id = conn.execute(
            insert(drafts_t)
            .values(
                principal=principal,
                request=request,
                summary=summary,
                created_at=now,
                expires_at=now + DRAFT_TTL,
            )
            .returning(d.id)
        ).scalar_one()
        n = 0
        for n, block in enumerate(blocks, start=1):
            buffer = io.BytesIO()
            block.to_parquet(buffer, index=False)
            conn.execute(insert(draft_blocks_t).values(draft_id=draft_id, seq=n, data=buffer.getvalue()))
        conn.execute(update(drafts_t).where(d.id == draft_id).values(blocks=n))
    return draft_id


def _purge(conn, now: datetime) -> None:  # noqa: ANN001
    old = select(d.id).where(d.expires_at < now, d.campaign_id.is_(None))
    conn.execute(delete(draft_blocks_t).where(b.draft_id.in_(old)))
    conn.execute(delete(drafts_t).where(d.expires_at < now, d.campaign_id.is_(None)))


def read_draft(engine: Engine, draft_id: int) -> DraftRecord | None:
    with engine.connect() as conn:
        row = conn.execute(select(drafts_t).where(d.id == draft_id)).first()
    return DraftRecord(**row._mapping) if row is not None else None


def draft_blocks(engine: Engine, draft_id: int) -> Iterator[pd.DataFrame]:
    """The draft's kept rows, block by block, in the order they were checked (one block in memory)."""
    seq = 0
    while True:
        with engine.connect() as conn:
            row = conn.execute(
                select(b.seq, b.data).where(b.draft_id == draft_id, b.seq > seq).order_by(b.seq).limit(1)
            ).first()
        if row is None:
            return
        seq = row.seq
        yield pd.read_parquet(io.BytesIO(row.data))


def claim_draft(engine: Engine, draft_id: int, now: datetime) -> bool:
    """Take the draft for sending (compare-and-set): False when it was sent, is being sent, or expired."""
    with engine.begin() as conn:
        return (
            conn.execute(
                update(drafts_t)
                .where(d.id == draft_id, d.sent_at.is_(None), d.expires_at >= now)
                .values(sent_at=now)
            ).rowcount
            == 1
        )


def release_draft(engine: Engine, draft_id: int) -> None:
    """Sending the draft failed before a campaign was stored: it may be sent again."""
    with engine.begin() as conn:
        conn.execute(update(drafts_t).where(d.id == draft_id, d.campaign_id.is_(None)).values(sent_at=None))


def draft_sent(engine: Engine, draft_id: int, campaign_id: int) -> None:
    """The draft became campaign `campaign_id`; its rows are no longer needed."""
    with engine.begin() as conn:
        conn.execute(update(drafts_t).where(d.id == draft_id).values(campaign_id=campaign_id))
        conn.execute(delete(draft_blocks_t).where(b.draft_id == draft_id))


def restate_draft(engine: Engine, draft_id: int, summary: str) -> None:
    """The draft's check answer (`summary`, JSON) as it reads now: a fact read again at the send (the
    credit) replaces the check's, so the check page shows what the send found."""
    with engine.begin() as conn:
        conn.execute(
            update(drafts_t).where(d.id == draft_id, d.campaign_id.is_(None)).values(summary=summary)
        )
