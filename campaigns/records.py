"""The records the store hands out and takes in: what workers, the CLI and reports see of the database.

Plain dataclasses with no database types, so a module that only passes them around (workers'
operations, progress) needs neither SQLAlchemy nor the store. Re-exported by `campaigns.store`.
Times are aware UTC datetimes; `parts` are SMS parts (the rate limit's and the price's unit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

from campaigns.states import OnUnknown, RecipientState

if TYPE_CHECKING:
    from campaigns.prices import PriceTable


class EmptyCampaign(ValueError):
    """Nothing valid to send: the campaign is not created."""


class RetryVerdict(StrEnum):
    """What `Store.chunk_retry` did with a chunk after a transient error."""

    RETRY = "retry"  # backs off until its next attempt
    FAILED = "failed"  # gave up: max attempts reached


@dataclass(frozen=True)
class CampaignSpec:
    """A campaign to create: the template as given, the provider and the account key (a hash of the
    credentials, never the secret), where its recipients came from, and when it may send."""

    name: str
    provider: str
    account: str
    sender: str
    message: str
    personalised: bool
    source_file: str = ""
    rejects_file: str = ""
    columns: Sequence[str] = ()
    on_unknown: str = OnUnknown.HOLD
    send_at: datetime | None = None
    window: str | None = None  # "HH:MM-HH:MM" Tehran time
    fingerprint: str | None = None  # this list with this text (campaigns.preflight.tally), from the preflight
    # Refuse to store it (DuplicateCampaign) when a campaign with the same fingerprint is unfinished, or was
    # created or finished at or after this instant (now - SMSDISPATCH_DUPLICATE_WINDOW); None: no such check
    # (`--allow-duplicate`, a test send). Checked in the creating transaction: two sends that both passed
    # the preflight never both go out.
    duplicate_since: datetime | None = None
    test: bool = False  # a test send of the previews (`send --test-to`), not a real campaign
    # Budget (README, "Budget and cost"): caps no claim crosses, in rial and in SMS parts (None: no cap). `prices` gives
    # each chunk its estimated rial at creation; a rial budget needs a price for every part.
    budget_rial: int | None = None
    max_parts: int | None = None
    prices: PriceTable | None = None
    route: tuple[str, ...] = ()  # a failover route, the first being `provider`; () = just it
    callback_url: str | None = None  # each state change is POSTed there (campaigns.store.webhooks)
    callback_key_id: int | None = None  # the API key whose derived secret signs the POSTs
    # `--type`: promotional | transactional (campaigns.preflight.CampaignType)
    campaign_type: str | None = None
    # provider -> its price table, for each provider of the route: a chunk failover moves is priced at
    # the price of the provider it moves to (campaigns.store.routing); empty: none known
    route_prices: Mapping[str, PriceTable] = field(default_factory=dict)
    # Who started it (the audit's `who`), the user's or key's row, and the principal whose daily cap its
    # claims are charged to ("key:7", "user:3"; None: no cap). See campaigns/store/caps.py.
    created_by: str | None = None
    created_by_user_id: int | None = None
    created_by_key_id: int | None = None
    spend_principal: str | None = None
    needs_prices: bool = (
        False  # who started it has a daily cap in rial: every part must be priced, as for a budget
    )


@dataclass(frozen=True, slots=True)
class OutMessage:
    """A recipient as a send needs it; the providers' `workers.status.Message` is this class."""

    recipient_id: int
    phone: str  # E.164
    text: str
    client_ref: str  # our unique message id: the campaign's ref prefix + the recipient id


@dataclass(frozen=True)
class ClaimedChunk:
    """A chunk claimed for one attempt (or loaded for reconciliation), with its pending recipients."""

    chunk_id: int
    campaign_id: int
    attempt: int
    provider: str
    account: str
    sender: str
    parts: int
    on_unknown: str  # an OnUnknown value
    sending_since: datetime
    messages: tuple[OutMessage, ...]


@dataclass(frozen=True)
class RecipientUpdate:
    """One recipient's new facts, from a send, a reconciliation or a status poll."""

    recipient_id: int
    state: RecipientState
    provider_message_id: str | None = None
    provider_status: str | None = None
    error: str | None = None
    next_poll_at: datetime | None = None
    delivered_at: datetime | None = None
    cost: float | None = None  # what the provider reported this message cost (its unit), when it said


@dataclass
class CampaignView:
    """A campaign row as read, with its recipients and chunks counted by state (empty in listings)."""

    id: int
    name: str
    provider: str
    state: str  # a CampaignState value
    state_reason: str | None
    recipients: int
    rejected: int
    chunks: int
    parts: int
    rejects_file: str
    source_file: str
    columns: list[str]
    sender: str
    message: str
    on_unknown: str
    send_at: datetime | None
    window: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, int] = field(default_factory=dict)
    test: bool = False  # a test send of the previews (`send --test-to`)
    chunk_counts: dict[str, int] = field(default_factory=dict)
    # of counts["failed"] + counts["blacklisted"]: those a delivery report gave (the provider had accepted them)
    reported_failed: int = 0
    # SMS parts of the recipients cancelled before sending (of `parts`, the plan): from the counters
    cancelled_parts: int = 0
    budget_rial: int | None = None  # the caps (None: none) and what the claims committed so far
    max_parts: int | None = None
    spent_rial: int = 0
    spent_parts: int = 0
    cost_estimated: int | None = None  # rial: the estimate at creation (None: no price was known)
    cost_actual: float | None = (
        None  # what the provider reported, in its unit (None: none); from Store.campaign
    )
    campaign_type: str | None = None  # promotional | transactional; None: stored before it was recorded
    # provider -> recipient state -> count (each at the provider of its chunk), and the money by provider:
    # from the same counters as `counts` (Store.campaign, Store.counted_campaigns)
    by_provider: dict[str, dict[str, int]] = field(default_factory=dict)
    costs: CampaignCosts | None = None


@dataclass(frozen=True)
class ProviderCost:
    """A campaign's money at one provider (each recipient at the provider of its chunk: the one that
    accepted it, or holds it now). Rial, except `reported`.

    `planned`: the estimate for the recipients it holds, at its price (SMS parts x its price table,
    through the chunk's estimate); `spent`: the same estimate for those it accepted (awaiting a delivery
    report or with one), what has gone out so far; both None when no price was known. `reported`: the
    sum of what the provider said the messages cost, in its own unit (`ProviderClient.cost_unit`; None
    there: not documented), None when it said nothing. `accepted`: recipients it accepted. `unsure`:
    the same estimate for the `unknown` recipients held `unknown` (the provider could not say whether
    it sent them: money that may have gone out, never counted as not spent)."""

    planned: float | None
    spent: float | None
    reported: float | None
    accepted: int = 0
    unsure: float | None = None
    unknown: int = 0


@dataclass(frozen=True)
class CampaignCosts:
    """A campaign's money by provider (`Store.costs`); the totals sum the providers (None where none
    knows). `reported` sums providers' own units: read it per provider where the route has several."""

    by_provider: Mapping[str, ProviderCost] = field(default_factory=dict)

    def _total(self, name: str) -> float | None:
        known = [getattr(c, name) for c in self.by_provider.values() if getattr(c, name) is not None]
        return float(sum(known)) if known else None

    @property
    def planned(self) -> float | None:
        return self._total("planned")

    @property
    def spent(self) -> float | None:
        return self._total("spent")

    @property
    def reported(self) -> float | None:
        return self._total("reported")

    @property
    def unsure(self) -> float | None:
        return self._total("unsure")

    @property
    def unknown(self) -> int:
        return sum(c.unknown for c in self.by_provider.values())


@dataclass(frozen=True)
class Cancelled:
    """A campaign cancelled (`Store.cancel`): its recipients cancelled before sending, by the provider of
    their chunk (empty when none was left to send). Always true, as the cancel happened."""

    by_provider: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Reconciliation:
    """What one reconciliation verdict wrote (`Store.record_reconciled`). `current`: the chunk was still
    `unknown` at the attempt examined, so the verdict applied (False: another reconciliation, or the late
    reply, got there first, and nothing was written); `found`: recipients this call recorded as sent
    (rows it changed); `moved`: the chunk moved on (accepted, nothing left pending; or queued again)."""

    current: bool
    found: int = 0
    moved: bool = False


class ChunkPeek(NamedTuple):
    """What a send needs to know before its claim (`Store.chunk_cost`)."""

    provider: str
    parts: int  # SMS parts of the whole chunk (the rate limit's unit)
    window: str | None
    claimable: bool  # the claim's own condition, as read now
    route: tuple[str, ...] = ()  # the campaign's failover route; () = its one provider
    attempt: int = 0  # the chunk's attempt as read (the guard of a reroute before the claim)


@dataclass(frozen=True)
class DuePoll:
    """A recipient awaiting a delivery report, claimed or read for a status check."""

    recipient_id: int
    campaign_id: int
    provider: str
    account: str
    message_id: str
    sent_at: datetime | None
    polls: int


@dataclass(frozen=True)
class SuppressionView:
    """A number (E.164) on the opt-out list, with why and since when."""

    phone: str
    reason: str
    created_at: datetime
