"""The states of campaigns, chunks and recipients, and which transitions are allowed from where.

shared/DESIGN.md "States". The allowed-from sets are the single table every transition in
`campaigns.store` reads (`campaigns.store.sql.transition`); a transition is one conditional UPDATE
over these sets, and no state column is written any other way. A new state goes in its enum here and
in the transitions that lead to and from it.
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
    # Its pending recipients were moved to new chunks for the next provider of the route (failover,
    # docs/architecture.md "Failover through a route"); final: the chunk keeps only what its own provider
    # accepted or refused.
    REROUTED = "rerouted"


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


class OnUnknown(StrEnum):
    """A campaign's policy for a chunk whose send could not be confirmed and the provider cannot tell
    (stored in `campaigns.on_unknown`; `--on-unknown`)."""

    HOLD = "hold"  # its pending recipients become `unknown`, for a person to decide
    RESEND = "resend"  # send them again


class CampaignTransition(StrEnum):
    SCHEDULE = "schedule"
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    RESCHEDULE = "reschedule"
    CANCEL = "cancel"
    COMPLETE = "complete"
    FAIL = "fail"


class ChunkTransition(StrEnum):
    QUEUE = "queue"
    CLAIM = "claim"
    ACCEPT = "accept"
    RETRY = "retry"
    UNKNOWN = "unknown"
    FAIL = "fail"
    REQUEUE = "requeue"
    RECONCILED = "reconciled"
    RESEND = "resend"
    CANCEL = "cancel"
    REROUTE = "reroute"


class RecipientTransition(StrEnum):
    SEND_RESULT = "send_result"
    STATUS_RESULT = "status_result"
    CANCEL = "cancel"
    FAIL = "fail"
    HOLD = "hold"


C, K, R = CampaignState, ChunkState, RecipientState
CT, KT, RT = CampaignTransition, ChunkTransition, RecipientTransition

FINAL_CAMPAIGN = frozenset({C.COMPLETED, C.CANCELLED, C.FAILED})
FINAL_CHUNK = frozenset({K.ACCEPTED, K.FAILED, K.CANCELLED, K.REROUTED})
# Chunks with sending still ahead of them (an `unknown` one waits for reconciliation instead).
OPEN_CHUNK = frozenset({K.PLANNED, K.QUEUED, K.SENDING, K.RETRY})
FINAL_RECIPIENT = frozenset(
    {R.DELIVERED, R.UNDELIVERED, R.BLACKLISTED, R.EXPIRED, R.REJECTED, R.FAILED, R.CANCELLED}
)
# A recipient whose outcome is still to be learnt from the provider's delivery reports.
AWAITING_REPORT = frozenset({R.SENT, R.SENT_TO_OPERATOR})

# transition name -> (allowed-from states, to state)
CAMPAIGN_TRANSITIONS: dict[CampaignTransition, tuple[frozenset[CampaignState], CampaignState]] = {
    CT.SCHEDULE: (frozenset({C.DRAFT}), C.SCHEDULED),
    CT.START: (frozenset({C.DRAFT, C.SCHEDULED}), C.RUNNING),
    CT.PAUSE: (frozenset({C.RUNNING, C.SCHEDULED}), C.PAUSED),
    CT.RESUME: (frozenset({C.PAUSED}), C.RUNNING),
    CT.RESCHEDULE: (frozenset({C.PAUSED}), C.SCHEDULED),  # resumed before its start time
    CT.CANCEL: (frozenset({C.DRAFT, C.SCHEDULED, C.RUNNING, C.PAUSED}), C.CANCELLED),
    CT.COMPLETE: (frozenset({C.RUNNING}), C.COMPLETED),
    CT.FAIL: (frozenset({C.DRAFT, C.SCHEDULED, C.RUNNING, C.PAUSED}), C.FAILED),
}

CHUNK_TRANSITIONS: dict[ChunkTransition, tuple[frozenset[ChunkState], ChunkState]] = {
    KT.QUEUE: (frozenset({K.PLANNED}), K.QUEUED),
    KT.CLAIM: (frozenset({K.QUEUED, K.RETRY}), K.SENDING),
    # a reply recorded by the sender of that attempt (also after its lease ran out: the reply is the truth)
    KT.ACCEPT: (frozenset({K.SENDING, K.UNKNOWN}), K.ACCEPTED),
    KT.RETRY: (frozenset({K.SENDING}), K.RETRY),
    KT.UNKNOWN: (frozenset({K.SENDING}), K.UNKNOWN),
    KT.FAIL: (frozenset({K.SENDING, K.RETRY, K.UNKNOWN}), K.FAILED),
    # definitely not sent: back to the queue (account pause, part of a reply "not sent", split)
    KT.REQUEUE: (frozenset({K.SENDING, K.RETRY}), K.QUEUED),
    # reconciliation's verdicts, only ever from `unknown` at the attempt it examined
    KT.RECONCILED: (frozenset({K.UNKNOWN}), K.ACCEPTED),
    KT.RESEND: (frozenset({K.UNKNOWN}), K.QUEUED),
    KT.CANCEL: (frozenset({K.PLANNED, K.QUEUED, K.RETRY}), K.CANCELLED),
    # Failover (docs/architecture.md, "Failover through a route"): only from states in which the chunk is KNOWN not to have gone out at its
    # provider: queued or retry (an open circuit seen before the call; a `resend` verdict of
    # reconciliation queues first, so an `unknown` chunk never moves), or sending at the claimed
    # attempt when the call raised an account-level error or the last transient failure. Never from
    # `unknown`. Its pending recipients move to new queued chunks of the next provider, in the same
    # transaction (`campaigns.store.routing.reroute_chunk`).
    KT.REROUTE: (frozenset({K.QUEUED, K.RETRY, K.SENDING}), K.REROUTED),
}

# Recipient transitions, all set-based. A send result or status batch is one UPDATE … FROM <rows> where
# each row takes its own new state from the provider's answer (to = None); these are the states a row must
# still be in for the answer to apply, so a late or repeated answer never overwrites a newer fact.
RECIPIENT_TRANSITIONS: dict[RecipientTransition, tuple[frozenset[RecipientState], RecipientState | None]] = {
    # A send's messages were pending when claimed; one now `unknown` was held while its sender was silent
    # (lease over, a provider that cannot be asked): the reply, however late, is the fact.
    RT.SEND_RESULT: (frozenset({R.PENDING, R.UNKNOWN}), None),
    RT.STATUS_RESULT: (AWAITING_REPORT | {R.UNKNOWN}, None),
    # A chunk's still-pending rows that no send will reach: the chunk was cancelled or failed, or its send
    # could not be confirmed and the campaign holds them for a person (OnUnknown.HOLD).
    RT.CANCEL: (frozenset({R.PENDING}), R.CANCELLED),
    RT.FAIL: (frozenset({R.PENDING}), R.FAILED),
    RT.HOLD: (frozenset({R.PENDING}), R.UNKNOWN),
}
