"""What every provider client shares (anymail `base.py` and `base_requests.py`, Notify `SmsClient`).

The base owns the send and reply algorithm; a provider module supplies tables and hooks:
  * `send`: the batch-size check, then `send_checked` (one call by default; override to split a batch
    per text or per recipient), which calls `build_send` (hook: batch -> `Request`), makes the call,
    opens the reply with `read_reply`, and hands the payload to `parse_send` (hook: one `SendResult`
    per message). A per-recipient refusal of a one-number call is returned as a REFUSED value
    (`refusal`, state from `refused_status`); on more numbers it is raised, and the send operation
    splits the chunk to find the number.
  * `read_reply`: `envelope` (hook: reply -> `Envelope` of code, message, payload, or None) and the
    class-level `call_codes` table (code -> error class, None = success). No envelope and an HTTP
    status under 400 is ambiguous for a send (it may have gone out) and transient for a read; no
    envelope and an HTTP error is classified by `http_error`. An unknown code is the same, plus a log
    line. `describe` and `retry_after` (default: the `retry_codes` table) are hooks for the error text
    and the wait of a transient error. `read` is the same for a read-only call; `send_in_turn` runs
    several send calls for one batch (a per-text or per-recipient provider).
Through `transport.HttpTransport` it also owns the HTTP session, the timeouts and the redacted
logging, and it turns transport failures into our error tree:
  * a failure before the request left us (DNS, refused, connect timeout) is `TransientError`, and is
    retried a few times at once inside the call (`transport.CONNECT_ATTEMPTS`), since nothing can have been sent;
  * anything after it left (read timeout, reset, truncated reply) is `AmbiguousSendError` for a send
    and `TransientError` for a read-only call.
Provider modules parse the body whatever the HTTP status; `http_error` classifies the replies that
carry no provider envelope at all.

Every HTTP exchange is counted (`workers.providers.metering`): the public methods a subclass defines
(`send`, `status`, `balance`, `reconcile`, `inbox`, and a phonebook's) are wrapped when the class is
created (`__init_subclass__`), so a provider module needs no line of its own for its metrics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import requests

from workers.errors import (
    AmbiguousSendError,
    ConfigurationError,
    MissingCredential,
    ProviderError,
    RecipientRefusedError,
    RequestError,
    TransientError,
)
from workers.providers import metering
from workers.providers.capabilities import Capabilities  # noqa: F401 (old import path)
from workers.providers.transport import HttpTransport, Reply, chunks, inbound_messages  # noqa: F401
from workers.settings import ProviderSettings
from workers.status import (
    Balance,
    DeliveryStatus,
    InboundMessage,
    Message,
    SendBatch,
    SendOutcome,
    SendResult,
    StatusResult,
)

log = logging.getLogger("workers.providers")


@dataclass(frozen=True)
class Envelope:
    """A provider's reply envelope: its call-level code (as `call_codes` keys it), its message, and the
    payload the parse hooks read."""

    code: Any
    message: str
    payload: Any


@dataclass(frozen=True)
class Request:
    """One HTTP call, as a build hook describes it (the base adds the auth headers)."""

    path: str
    data: Mapping[str, Any] | None = None
    json_body: Any = None
    params: Mapping[str, Any] | None = None
    method: str = "POST"


ErrorTable = Mapping[Any, type[ProviderError] | None]


class ProviderClient(HttpTransport):
    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    default_url: ClassVar[str]
    credential_names: ClassVar[tuple[str, ...]]
    option_names: ClassVar[tuple[str, ...]] = ()
    default_batch: ClassVar[int | None] = None
    call_codes: ClassVar[ErrorTable] = {}  # call-level code -> error class; None = success
    refused_status: ClassVar[Mapping[Any, DeliveryStatus]] = {}  # refusal code -> state (default FAILED)
    retry_codes: ClassVar[Mapping[Any, float]] = {}  # transient code -> seconds to wait before retrying
    # The unit of the per-message cost the provider reports (`SendResult.cost`, `StatusResult.cost`), as
    # its documents state it; None: not documented. None of ours is: Ghasedak's status `price` (seed 004),
    # the gateway's `cost`/`price` (providers.md §2B) and Amoot's GetDeliveries `Cost` (§4) carry no unit.
    cost_unit: ClassVar[str | None] = None

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        metering.meter_class(cls)

    def __init__(self, settings: ProviderSettings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self._session = session
        self._local = threading.local()
        self.check_credentials()

    # ---- configuration -------------------------------------------------------------------
    @classmethod
    def load_settings(cls, env: Mapping[str, str] | None = None) -> ProviderSettings:
        from workers.settings import load_provider_settings

        return load_provider_settings(
            cls.name,
            default_url=cls.default_url,
            credential_names=cls.credential_names,
            option_names=cls.option_names,
            max_batch=cls.capabilities.max_batch,
            default_batch=cls.default_batch,
            env=env,
        )

    def check_credentials(self) -> None:
        """Default: every credential is required. Override where alternatives exist."""
        missing = [self.settings.env_name(k) for k in self.credential_names if not self.settings.secret(k)]
        if missing:
            raise MissingCredential(self.name, tuple(missing), " and ".join(missing))

    def number_option(self, key: str, default: str, *, whole: bool = False) -> float:
        """A non-negative number of seconds (or a count) from an option; ConfigurationError otherwise."""
        text = self.settings.option(key, default).strip()
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            value = -1
        if value < 0:
            raise ConfigurationError(f"{self.settings.env_name(key)}={text!r}: give a number like {default}")
        return value

    def choice_option(self, key: str, choices: Sequence[str]) -> str:
        """An option that must be one of `choices` (the first is the default); ConfigurationError otherwise."""
        value = self.settings.option(key, choices[0]).strip().lower()
        if value not in choices:
            raise ConfigurationError(
                f"{self.settings.env_name(key)}={value!r}: choose {' or '.join(choices)}"
            )
        return value

    # ---- the send algorithm ----------------------------------------------------------------------
    def send(self, batch: SendBatch) -> list[SendResult]:
        """One `SendResult` per message, in order. Raises `RequestError` for a batch outside 1..BATCH,
        and the `ProviderError` a failed call means (see the module docstring)."""
        if not 1 <= len(batch) <= self.settings.batch:
            raise self.error(
                RequestError, f"batch of {len(batch)}; {self.name} takes 1 to {self.settings.batch}"
            )
        return self.send_checked(batch)

    send = metering.metered("send", send)  # subclasses' own methods are wrapped by __init_subclass__

    def send_checked(self, batch: SendBatch) -> list[SendResult]:
        """Hook: a batch of the right size -> results. Default: one call carrying the whole batch."""
        return self.send_call(self.build_send(batch), batch.messages)

    def build_send(self, batch: SendBatch) -> Request:
        """Hook: the call that sends `batch` (credentials come from `auth_headers`)."""
        raise NotImplementedError

    def parse_send(self, payload: Any, messages: Sequence[Message], reply: Reply) -> list[SendResult]:
        """Hook: a success envelope's payload -> one result per message, in order."""
        raise NotImplementedError

    def send_call(self, request: Request, messages: Sequence[Message]) -> list[SendResult]:
        """Make one send call; a refused single recipient comes back as a value, not an error."""
        reply = self.request(request, sending=True)
        try:
            envelope = self.read_reply(reply, sending=True, what=request.path)
        except RecipientRefusedError as exc:
            if len(messages) > 1:  # the reply does not say which number: the send operation splits the chunk
                raise
            return [self.refusal(messages[0], exc)]
        return self.parse_send(envelope.payload, messages, reply)

    def send_in_turn(
        self, messages: Sequence[Message], calls: Sequence[tuple[Request, Sequence[Message]]]
    ) -> list[SendResult]:
        """Several send calls for one batch, in order; one result per message of `messages`, in their
        order. A failing first call raises; after one was accepted, a failing call's messages are
        UNKNOWN if its error is ambiguous, else NOT_SENT, and the calls not made are NOT_SENT (the send
        operation queues those again)."""
        results: dict[int, SendResult] = {}
        failure: ProviderError | None = None
        for request, group in calls:
            if failure is not None:
                why = f"not attempted after: {failure.describe()}"
                results.update(
                    (m.recipient_id, SendResult(m.recipient_id, SendOutcome.NOT_SENT, error=why))
                    for m in group
                )
                continue
            try:
                results.update((r.recipient_id, r) for r in self.send_call(request, group))
            except ProviderError as exc:
                if not results:
                    raise
                metering.mark(exc)
                log.warning("%s: send stopped after %d messages: %s", self.name, len(results), exc)
                failure = exc
                outcome = SendOutcome.UNKNOWN if isinstance(exc, AmbiguousSendError) else SendOutcome.NOT_SENT
                for m in group:
                    results[m.recipient_id] = SendResult(
                        m.recipient_id, outcome, None, exc.code, error=exc.describe()
                    )
        return [results[m.recipient_id] for m in messages]

    def refusal(self, message: Message, exc: RecipientRefusedError) -> SendResult:
        state = next((s for k, s in self.refused_status.items() if str(k) == exc.code), DeliveryStatus.FAILED)
        return SendResult(message.recipient_id, SendOutcome.REFUSED, None, exc.code, state, exc.message)

    # ---- replies --------------------------------------------------------------------------------
    def envelope(self, reply: Reply) -> Envelope | None:
        """Hook: the provider's envelope in a reply, or None when the body is not one."""
        raise NotImplementedError

    @classmethod
    def code_known(cls, code: Any, table: ErrorTable | None = None) -> bool:
        try:
            return code in (cls.call_codes if table is None else table)
        except TypeError:  # an unhashable code
            return False

    @classmethod
    def call_class(
        cls, code: Any, *, sending: bool, table: ErrorTable | None = None
    ) -> type[ProviderError] | None:
        """The error a call-level code means by `table` (default `call_codes`; None: success). Unknown
        codes may have gone out on a send, so they are ambiguous there; off a send, ambiguous is transient."""
        if not cls.code_known(code, table):
            return AmbiguousSendError if sending else TransientError
        found = (cls.call_codes if table is None else table)[code]
        return TransientError if found is AmbiguousSendError and not sending else found

    def describe(self, envelope: Envelope, what: str) -> str:
        """Hook: the error text of a failed envelope."""
        return f"{what}: {envelope.message or 'no message'}"

    def retry_after(self, envelope: Envelope) -> float | None:
        """Hook: seconds to wait before retrying a transient code (default `retry_codes`; None: the
        caller's backoff)."""
        return self.retry_codes.get(envelope.code) if isinstance(envelope.code, int | str) else None

    def read_reply(
        self,
        reply: Reply,
        *,
        sending: bool,
        what: str = "",
        keep: Sequence[Any] = (),
        table: ErrorTable | None = None,
    ) -> Envelope:
        """The envelope when its code means success by `table` (default `call_codes`) or is in `keep` (the
        caller's to handle); otherwise raises the error the code (or, without an envelope, the HTTP
        status) means."""
        try:
            return self._read_reply(reply, sending=sending, what=what, keep=keep, table=table)
        except ProviderError as exc:
            metering.mark(exc)
            raise

    def _read_reply(
        self, reply: Reply, *, sending: bool, what: str, keep: Sequence[Any], table: ErrorTable | None
    ) -> Envelope:
        envelope = self.envelope(reply)
        if envelope is None:
            if reply.status < 400:  # a reply we cannot read may still mean the send went out
                cls: type[ProviderError] = AmbiguousSendError if sending else TransientError
                what = what or "reply"
                raise self.error(cls, f"unreadable reply on {what}", code=f"HTTP {reply.status}", reply=reply)
            raise self.http_error(reply, sending=sending, what=what)
        if envelope.code in keep:
            return envelope
        found = self.call_class(envelope.code, sending=sending, table=table)
        if found is None:
            return envelope
        if not self.code_known(envelope.code, table):
            log.warning("%s: unknown code %r on %s (HTTP %s)", self.name, envelope.code, what, reply.status)
        wait = self.retry_after(envelope) if issubclass(found, TransientError) else None
        kw: dict[str, Any] = {} if wait is None else {"retry_after": wait}
        raise self.error(found, self.describe(envelope, what), code=envelope.code, reply=reply, **kw)

    def read(
        self, request: Request, *, keep: Sequence[Any] = (), table: ErrorTable | None = None
    ) -> Envelope:
        """A read-only call (never a send) and its success envelope (see `read_reply`)."""
        return self.read_reply(
            self.request(request), sending=False, what=request.path, keep=keep, table=table
        )

    def unwrap(self, reply: Reply, *, sending: bool, what: str = "") -> Any:
        """The payload of a success envelope (see `read_reply`)."""
        return self.read_reply(reply, sending=sending, what=what).payload

    def auth_headers(self) -> Mapping[str, str] | None:
        """Hook: the headers that carry credentials, if the provider takes them there."""
        return None

    def request(self, request: Request, *, sending: bool = False) -> Reply:
        return self.call(
            request.method,
            request.path,
            sending=sending,
            data=request.data,
            json_body=request.json_body,
            params=request.params,
            headers=self.auth_headers(),
        )

    # ---- the other operations every provider implements -----------------------------------------

    def status(self, message_ids: Sequence[str]) -> list[StatusResult]:
        raise NotImplementedError

    def balance(self) -> Balance:
        raise NotImplementedError

    def reconcile(self, batch: SendBatch, since: datetime) -> list[SendResult]:
        """Ask the provider whether an ambiguous send went out.

        One result per message: ACCEPTED (with its id) when the provider has it, NOT_SENT when the
        provider can say it does not, UNKNOWN when it cannot tell (yet). The default cannot tell.
        """
        return [
            SendResult(m.recipient_id, SendOutcome.UNKNOWN, error="provider cannot be asked")
            for m in batch.messages
        ]

    def inbox(self, cursor: str | None) -> tuple[list[InboundMessage], str]:
        """Messages received on our line since `cursor` (this client's own opaque text; None or "" =
        never read), and the cursor to store once they are recorded. Only where `capabilities.inbox`."""
        raise NotImplementedError
