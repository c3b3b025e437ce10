"""Recipient states in words people read (English and Persian), and outcome counts by operator.

`OUTCOMES` is the order every report, summary and chart lists the counts in. Operator counts are
computed from the store's streamed (phone, state) pairs: no extra query; the operator is an estimate
by number prefix (`campaigns.operators.ESTIMATE_NOTE`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from campaigns.operators import Operator, operator_of
from campaigns.states import RecipientState

R = RecipientState

# The outcome columns of the summary sheet and of `summary`, in this order.
OUTCOMES: tuple[RecipientState, ...] = (
    R.DELIVERED,
    R.UNDELIVERED,
    R.BLACKLISTED,
    R.FAILED,
    R.EXPIRED,
    R.CANCELLED,
    R.REJECTED,
    R.UNKNOWN,
)

# state -> (English, Persian): what the state means to the person reading the report.
DESCRIPTIONS: dict[RecipientState, tuple[str, str]] = {
    R.PENDING: ("not sent yet", "هنوز ارسال نشده"),
    R.SENT: ("sent, waiting for the delivery report", "ارسال شده، در انتظار گزارش تحویل"),
    R.SENT_TO_OPERATOR: ("with the mobile operator, not yet delivered", "به اپراتور رسیده، هنوز تحویل نشده"),
    R.DELIVERED: ("delivered to the phone", "به گوشی تحویل شد"),
    R.UNDELIVERED: ("not delivered (phone off or unreachable)", "تحویل نشد (گوشی خاموش یا خارج از دسترس)"),
    R.BLACKLISTED: (
        "blocked: the number refuses advertising SMS",
        "مسدود: شماره پیامک تبلیغاتی دریافت نمی‌کند",
    ),
    R.EXPIRED: ("no delivery report in time", "گزارش تحویل به موقع نرسید"),
    R.REJECTED: ("refused by the provider", "سامانه پیامک نپذیرفت"),
    R.FAILED: ("failed: the provider or operator could not send it", "ناموفق: ارسال انجام نشد"),
    R.CANCELLED: ("cancelled before sending", "پیش از ارسال لغو شد"),
    R.UNKNOWN: ("unknown: the send could not be confirmed", "نامعلوم: ارسال تأیید نشد"),
}


def describe(state: str) -> tuple[str, str]:
    """(English, Persian) description of a recipient state; the state itself for one we do not know."""
    try:
        return DESCRIPTIONS[RecipientState(state)]
    except ValueError:
        return state, state


def operator_outcomes(pairs: Iterable[tuple[str, str]]) -> dict[Operator, Counter[str]]:
    """(phone E.164, state) pairs -> {operator: Counter(state -> recipients)}, every operator present."""
    out: dict[Operator, Counter[str]] = {op: Counter() for op in Operator}
    for phone, state in pairs:
        out[operator_of(phone)][state] += 1
    return out
