"""Reading loosely typed provider JSON: numbers sent as text, keys whose case varies between endpoints."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from workers.status import DeliveryStatus

log = logging.getLogger("workers.providers")


def to_int(value: Any) -> int | None:
    """42, "42", " 42 " -> 42; anything else -> None."""
    if type(value) is int:  # most replies carry numbers as numbers: no text round trip (not a bool)
        return value
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def rows(items: Any) -> list[dict[str, Any]]:
    """The dict rows of a list (anything else -> [])."""
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


_ABSENT = object()


def field(item: Any, name: str) -> Any:
    """`item[name]` with the key compared case-insensitively (`messageid`, `messageId`, `MessageId`);
    None when absent or when `item` is not a mapping."""
    if type(item) is dict:  # a parsed JSON object: no ABC check (a status reply reads five keys of 100 rows)
        value = item.get(name, _ABSENT)
        if value is not _ABSENT:  # the key as documented: no scan
            return value
    elif not isinstance(item, Mapping):
        return None
    elif name in item:
        return item[name]
    low = name.lower()
    return next((v for k, v in item.items() if str(k).lower() == low), None)


def settled(since: datetime, grace: float) -> bool:
    """Whether `grace` seconds have passed since `since` (naive means UTC): before that, a message a
    provider cannot find yet may still appear, so reconciliation answers UNKNOWN, not NOT_SENT."""
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    return (datetime.now(UTC) - since).total_seconds() >= grace


def lookup(table: Mapping[int, DeliveryStatus], raw: Any, what: str) -> DeliveryStatus:
    """A provider's delivery code -> unified state; an unknown one is UNKNOWN and logged (`what` names it)."""
    code = to_int(raw)
    if code is None or code not in table:
        log.warning("unknown %s %r kept as unknown", what, raw)
        return DeliveryStatus.UNKNOWN
    return table[code]


def to_float(value: Any) -> float | None:
    """1732, "1732.5" -> a float; None, "", "NaN", "inf" or anything else -> None (a price that is no
    number is not stored: the batch's rows go to the database as JSON, which has no NaN)."""
    try:
        number = None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None
    return number if number is not None and math.isfinite(number) else None


def split(text: str) -> list[str]:
    """ "a, b,c" -> ["a", "b", "c"] (an option's comma list)."""
    return [part.strip() for part in text.split(",")]
