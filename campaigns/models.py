"""SQLAlchemy 2 models of the store: campaigns, chunks, recipients, and the opt-out list.

The schema is created by the Alembic migration in campaigns/migrations; these models are the
single description both the migration and the queries use. Indexes serve the hot queries:
a chunk's recipients, due polls, a campaign's next check, earliest retry and last claim; a campaign's
counts are maintained in `campaign_counts` (`CampaignCount`), never counted from its rows on a read.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy import text as sql_text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# SQLite has no real BIGINT autoincrement; INTEGER PRIMARY KEY is its rowid, 64-bit anyway.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both backends (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:  # noqa: ANN001
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:  # noqa: ANN001
        # Runs for every time read (10,000 a poll claim): no import or conversion it can do without.
        if value is None:
            return None
        zone = value.tzinfo
        if zone is None:
            return value.replace(tzinfo=UTC)
        return value if zone is UTC else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(32))
    account: Mapped[str] = mapped_column(String(64))  # provider + hash of the credentials, never the secret
    sender: Mapped[str] = mapped_column(String(64), default="")
    message: Mapped[str] = mapped_column(Text)  # the template as given (folded to Persian letters)
    personalised: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16), index=True)
    state_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    on_unknown: Mapped[str] = mapped_column(String(16), default="hold")  # an OnUnknown value (states.py)
    # Fixed-width random digits put before a recipient id to make our client-side message ids
    # (Ghasedak checkid) unique across databases: a lookup must never find another store's message.
    ref_prefix: Mapped[str] = mapped_column(String(8))
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    parts: Mapped[int] = mapped_column(Integer, default=0)
    source_file: Mapped[str] = mapped_column(Text, default="")
    rejects_file: Mapped[str] = mapped_column(Text, default="")
    columns: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of the CSV's own columns
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    window: Mapped[str | None] = mapped_column(String(16), nullable=True)  # "HH:MM-HH:MM" Tehran time
    # sha256 of the normalised recipients and text (campaigns.preflight.tally): same list, same text
    fingerprint: Mapped[str | None] = mapped_column(String(64), nullable=True)
    test: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # a `send --test-to`
    # Budget (README "Budget and cost", migration 0007_budget): caps in rial and SMS parts (None: no cap), and what the
    # claims have committed so far (a claimed chunk may go out), charged and given back in the same
    # transaction as the chunk's claim and refund (campaigns.store.sending). `estimated_rial`: the sum of
    # the chunks' estimated costs at creation (None when no price was known).
    budget_rial: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_parts: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    spent_rial: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    spent_parts: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    estimated_rial: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The ordered provider names of a failover route as JSON, the first being `provider`;
    # None: the one provider. Migration 0009_routes.
    route: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Webhooks (migration 0013_web): where each state change is POSTed, and the API key whose derived
    # secret signs it (campaigns.store.webhooks; workers.webhooks). None: no webhook.
    callback_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    callback_key_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # `--type` (promotional | transactional; None: stored before migration 0012_blacklist, so unknown):
    # only promotional campaigns learn the operator blacklist from their delivery reports, and only
    # promotional ones skip it (campaigns.store.preflight.blacklisted_numbers).
    campaign_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # Each provider of the route's price table as JSON (`campaigns.prices.PriceTable.as_json`), read at
    # the preflight: a chunk failover moves to another provider is priced at that provider's price.
    # None: no table known (a moved chunk then carries its share of the first estimate). Migration 0012.
    route_prices: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Who started it (migration 0011_identity): the audit's `who` ("alice", "key:crm", "cli:USER@HOST"), the
    # user's or key's row, and the daily spend it counts against ("key:7" on the Tehran day it was created;
    # None: no cap, the command line). `purged_at`: when its recipients' numbers and columns were removed.
    created_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_by_user_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_by_key_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    spend_principal: Mapped[str | None] = mapped_column(String(40), nullable=True)
    spend_day: Mapped[str | None] = mapped_column(String(10), nullable=True)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Chunk(Base):
    __tablename__ = "chunks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    size: Mapped[int] = mapped_column(Integer, default=0)
    parts: Mapped[int] = mapped_column(Integer, default=0)  # SMS parts of the whole chunk (rate limit unit)
    # Estimated rial of those parts (plan-time parts x the price table, rounded up; 0 when no price is known):
    # what a claim charges to the campaign's budget and a refund gives back.
    cost_rial: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sending_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The provider and account this chunk is sent through, set when failover re-planned it for another
    # provider of the route (failover); None: the campaign's own. Its recipients keep it: polling and
    # reconciliation ask the provider that accepted them. Migration 0009_routes.
    provider: Mapped[str | None] = mapped_column(String(32), nullable=True)
    account: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sender: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index("ix_chunks_campaign_seq", "campaign_id", "seq"),
        Index("ix_chunks_state_next", "state", "next_attempt_at"),
        # Migration 0016_counters: a campaign's earliest retry and its unknown chunks (`next_retry`,
        # `sending_open`), its last claim (liveness), and the store's oldest queued chunk, each an index plan.
        Index("ix_chunks_campaign_state_next", "campaign_id", "state", "next_attempt_at"),
        Index("ix_chunks_campaign_sending", "campaign_id", "sending_since"),
        Index("ix_chunks_state_queued", "state", "queued_at"),
    )


class Recipient(Base):
    """One row per recipient. No foreign-key constraints here on purpose: per-row RI checks tripled
    the time of loading a million recipients on PostgreSQL (15.9 s against 5.6 s, docs/benchmarks.md),
    and recipients are only ever written by the store, inside the transaction that creates their
    campaign and chunks."""

    __tablename__ = "recipients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(BigId)
    chunk_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    row: Mapped[int] = mapped_column(Integer)  # the spreadsheet row it came from
    phone: Mapped[str] = mapped_column(String(16))  # E.164
    fields: Mapped[str] = mapped_column(Text, default="{}")  # JSON of the CSV's other columns
    text: Mapped[str | None] = mapped_column(Text, nullable=True)  # rendered text when personalised
    parts: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(20))
    provider_message_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    provider_status: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    polls: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # What the provider said this message cost, where its reply carries it (a Ghasedak status `price`, an
    # Amoot GetDeliveries `Cost`), as reported; None when it did not say.
    cost_rial: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (
        Index("ix_recipients_chunk", "chunk_id"),
        Index("ix_recipients_campaign_state", "campaign_id", "state"),
        # Partial: only rows still waiting for a delivery report are in it. With the id (migration
        # 0017_poll_claims), a poll claim starts exactly after the last one's (next_poll_at, id).
        Index(
            "ix_recipients_due_poll",
            "next_poll_at",
            "id",
            postgresql_where=sql_text("next_poll_at IS NOT NULL"),
            sqlite_where=sql_text("next_poll_at IS NOT NULL"),
        ),
        # Partial: a row enters it when its send is recorded (loading writes none), for the rate of sending.
        Index(
            "ix_recipients_campaign_sent",
            "campaign_id",
            "sent_at",
            postgresql_where=sql_text("sent_at IS NOT NULL"),
            sqlite_where=sql_text("sent_at IS NOT NULL"),
        ),
        Index("ix_recipients_campaign_phone", "campaign_id", "phone", unique=True),
        # Partial, migration 0016_counters: a campaign's next delivery check (`next_check_at`) is its
        # first entry, whatever the other campaigns wait for.
        Index(
            "ix_recipients_campaign_next_poll",
            "campaign_id",
            "next_poll_at",
            postgresql_where=sql_text("next_poll_at IS NOT NULL"),
            sqlite_where=sql_text("next_poll_at IS NOT NULL"),
        ),
    )


class PollClaim(Base):
    """One claim of due recipients (migration 0017_poll_claims): the stretch of `ix_recipients_due_poll`, in
    `(next_poll_at, id)` order, after the previous claim's end up to and including (`hi_at`, `hi_id`), held
    until `lease_until`. Claims tile that order; a recipient is never written to be claimed
    (`campaigns/store/polling.py`)."""

    __tablename__ = "poll_claims"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    hi_at: Mapped[datetime] = mapped_column(UTCDateTime)
    hi_id: Mapped[int] = mapped_column(BigInteger)
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime)


class CampaignCount(Base):
    """A campaign's maintained counters (migration 0016_counters), written in the transaction of every
    transition that changes them (`campaigns/store/tally.py`) and summed at read (`campaigns/store/counts.py`).

    `kind` (a `tally.CountKind`): `recipient` (recipients by provider and state: how many, their SMS parts,
    the rial their provider reported and how many reported one, how many were polled, their estimate at
    their chunk's rial per part), `chunk` (chunks by
    provider and state: how many, parts, estimated rial) or `sent` (sends recorded in the minute starting at
    `bucket`, epoch seconds, by provider: the rate). The provider is the one of the recipient's chunk (a
    chunk failover moved carries its own), else the campaign's. `shard`: the PostgreSQL backend that wrote
    the row (`pg_backend_pid()`), so concurrent workers never wait on one another's counter rows; the
    housekeeping pass folds them into shard 0 (SQLite has one writer: always 0). A row's numbers are
    deltas: the truth is the sum over shards.
    """

    __tablename__ = "campaign_counts"

    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), primary_key=True)
    shard: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger, default=0)
    parts: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)  # recipients: reported rial; chunks: estimated
    costed: Mapped[int] = mapped_column(BigInteger, default=0)  # recipients whose provider reported a cost
    polled: Mapped[int] = mapped_column(BigInteger, default=0)  # recipients polled at least once
    # recipients: their estimate, SMS parts x the rial per part of their chunk (its `cost_rial` / `parts`),
    # all of them and those polled at least once (`campaigns.store.costs`: planned, spent)
    value: Mapped[float] = mapped_column(Float, default=0.0)
    polled_value: Mapped[float] = mapped_column(Float, default=0.0)


class Suppression(Base):
    """Numbers that asked not to be sent to (opt-out replies); the loader rejects them."""

    __tablename__ = "suppressions"

    phone: Mapped[str] = mapped_column(String(16), primary_key=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AccountHealth(Base):
    """One provider account's circuit (failover), shared by every worker through the database.

    closed: sends go; open: an account-level error or `failures` transient failures in a row, no send
    until `probe_at`; half_open: one probe send was let through (claimed by compare-and-set) and its
    outcome closes or re-opens the circuit. Never a secret: `account` is the provider's account key.
    """

    __tablename__ = "account_health"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    circuit: Mapped[str] = mapped_column(
        String(16), default="closed"
    )  # a CircuitState value (not a lifecycle state)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # transient failures in a row
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    probe_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class InboxCursor(Base):
    """How far the opt-out collector has read one provider account's inbox (its own id or time mark).

    One row per account; the collector reads from here and advances it in the same transaction that
    adds the opt-outs it found, so a crash never skips a reply and a re-read only re-adds the same numbers.
    """

    __tablename__ = "inbox_cursors"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    cursor: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Heartbeat(Base):
    """One row per process that sends, polls or serves (campaigns/store/heartbeats.py): who, where, last seen.

    A process inserts its row when it starts, refreshes `seen_at` every few seconds and deletes the row
    when it stops cleanly; a row whose `seen_at` is older than the staleness setting is a process that
    died (SIGKILL, a closed terminal, a lost machine). `campaign_id` is null for a `serve`'s own row.
    """

    __tablename__ = "heartbeats"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # send | run | poll | serve | worker
    campaign_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_heartbeats_campaign_seen", "campaign_id", "seen_at"),)
