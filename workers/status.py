"""The unified outcome model (shared/providers.md §1), in the manner of anymail's normalised events.

Two enums: `SendOutcome` is what a send call says about one recipient; `DeliveryStatus` is what
polling says later. Results are small frozen dataclasses that keep the provider's raw code next
to the unified value, so a report can always show what the provider actually answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from campaigns.records import OutMessage


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT_TO_OPERATOR = "sent_to_operator"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    BLACKLISTED = "blacklisted"
    EXPIRED = "expired"
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        return self in FINAL_DELIVERY


FINAL_DELIVERY = frozenset(
    {
        DeliveryStatus.DELIVERED,
        DeliveryStatus.UNDELIVERED,
        DeliveryStatus.FAILED,
        DeliveryStatus.BLACKLISTED,
        DeliveryStatus.EXPIRED,
    }
)


class SendOutcome(StrEnum):
    """What one send call tells us about one recipient."""

    ACCEPTED = "accepted"  # the provider took it and gave (or will give) an id
    REFUSED = "refused"  # the provider refused this recipient only (invalid, filtered, blacklisted)
    NOT_SENT = "not_sent"  # reconciliation: the provider has no record of it
    UNKNOWN = "unknown"  # no answer we can trust about this recipient


# One recipient's message inside a batch: the store's `OutMessage` (recipient_id, phone in E.164, text,
# client_ref: our id for it, Ghasedak's checkid), so a claimed chunk's messages go to the provider as they are,
# not copied one object per recipient.
Message = OutMessage


@dataclass(frozen=True, slots=True)
class SendBatch:
    messages: tuple[Message, ...]
    sender: str

    @property
    def single_text(self) -> bool:
        """True when every message carries the same text (one-to-many call)."""
        first = self.messages[0].text if self.messages else ""
        return all(m.text == first for m in self.messages)

    def __len__(self) -> int:
        return len(self.messages)


@dataclass(frozen=True, slots=True)
class SendResult:
    recipient_id: int
    outcome: SendOutcome
    message_id: str | None = None
    raw_code: str | None = None
    status: DeliveryStatus = DeliveryStatus.UNKNOWN
    error: str | None = None
    cost: float | None = None  # what the provider said this message cost, in its unit (cost_unit)


@dataclass(frozen=True, slots=True)
class StatusResult:
    message_id: str
    status: DeliveryStatus
    raw_code: str | None = None
    cost: float | None = None  # what the provider said this message cost, in its unit (cost_unit)


@dataclass(frozen=True, slots=True)
class Balance:
    amount: float
    unit: str  # "rial", "sms", ... as the provider reports it
    expires: str | None = None


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One SMS received on our line (an inbox row), as the opt-out collector needs it."""

    provider: str
    message_id: str
    phone: str | None  # the sender in E.164 when it is an Iranian mobile, else None
    sender: str  # the sender as the provider wrote it
    text: str
    received_at: str | None = None  # as the provider wrote it: no source gives its time zone
