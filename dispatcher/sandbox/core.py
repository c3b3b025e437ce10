"""The sandbox's memory and fault injection, shared by the provider twins.

The sandbox keeps every message it accepted (so tests can prove "each recipient exactly once"),
decides each number's final outcome deterministically from the seed (so tests can compare the
report with what the sandbox decided), and can be told to misbehave: scripted faults for the next
N calls, a random transient-failure rate, latency, a limited credit, and renamed fields (`Rename`:
a provider that changed a key of its answers, as the parsers must survive without misreading).
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

# Share of numbers per final outcome, in percent, in this order.
OUTCOME_SHARES: tuple[tuple[str, int], ...] = (
    ("delivered", 85),
    ("undelivered", 7),
    ("blacklisted", 5),
    ("failed", 3),
)

# Credentials each twin accepts unless a test sets others.
DEFAULT_CREDENTIALS: dict[str, dict[str, str]] = {
    "ghasedak": {"apikey": "sandbox-ghasedak-key"},
    "mediapayamak": {"apikey": "sandbox-mediapayamak-key", "username": "sandbox", "password": "sandbox-pass"},
    "amoot": {"token": "sandbox-amoot-token"},
    "negin": {"username": "sandbox", "password": "sandbox-pass"},
    "ghasedak-gateway": {"apikey": "sandbox-ghasedak-gateway-key"},
}

DEFAULT_SENDERS: dict[str, str] = {
    "ghasedak": "10008566",
    "mediapayamak": "50004001",
    "amoot": "public",
    "negin": "983000330000",
    "ghasedak-gateway": "2100000000",
}

PREFIXES: dict[str, str] = {
    "ghasedak": "/ghasedak/v2",
    "mediapayamak": "/mediapayamak",
    "amoot": "/amoot/rest",
    "negin": "/negin/api",
    "ghasedak-gateway": "/ghasedak-gateway/rest/api/v1/WebService",
}


@dataclass
class AcceptedMessage:
    provider: str
    message_id: str
    phone: str  # digits as the twin normalised them: 989XXXXXXXXX
    text: str
    sender: str
    client_ref: str | None = None
    batch_id: str | None = None
    accepted_at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaultKind(StrEnum):
    """How a scripted fault misbehaves (see `Fault`)."""

    CODE = "code"
    TRANSIENT = "transient"  # the twin's own transient code (what `fail_rate` draws)
    HTTP = "http"
    HANG = "hang"
    ACCEPT_THEN_HTTP = "accept_then_http"
    ACCEPT_THEN_HANG = "accept_then_hang"


@dataclass
class Fault:
    """A scripted misbehaviour for the next `times` calls of `op` at `provider`.

    kind:
      code             answer with the provider's own error `code` (nothing accepted)
      http             answer HTTP `status` with a non-provider body (nothing accepted)
      hang             wait `seconds`, then answer normally (nothing accepted before the wait)
      accept_then_http accept the messages, then answer HTTP `status` (an ambiguous send)
      accept_then_hang accept the messages, wait `seconds`, then answer (the client times out)
    """

    provider: str
    op: str = "send"
    kind: str = FaultKind.CODE  # a FaultKind (a plain string from the HTTP control API compares equal)
    code: int | str | None = None
    status: int = 500
    seconds: float = 5.0
    times: int = 1


@dataclass
class Rename:
    """Keys of `provider`'s JSON answers at `path` (the twin's method path, e.g. "GetMessagesByDateRange")
    renamed at any depth, `fields` old -> new ("" drops the key), for the next `times` answers (None: all)."""

    provider: str
    path: str
    fields: dict[str, str]
    times: int | None = None


def digits(phone: str) -> str:
    """Twins key numbers as 98XXXXXXXXXX whatever spelling the client sent."""
    d = "".join(ch for ch in str(phone) if ch.isdigit())
    if d.startswith("0098"):
        d = d[2:]
    elif d.startswith("0"):
        d = "98" + d[1:]
    elif d.startswith("9") and len(d) == 10:
        d = "98" + d
    return d


class SandboxState:
    def __init__(
        self,
        *,
        seed: int = 0,
        latency_ms: float = 0.0,
        fail_rate: float = 0.0,
        final_after_s: float = 1.0,
        negin_min_interval_s: float = 0.0,
        amoot_max_numbers: int = 100,
        credentials: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.seed = seed
        self.latency_ms = latency_ms
        self.fail_rate = fail_rate
        self.final_after_s = final_after_s
        self.negin_min_interval_s = negin_min_interval_s
        self.amoot_max_numbers = amoot_max_numbers  # Amoot documents no maximum; the twin's is a setting
        self.credentials = {k: dict(v) for k, v in (credentials or DEFAULT_CREDENTIALS).items()}
        self.lock = threading.RLock()
        self._rng = random.Random(seed)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.messages: list[AcceptedMessage] = []
            self.by_id: dict[tuple[str, str], AcceptedMessage] = {}
            self.by_ref: dict[tuple[str, str], AcceptedMessage] = {}
            self.batches: dict[tuple[str, str], list[AcceptedMessage]] = {}
            self.faults: list[Fault] = []
            self.renames: list[Rename] = []
            self.credit: dict[str, int] = {}
            # Keys revoked (every call refused as unauthorised), and keys to revoke once a provider has
            # accepted that many messages: a panel that cuts an account off mid-campaign.
            self.revoked: set[str] = set()
            self.revoke_at: dict[str, int] = {}
            self.inbox: dict[str, list[dict[str, Any]]] = {}
            self.calls: Counter[tuple[str, str]] = Counter()
            self.last_call_at: dict[str, float] = {}
            self._next_id = 1_000_000 + (self.seed % 1000) * 1000
            self._next_batch = 500_000
            self.phonebook = None  # the twins' phonebooks: dispatcher.sandbox.phonebook.book(state)

    # ---- identities ---------------------------------------------------------------------------
    def new_id(self) -> str:
        with self.lock:
            self._next_id += 1
            return str(self._next_id)

    def new_batch_id(self) -> str:
        with self.lock:
            self._next_batch += 1
            return str(self._next_batch)

    def revoke(self, provider: str, after: int = 0) -> None:
        """Refuse `provider`'s credentials from now on, or once it has accepted `after` messages."""
        with self.lock:
            if after <= len(self.accepted(provider)):
                self.revoked.add(provider)
            else:
                self.revoke_at[provider] = after

    def authorised(self, provider: str, **given: str | None) -> bool:
        if provider in self.revoked:
            return False
        expected = self.credentials.get(provider, {})
        return all(given.get(k) is not None and given.get(k) == expected.get(k) for k in given)

    # ---- accepting ----------------------------------------------------------------------------
    def charge(self, provider: str, count: int) -> bool:
        """Take `count` messages of credit; False (and nothing taken) when there is not enough."""
        with self.lock:
            left = self.credit.get(provider)
            if left is None:
                return True
            if left < count:
                return False
            self.credit[provider] = left - count
            return True

    def accept(
        self,
        provider: str,
        phone: str,
        text: str,
        sender: str,
        *,
        client_ref: str | None = None,
        batch_id: str | None = None,
        message_id: str | None = None,
    ) -> AcceptedMessage:
        msg = AcceptedMessage(
            provider, message_id or self.new_id(), digits(phone), text, sender, client_ref, batch_id
        )
        with self.lock:
            self.messages.append(msg)
            self.by_id[(provider, msg.message_id)] = msg
            if client_ref:
                self.by_ref[(provider, client_ref)] = msg
            if batch_id:
                self.batches.setdefault((provider, batch_id), []).append(msg)
            at = self.revoke_at.get(provider)
            if at is not None and len(self.accepted(provider)) >= at:
                self.revoked.add(provider)
                del self.revoke_at[provider]
        return msg

    def find(self, provider: str, message_id: str) -> AcceptedMessage | None:
        return self.by_id.get((provider, str(message_id)))

    def find_ref(self, provider: str, client_ref: str) -> AcceptedMessage | None:
        return self.by_ref.get((provider, str(client_ref)))

    def sent_between(self, provider: str, start: float, end: float) -> list[AcceptedMessage]:
        with self.lock:
            return [m for m in self.messages if m.provider == provider and start <= m.accepted_at <= end]

    # ---- outcomes -----------------------------------------------------------------------------
    def outcome(self, phone: str) -> str:
        """The final outcome this sandbox gives a number: the same for the same seed, always."""
        h = int.from_bytes(hashlib.sha256(f"{self.seed}:{digits(phone)}".encode()).digest()[:4], "big") % 100
        acc = 0
        for name, share in OUTCOME_SHARES:
            acc += share
            if h < acc:
                return name
        return OUTCOME_SHARES[0][0]

    def delivery(self, msg: AcceptedMessage, now: float | None = None) -> str:
        """'operator' until `final_after_s` has passed since acceptance, then the final outcome."""
        now = time.time() if now is None else now
        if now - msg.accepted_at < self.final_after_s:
            return "operator"
        return self.outcome(msg.phone)

    # ---- faults -------------------------------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, provider: str, op: str) -> Fault | None:
        """The next scripted fault for this call, else a random transient one at `fail_rate`."""
        with self.lock:
            self.calls[(provider, op)] += 1
            for fault in self.faults:
                if fault.provider == provider and fault.op == op and fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
            if self.fail_rate and op == "send" and self._rng.random() < self.fail_rate:
                return Fault(provider, op, kind=FaultKind.TRANSIENT)
        return None

    def add_rename(self, rename: Rename) -> None:
        with self.lock:
            self.renames.append(rename)

    def take_rename(self, provider: str, path: str) -> dict[str, str]:
        """The keys to rename in this answer ({} for none), counting the answer against `times`."""
        out: dict[str, str] = {}
        with self.lock:
            for rename in list(self.renames):
                if rename.provider == provider and rename.path.strip("/") == path.strip("/"):
                    out.update(rename.fields)
                    if rename.times is not None:
                        rename.times -= 1
                        if rename.times <= 0:
                            self.renames.remove(rename)
        return out

    def too_soon(self, provider: str, min_interval: float) -> bool:
        """True when this call comes less than `min_interval` s after the previous one (Negin 409)."""
        now = time.monotonic()
        with self.lock:
            last = self.last_call_at.get(provider)
            if min_interval and last is not None and now - last < min_interval:
                return True
            self.last_call_at[provider] = now
            return False

    # ---- inbox --------------------------------------------------------------------------------
    def add_inbound(self, provider: str, sender: str, text: str, line: str = "") -> dict[str, Any]:
        item = {
            "id": self.new_id(),
            "sender": sender,
            "text": text,
            "line": line,
            "at": time.time(),
            "read": False,
        }
        with self.lock:
            self.inbox.setdefault(provider, []).append(item)
        return item

    # ---- views for tests ----------------------------------------------------------------------
    def accepted(self, provider: str | None = None) -> list[AcceptedMessage]:
        with self.lock:
            return [m for m in self.messages if provider is None or m.provider == provider]

    def count_by_phone(self, provider: str | None = None) -> Counter[str]:
        return Counter(m.phone for m in self.accepted(provider))


def sandbox_env(base_url: str, credentials: dict[str, dict[str, str]] | None = None) -> dict[str, str]:
    """The SMSDISPATCH_* variables that point every client at a sandbox with valid credentials."""
    creds = credentials or DEFAULT_CREDENTIALS
    base = base_url.rstrip("/")
    env: dict[str, str] = {}
    for provider, prefix in PREFIXES.items():
        up = f"SMSDISPATCH_{provider.upper().replace('-', '_')}_"
        env[up + "URL"] = base + prefix
        env[up + "SENDER"] = DEFAULT_SENDERS[provider]
        for key, value in creds[provider].items():
            if provider == "mediapayamak" and key in ("username", "password"):
                continue  # the API key is the preferred auth; username/password stay available
            env[up + key.upper()] = value
    return env
