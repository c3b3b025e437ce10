"""Negin (sms.3300.ir) REST client. Wire protocol: shared/providers.md "Decisions" (Negin) + §5; seed 003.

POST form-urlencoded to `{url}/wsSend.ashx` and `{url}/wsStates.ashx`, `username` and `password` in the
form. `status < 0` is success; a positive `status` is an error code (§5, Magfa-style table). HTTP 409 or
code 409 means "at least 5 s between requests" and is transient.

Options (environment `SMSDISPATCH_NEGIN_<OPTION>`):
  LINE2         fallback line (seed: used when `line` hits the recipient's opt-out); unset = not sent.
  MULTI         1 = put several comma-separated numbers in `mobile`. Whether the real service accepts
                that is UNKNOWN (§5), so it is off and BATCH must stay 1 without it. The reply shape for
                several numbers is UNKNOWN too; we ASSUME `data` is a list of {message_id, mobile} or a
                dict with comma-joined `message_id` (and `mobile`), and match ids to numbers by mobile
                (by position when no mobile comes back and the counts agree).
  MIN_INTERVAL  seconds this client leaves between its sends (default 0 = off). A send that comes
                sooner raises TransientError(retry_after=remaining) without any HTTP call; nothing sleeps.
                Only sends are spaced: whether wsStates is limited too is UNKNOWN (a 409 there is
                transient anyway).
No sent-box lookup is known, so reconcile() cannot tell (base behaviour), and no REST balance call is
documented (§5: "REST credit endpoint UNKNOWN"), so balance() raises RequestError.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import requests

from workers.errors import (
    AccountError,
    ConfigurationError,
    ProviderError,
    RecipientRefusedError,
    RequestError,
    TransientError,
)
from workers.providers import phones
from workers.providers.base import Capabilities, Envelope, ProviderClient, Reply, Request
from workers.providers.evidence import ASKED_AGAIN, Unreadable
from workers.providers.transport import chunks
from workers.providers.values import lookup
from workers.settings import ProviderSettings
from workers.status import Balance, DeliveryStatus, Message, SendBatch, SendOutcome, SendResult, StatusResult

log = logging.getLogger("workers.providers.negin")

# Call-level `status` codes -> error class (source: providers.md §5 "Error codes", Magfa-compatible).
# Negative values are success and are not listed. RecipientRefusedError marks PER-RCPT codes.
SEND_CODES: dict[int, type[ProviderError]] = {
    0: TransientError,  # unexpected error
    1: RecipientRefusedError,  # invalid recipient
    2: AccountError,  # invalid line
    **{c: RequestError for c in (3, 4, 6, 13, 24, 25, 100, 101, 102, 103, 104, 106, 107, 109, 110)},
    **{c: AccountError for c in (14, 16, 17, 18, 19, 22)},  # credit, inactive, expired, auth, service
    15: TransientError,  # internal server error, resend
    23: TransientError,  # high traffic
    27: RecipientRefusedError,  # recipient opted out (blacklisted)
    409: TransientError,  # at least 5 s between requests
}
RATE_LIMIT_CODE = 409
RATE_LIMIT_WAIT = 5.0  # seconds, as two integrators report (§5)
# How a PER-RCPT code shows in a single recipient's result.
RECIPIENT_STATUS: dict[int, DeliveryStatus] = {1: DeliveryStatus.FAILED, 27: DeliveryStatus.BLACKLISTED}

# wsStates `states` -> unified (source: seed 003 + providers.md §5 "Delivery states").
# -1 "not sent to operator" is final `failed` in §5 but only after the first minutes, and in Magfa it
# also means "no such id"; status() has no send time, so it stays UNKNOWN (raw "-1") and the poller's
# age limit makes it final.
DELIVERY: dict[int, DeliveryStatus] = {
    -1: DeliveryStatus.UNKNOWN,
    0: DeliveryStatus.PENDING,
    1: DeliveryStatus.DELIVERED,
    2: DeliveryStatus.UNDELIVERED,
    8: DeliveryStatus.SENT_TO_OPERATOR,
    16: DeliveryStatus.FAILED,
}

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}


mobile = phones.international  # 989121234567: the provider's own spelling in its reply samples (seed, NG2)


def build_send_form(batch: SendBatch, *, line: str, line2: str = "") -> dict[str, str]:
    """The wsSend fields without credentials; one text, numbers comma-joined (one when MULTI is off)."""
    form = {
        "mobile": ",".join(mobile(m.phone) for m in batch.messages),
        "message": batch.messages[0].text,
        "line": line,
        "type": "0",  # normal send; 1 and 2 route through other lines (seed)
        "template": "0",
    }
    if line2:
        form["line2"] = line2
    return form


def _ids(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(x).strip() for x in items if str(x).strip()]


def parse_send_reply(body: dict[str, Any], batch: SendBatch) -> list[SendResult]:
    """A success reply (status < 0) -> one result per message; UNKNOWN unless an id matches it."""
    data = body.get("data")
    rows = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
    pairs: list[tuple[str, str]] = []  # (message_id, mobile or "")
    for row in rows:
        if not isinstance(row, dict):
            continue
        ids, mobiles = _ids(row.get("message_id")), _ids(row.get("mobile"))
        pairs += [(i, mobile(mobiles[k]) if k < len(mobiles) else "") for k, i in enumerate(ids)]
    by_mobile: dict[str, list[str]] = {}
    for msg_id, number in pairs:
        by_mobile.setdefault(number, []).append(msg_id)
    in_order = [i for i, _ in pairs] if len(pairs) == len(batch) and all(not n for _, n in pairs) else []
    results = []
    for k, m in enumerate(batch.messages):
        queue = by_mobile.get(mobile(m.phone))
        msg_id = queue.pop(0) if queue else (in_order[k] if in_order else None)
        if msg_id:
            results.append(SendResult(m.recipient_id, SendOutcome.ACCEPTED, msg_id, str(body.get("status"))))
        else:
            log.warning("negin: no message id for recipient %s in a success reply", m.recipient_id)
            results.append(SendResult(m.recipient_id, SendOutcome.UNKNOWN, raw_code=str(body.get("status"))))
    return results


def parse_status_reply(body: dict[str, Any]) -> dict[str, StatusResult]:
    """`data.msgIds` and `data.states` are parallel comma lists; unknown states stay UNKNOWN. Lists we
    cannot pair (missing, or of different lengths) and empty places are read as nothing, never shifted onto
    the next id, and logged once (evidence.Unreadable): their recipients are asked again."""
    data = body.get("data") if isinstance(body.get("data"), dict) else {}
    ids, states = data.get("msgIds"), data.get("states")
    unread, out = Unreadable("negin", "wsStates.ashx"), {}
    places = [_places(ids), _places(states)]
    if ids is None or states is None or len(places[0]) != len(places[1]):
        unread.row("msgIds and states not parallel lists", data or body)
        places = [[], []]
    for msg_id, raw in zip(*places, strict=True):
        if not msg_id or not raw:
            unread.row("no state" if msg_id else "no msgId")
            continue
        out[msg_id] = StatusResult(msg_id, lookup(DELIVERY, raw, f"negin delivery state for {msg_id}"), raw)
    unread.say(max(len(places[0]), 1 if unread else 0), ASKED_AGAIN)
    return out


def _places(value: Any) -> list[str]:
    """A comma list (or a list) with its empty places kept, so two lists stay aligned."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(x).strip() for x in items]


def _status_code(body: Any) -> int | None:
    """The envelope's `status` as an int; None when it is missing or not a number."""
    try:
        return int(body["status"])
    except (KeyError, TypeError, ValueError):
        return None


class NeginClient(ProviderClient):
    name: ClassVar[str] = "negin"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_batch=100, max_status_batch=100, one_to_many=False, balance=False, reconcile="none"
    )
    call_codes = SEND_CODES
    refused_status = RECIPIENT_STATUS
    default_url: ClassVar[str] = "https://sms.3300.ir/api"
    credential_names: ClassVar[tuple[str, ...]] = ("username", "password")
    option_names: ClassVar[tuple[str, ...]] = ("line2", "multi", "min_interval")
    default_batch: ClassVar[int | None] = 1  # one number per call: the only shape seen in public (§5)

    def __init__(self, settings: ProviderSettings, session: requests.Session | None = None) -> None:
        super().__init__(settings, session)
        multi = settings.option("multi").lower()
        if multi not in _TRUE | _FALSE:
            raise ConfigurationError(f"{settings.env_name('multi')}={multi!r}: write 1 or 0")
        self.multi = multi in _TRUE
        if settings.batch > 1 and not self.multi:
            raise ConfigurationError(
                f"{settings.env_name('batch')}={settings.batch} needs {settings.env_name('multi')}=1: whether Negin "
                "takes several numbers per call is unverified, so the default is one"
            )
        text = settings.option("min_interval", "0")
        try:
            self.min_interval = float(text)
        except ValueError:
            raise ConfigurationError(
                f"{settings.env_name('min_interval')}={text!r} is not a number of seconds"
            ) from None
        if self.min_interval < 0:
            raise ConfigurationError(f"{settings.env_name('min_interval')}={text!r} must not be negative")
        self._gate = threading.Lock()
        self._last_send: float | None = None

    def _auth(self) -> dict[str, str]:
        return {"username": self.settings.secret("username"), "password": self.settings.secret("password")}

    def _take_send_slot(self) -> None:
        """Refuse (without sleeping) a send that comes sooner than MIN_INTERVAL after this client's last."""
        if not self.min_interval:
            return
        with self._gate:
            now = time.monotonic()
            if self._last_send is not None and now - self._last_send < self.min_interval:
                wait = self.min_interval - (now - self._last_send)
                raise self.error(
                    TransientError, f"sends are spaced {self.min_interval:g} s apart", retry_after=wait
                )
            self._last_send = now

    # ---- hooks of the base's send and reply algorithm ---------------------------------------------
    @classmethod
    def code_known(cls, code: Any, table: Any = None) -> bool:
        return isinstance(code, int) and code < 0 or super().code_known(code, table)  # negative = success

    @classmethod
    def call_class(cls, code: Any, *, sending: bool, table: Any = None) -> type[ProviderError] | None:
        if isinstance(code, int) and code < 0:
            return None
        found = super().call_class(code, sending=sending, table=table)
        return RequestError if found is RecipientRefusedError and not sending else found

    def envelope(self, reply: Reply) -> Envelope | None:
        if not (isinstance(reply.body, dict) and "status" in reply.body):
            return None
        raw = reply.body["status"]
        code = _status_code(reply.body)
        return Envelope(
            raw if code is None else code, str(reply.body.get("msg") or f"error {raw}"), reply.body
        )

    def describe(self, envelope: Envelope, what: str) -> str:
        known = self.code_known(envelope.code)
        return envelope.message if known else f"unknown code: {envelope.message}"

    def read_reply(self, reply: Reply, **kw: Any) -> Envelope:
        """HTTP 409 or code 409 is "at least 5 s between requests": transient, whatever else the reply says."""
        if reply.status == 409 or _status_code(reply.body) == RATE_LIMIT_CODE:
            raise self.error(
                TransientError,
                "too soon after the previous request",
                code=409,
                reply=reply,
                retry_after=RATE_LIMIT_WAIT,
            )
        return super().read_reply(reply, **kw)

    def request(self, request: Request, *, sending: bool = False) -> Reply:
        return super().request(
            replace(request, data={**self._auth(), **(request.data or {})}), sending=sending
        )

    def send_checked(self, batch: SendBatch) -> list[SendResult]:
        request = self.build_send(batch)
        self._take_send_slot()
        return self.send_call(request, batch.messages)

    def build_send(self, batch: SendBatch) -> Request:
        if not batch.single_text:
            raise self.error(RequestError, "one wsSend call carries one text; this batch has several")
        line = batch.sender or self.settings.sender
        if not line:
            raise ConfigurationError(
                f"negin: set {self.settings.env_name('sender')} (the sending line number)"
            )
        return Request("wsSend.ashx", build_send_form(batch, line=line, line2=self.settings.option("line2")))

    def parse_send(self, payload: Any, messages: Sequence[Message], reply: Reply) -> list[SendResult]:
        return parse_send_reply(payload, SendBatch(tuple(messages), ""))

    def status(self, message_ids: Sequence[str]) -> list[StatusResult]:
        found: dict[str, StatusResult] = {}
        for part in chunks([str(i) for i in message_ids], self.capabilities.max_status_batch):
            found.update(
                parse_status_reply(
                    self.read(Request("wsStates.ashx", {"message_ids": ",".join(part)})).payload
                )
            )
        missing = [i for i in map(str, message_ids) if i not in found]
        if missing:
            log.info("negin: no state for %d id(s), e.g. %s", len(missing), missing[0])
        return [found.get(str(i)) or StatusResult(str(i), DeliveryStatus.UNKNOWN) for i in message_ids]

    def balance(self) -> Balance:
        raise self.error(RequestError, "Negin documents no REST balance call")
