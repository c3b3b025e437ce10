"""Media Payamak (Niazpardaz) delivery reports: `GetBatchDelivery` by batchSmsId, `GetDelivery` by recId.

Seed 002 documents both; providers.md §3B gives the REST v2 form and the code tables (N1, the official PHP
SDK's DeliveryResultCode and SmsDeliveryStatus). A recipient sent by us has the id "{batchSmsId}:{number}"
(its batch, asked page by page); one found in the sent box by reconciliation has the row's messageId, asked
with `GetDelivery {recId}`, one call per id (seed 002: one message per call). The key of GetDelivery's
result that holds the code is the client's `delivery_field` (MEDIAPAYAMAK_DELIVERY_FIELD; no source shows
it). An answer we cannot read (parallel lists of different lengths, a row without a number or a code, no
code under `delivery_field`) is logged once and answers nothing: the poller asks again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from workers.errors import AccountError, ProviderError, RequestError, TransientError
from workers.providers import phones
from workers.providers.base import ErrorTable
from workers.providers.evidence import ASKED_AGAIN, Unreadable, one_number
from workers.providers.values import field, lookup, to_int
from workers.status import DeliveryStatus, StatusResult

log = logging.getLogger("workers.providers.mediapayamak")

# fmt: off
# DeliveryResultCode of GetBatchDelivery (§3B, N1). -3 and -4 are answers about the whole batch, not errors.
# -1 provider connection error (seed 002 also lists it as bad user/password), -2 no batch with this id,
# -5 asked less than a minute after sending, -6 IP temporarily blocked, -7 bad ApiKey.
DELIVERY_CALL_CODES: ErrorTable = {0: None, -1: TransientError, -2: RequestError, -5: TransientError,
                                   -6: TransientError, -7: AccountError}
WHOLE_BATCH: dict[int, DeliveryStatus] = {-3: DeliveryStatus.EXPIRED, -4: DeliveryStatus.PENDING}

# Per-number deliveryStatus (§3B table, N1 SmsDeliveryStatus.php; 0..11 also seed 002). 3, 4, 6, 9..12: telecom
# failure, unknown error, not received by telecom, rejected, cancelled, not sent, no Telegram.
DELIVERY: dict[int, DeliveryStatus] = {
    **dict.fromkeys((-10, 8), DeliveryStatus.UNKNOWN),  # "none", "unknown"
    **dict.fromkeys((0, 5), DeliveryStatus.SENT_TO_OPERATOR),  # sent to / received by telecom
    1: DeliveryStatus.DELIVERED, 2: DeliveryStatus.UNDELIVERED, 7: DeliveryStatus.BLACKLISTED,
    **dict.fromkeys((3, 4, 6, 9, 10, 11, 12), DeliveryStatus.FAILED),
    13: DeliveryStatus.PENDING,  # in queue
}
# fmt: on
PAGE_STATUS, MAX_PAGES = 100, 100

number_key = phones.key


def split_id(message_id: str) -> tuple[str, str] | None:
    """'{batchSmsId}:{number}' -> (batchSmsId, number); None for anything else."""
    batch_id, sep, number = str(message_id).partition(":")
    return (batch_id, number) if sep and batch_id and number else None


def rec_id(value: Any) -> int | None:
    """A recId (seed 002 GetDelivery: a long; a sent-box row's messageId) as a positive int, else None."""
    number = None if isinstance(value, bool) else to_int(value)
    return number if number is not None and number > 0 else None


def parse_delivery(result: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """numbers[] and deliveryStatus[] (parallel arrays) -> ({number key: raw code}, rows in the page). Lists
    of different lengths cannot be paired, so nothing is read; a row without a number or a code is skipped;
    both are logged once (evidence.Unreadable), and their recipients stay unanswered."""
    numbers, codes = field(result, "numbers"), field(result, "deliveryStatus")
    unread = Unreadable("mediapayamak", "GetBatchDelivery")
    if not isinstance(numbers, list) or not isinstance(codes, list) or len(numbers) != len(codes):
        unread.row("numbers[] and deliveryStatus[] not parallel lists", result)
        unread.say(1, ASKED_AGAIN)
        return {}, len(numbers) if isinstance(numbers, list) else 0
    out: dict[str, Any] = {}
    for number, code in zip(numbers, codes, strict=True):
        key = one_number(number)
        if key is None or to_int(code) is None:
            unread.row("no number" if key is None else "no code")
            continue
        out[key] = code
    unread.say(len(numbers), ASKED_AGAIN)
    return out, len(numbers)


def delivery_status(message_id: str, raw: Any) -> StatusResult:
    """Unified state of one number's code; an unknown code is UNKNOWN, kept raw and logged."""
    state = lookup(DELIVERY, raw, f"mediapayamak deliveryStatus for {message_id}")
    return StatusResult(message_id, state, str(raw))


class DeliveryReports:
    """The `status` of MediaPayamakClient (a mixin: it calls the client's `_post` and `_index`)."""

    name: str
    delivery_field: str
    _post: Callable[..., tuple[Any, Any]]
    _index: Callable[[int, int], int]

    def status(self, message_ids: Sequence[str]) -> list[StatusResult]:
        """GetBatchDelivery per batchSmsId, page after page, and GetDelivery per recId (ids found in the sent
        box). One call's error (-5 too early, -2 unknown id) leaves its ids UNKNOWN with the code; raised
        when every call failed, an AccountError at once."""
        found: dict[str, StatusResult] = {}
        wanted: dict[str, dict[str, str]] = {}  # batchSmsId -> {number key: id}
        calls: dict[tuple[str, str], list[str]] = {}  # ("batch", batchSmsId) or ("one", id) -> ids, in order
        for mid in message_ids:
            if (parts := split_id(mid)) is not None:
                wanted.setdefault(parts[0], {})[number_key(parts[1])] = mid
                calls.setdefault(("batch", parts[0]), []).append(mid)
            elif rec_id(mid) is not None:
                calls[("one", mid)] = [mid]
        bad = [mid for mid in message_ids if split_id(mid) is None and rec_id(mid) is None]
        if bad:
            log.warning(
                "mediapayamak: %d ids are neither {batchSmsId}:{number} nor a recId, e.g. %r",
                len(bad),
                bad[0],
            )
        errors: list[ProviderError] = []
        for (kind, key), mids in calls.items():
            try:
                found.update(
                    self._batch_status(key, wanted[key]) if kind == "batch" else self._one_status(key)
                )
            except AccountError:
                raise
            except ProviderError as exc:
                errors.append(exc)
                found.update((mid, StatusResult(mid, DeliveryStatus.UNKNOWN, exc.code)) for mid in mids)
        if errors and len(errors) == len(calls):
            raise errors[0]
        return [found.get(mid) or StatusResult(mid, DeliveryStatus.UNKNOWN) for mid in message_ids]

    def _batch_status(self, batch_id: str, wanted: dict[str, str]) -> dict[str, StatusResult]:
        out: dict[str, StatusResult] = {}
        for page in range(MAX_PAGES):
            index = self._index(page, PAGE_STATUS)
            body = {"batchSmsId": to_int(batch_id) or batch_id, "index": index, "count": PAGE_STATUS}
            code, result = self._post("GetBatchDelivery", body, DELIVERY_CALL_CODES, keep=WHOLE_BATCH)
            if code in WHOLE_BATCH:  # an answer about every number of the batch
                return {mid: StatusResult(mid, WHOLE_BATCH[code], str(code)) for mid in wanted.values()}
            rows, count = parse_delivery(result)
            out.update((wanted[k], delivery_status(wanted[k], raw)) for k, raw in rows.items() if k in wanted)
            if len(out) == len(wanted) or count < PAGE_STATUS:
                break
        return out

    def _one_status(self, mid: str) -> dict[str, StatusResult]:
        """Seed 002 `GetDelivery {recId}`: its code under DELIVERY_FIELD; call-level codes as GetBatchDelivery's
        (-3 expired, -4 in queue, -5 too early: kept raw, for the poller's hints)."""
        code, result = self._post(
            "GetDelivery", {"recId": rec_id(mid)}, DELIVERY_CALL_CODES, keep=WHOLE_BATCH
        )
        raw = field(result, self.delivery_field)
        raw = raw[0] if isinstance(raw, list) and len(raw) == 1 else raw
        value = code if code in WHOLE_BATCH else to_int(raw)
        if value is None:
            unread = Unreadable(self.name, "GetDelivery")
            unread.row(f"no {self.delivery_field}", result)
            unread.say(1, ASKED_AGAIN)
            return {mid: StatusResult(mid, DeliveryStatus.UNKNOWN)}
        if value in WHOLE_BATCH:
            return {mid: StatusResult(mid, WHOLE_BATCH[value], str(value))}
        if value < 0 and value not in DELIVERY:  # a call-level code given as the value
            return {mid: StatusResult(mid, DeliveryStatus.UNKNOWN, str(value))}
        return {mid: delivery_status(mid, value)}
