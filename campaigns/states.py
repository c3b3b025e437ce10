"""The states of campaigns, chunks and recipients, and which transitions are allowed from where.

shared/DESIGN.md "States". The allowed-from sets are the single table every transition in
`campaigns.store` reads; a transition is one conditional UPDATE over these sets.
"""

from __future__ import annotations

from enum import StrEnum


class CampaignState(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"


class ChunkState(StrEnum):
    PLANNED = "planned"
    QUEUED = "queued"
    SENDING = "sending"
    ACCEPTED = "accepted"
    RETRY = "retry"
    UNKNOWN = "unknown"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RecipientState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    SENT_TO_OPERATOR = "sent_to_operator"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    BLACKLISTED = "blacklisted"
    EXPIRED = "expired"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


class UnknownPolicy(StrEnum):
    """A campaign's `--on-unknown`: what becomes of recipients whose send cannot be confirmed."""

    HOLD = "hold"  # mark them `unknown` with the reason (a person decides)
    RESEND = "resend"  # queue them again (the user accepts a possible duplicate)


C, K, R = CampaignState, ChunkState, RecipientState

FINAL_CAMPAIGN = frozenset({C.COMPLETED, C.CANCELLED, C.FAILED})
FINAL_CHUNK = frozenset({K.ACCEPTED, K.FAILED, K.CANCELLED})
# Chunks with sending still ahead of them (an `unknown` one waits for reconciliation instead).
OPEN_CHUNK = frozenset({K.PLANNED, K.QUEUED, K.SENDING, K.RETRY})
FINAL_RECIPIENT = frozenset(
    {R.DELIVERED, R.UNDELIVERED, R.BLACKLISTED, R.EXPIRED, R.REJECTED, R.FAILED, R.CANCELLED}
)
# A recipient whose outcome is still to be learnt from the provider's delivery reports.
AWAITING_REPORT = frozenset({R.SENT, R.SENT_TO_OPERATOR})

# transition name -> (allowed-from states, to state)
CAMPAIGN_TRANSITIONS: dict[str, tuple[frozenset[CampaignState], CampaignState]] = {
    "schedule": (frozenset({C.DRAFT}), C.SCHEDULED),
    "start": (frozenset({C.DRAFT, C.SCHEDULED}), C.RUNNING),
    "pause": (frozenset({C.RUNNING, C.SCHEDULED}), C.PAUSED),
    "resume": (frozenset({C.PAUSED}), C.RUNNING),
    "reschedule": (frozenset({C.PAUSED}), C.SCHEDULED),  # resumed before its start time
    "cancel": (frozenset({C.DRAFT, C.SCHEDULED, C.RUNNING, C.PAUSED}), C.CANCELLED),
    "complete": (frozenset({C.RUNNING}), C.COMPLETED),
    "fail": (frozenset({C.DRAFT, C.SCHEDULED, C.RUNNING, C.PAUSED}), C.FAILED),
}

CHUNK_TRANSITIONS: dict[str, tuple[frozenset[ChunkState], ChunkState]] = {
    "queue": (frozenset({K.PLANNED}), K.QUEUED),
    "claim": (frozenset({K.QUEUED, K.RETRY}), K.SENDING),
    # a reply recorded by the sender of that attempt (also after its lease ran out: the reply is the truth)
    "accept": (frozenset({K.SENDING, K.UNKNOWN}), K.ACCEPTED),
    "retry": (frozenset({K.SENDING}), K.RETRY),
    "unknown": (frozenset({K.SENDING}), K.UNKNOWN),
    "fail": (frozenset({K.SENDING, K.RETRY, K.UNKNOWN}), K.FAILED),
    # definitely not sent: back to the queue (account pause, part of a reply "not sent", split)
    "requeue": (frozenset({K.SENDING, K.RETRY}), K.QUEUED),
    # reconciliation's verdicts, only ever from `unknown` at the attempt it examined
    "reconciled": (frozenset({K.UNKNOWN}), K.ACCEPTED),
    "resend": (frozenset({K.UNKNOWN}), K.QUEUED),
    "cancel": (frozenset({K.PLANNED, K.QUEUED, K.RETRY}), K.CANCELLED),
}

# Set-based recipient transitions (one UPDATE … FROM <rows> per send result or status batch): each row
# takes its own new state from the provider's answer (to = None); these are the states a row must still
# be in for the answer to apply, so a late or repeated answer never overwrites a newer fact.
RECIPIENT_TRANSITIONS: dict[str, tuple[frozenset[RecipientState], RecipientState | None]] = {
    # A send's messages were pending when claimed; one now `unknown` was held while its sender was silent
    # (lease over, a provider that cannot be asked): the reply, however late, is the fact.
    "send_result": (frozenset({R.PENDING, R.UNKNOWN}), None),
    "status_result": (AWAITING_REPORT | {R.UNKNOWN}, None),
}
