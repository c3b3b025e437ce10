"""Settings a worker needs, read from the environment (shared/DESIGN.md, "The user's interface").

`dispatcher.config` merges a `.env` or TOML file into the environment (never overriding it) before
anything here is read, so workers started by Celery directly and by the CLI see the same values.
Credentials are wrapped in `Secret` so that no repr, log line or error can print them.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from workers.errors import ConfigurationError

PREFIX = "SMSDISPATCH_"


class Secret:
    """A credential value that prints as *** everywhere except `reveal()`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$", re.I)
_UNIT = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def parse_rate(text: str, setting: str = "rate") -> float:
    """`'30/s'` -> 30.0 parts per second; `'600/m'` -> 10.0."""
    match = _RATE.match(text)
    if not match:
        raise ConfigurationError(f"{setting}={text!r} is not a rate; write it like 30/s or 600/m")
    amount, unit = float(match.group(1)), match.group(2).lower()
    if amount <= 0:
        raise ConfigurationError(f"{setting}={text!r} must be above zero")
    return amount / _UNIT[unit]


@dataclass(frozen=True)
class ProviderSettings:
    """One provider account. `options` holds provider-specific knobs (documented per provider)."""

    name: str
    url: str
    sender: str = ""
    batch: int = 100
    rate: float | None = None  # SMS parts per second for this account; None = unlimited
    credentials: Mapping[str, Secret] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    account_name: str = ""  # SMSDISPATCH_<P>_ACCOUNT_NAME: what people call this account (metrics labels)

    def secret(self, key: str) -> str:
        value = self.credentials.get(key)
        return value.reveal() if value else ""

    @property
    def secret_values(self) -> list[str]:
        return [v.reveal() for v in self.credentials.values() if v]

    @property
    def account_key(self) -> str:
        """A stable name for this account that reveals nothing (rate limits, grouping)."""
        digest = hashlib.sha256("|".join(sorted(self.secret_values)).encode()).hexdigest()[:12]
        return f"{self.name}:{digest}"

    @property
    def account_label(self) -> str:
        """The account as a metrics label: the name the user gave it, else its sender line, else
        "default". Never derived from the credentials (not even a hash)."""
        return self.account_name or self.sender or "default"

    def option(self, key: str, default: str = "") -> str:
        return self.options.get(key, default)

    def env_name(self, key: str) -> str:
        return f"{env_prefix(self.name)}{key.upper()}"


def env_prefix(provider: str) -> str:
    """SMSDISPATCH_<NAME>_ for a provider name, a hyphen spelt "_" (ghasedak-gateway -> SMSDISPATCH_GHASEDAK_GATEWAY_)."""
    return f"{PREFIX}{provider.upper().replace('-', '_')}_"


def env_get(env: Mapping[str, str], name: str, default: str = "") -> str:
    value = env.get(name)
    return default if value is None or value.strip() == "" else value.strip()


def load_provider_settings(
    name: str,
    *,
    default_url: str,
    credential_names: tuple[str, ...],
    option_names: tuple[str, ...] = (),
    max_batch: int,
    default_batch: int | None = None,
    env: Mapping[str, str] | None = None,
) -> ProviderSettings:
    """Read `SMSDISPATCH_<NAME>_*`; batch is capped at the documented maximum."""
    env = os.environ if env is None else env
    up = env_prefix(name)
    batch_text = env_get(env, up + "BATCH", str(default_batch or max_batch))
    try:
        batch = int(batch_text)
    except ValueError:
        raise ConfigurationError(f"{up}BATCH={batch_text!r} is not a whole number") from None
    if not 1 <= batch <= max_batch:
        raise ConfigurationError(
            f"{up}BATCH={batch} must be between 1 and {max_batch}, the documented maximum"
        )
    rate_text = env_get(env, up + "RATE")
    rate = parse_rate(rate_text, up + "RATE") if rate_text else None
    timeout_text = env_get(env, up + "TIMEOUT", "5,30")
    try:
        connect, read = (float(x) for x in timeout_text.split(","))
    except ValueError:
        raise ConfigurationError(
            f"{up}TIMEOUT={timeout_text!r}: write connect,read seconds like 5,30"
        ) from None
    creds = {key: Secret(env_get(env, up + key.upper())) for key in credential_names}
    options = {key: env_get(env, up + key.upper()) for key in option_names if env_get(env, up + key.upper())}
    return ProviderSettings(
        name=name,
        url=env_get(env, up + "URL", default_url).rstrip("/"),
        sender=env_get(env, up + "SENDER"),
        batch=batch,
        rate=rate,
        credentials=creds,
        options=options,
        connect_timeout=connect,
        read_timeout=read,
        account_name=env_get(env, up + "ACCOUNT_NAME"),
    )


@dataclass(frozen=True)
class DispatchSettings:
    """How hard to try, how long to wait, how often to look (SMSDISPATCH_* variables)."""

    database_url: str = "sqlite:///smsdispatch.db"
    broker_url: str = ""
    redis_url: str = ""
    max_attempts: int = 6  # sends of one chunk before it fails with the last reason
    backoff_base: float = 2.0  # seconds; doubles per attempt, with jitter
    backoff_cap: float = (
        120.0  # never more than this between two attempts (stays far below the visibility timeout)
    )
    lease_margin: float = 30.0  # seconds added to the longest possible provider call
    poll_intervals: tuple[float, ...] = (60, 120, 300, 600, 1800, 3600)  # then the last one, repeated
    poll_max_age: float = 72 * 3600  # no final report after this long -> expired
    # A status call that failed transiently is tried again after this many seconds, doubling per
    # failure in a row of that account, up to the cap (and never later than the first poll interval),
    # without moving the recipient up the poll_intervals ladder.
    status_retry_base: float = 5.0
    status_retry_cap: float = 60.0
    reconcile_max_age: float = 3600  # still undecided after this long -> the campaign's policy decides
    # s: a queued chunk published longer ago whose place in line nothing was taken from for as long is published
    # again (its message looks lost: campaigns.store.queue.stale_chunks); one waiting in a moving line is not
    queued_grace: float = 120
    # Chunks named by one broker message (sent one after another by the task, each its own claim): a task's
    # own cost (Celery, the broker's acks) shared by several chunks. docs/benchmarks.md measures it.
    chunks_per_message: int = 4
    send_window: str = ""  # default daily window (Tehran time, "09:00-21:00") for campaigns given none
    optout_every: float = 60  # seconds between opt-out collections from the inboxes; 0 = never
    optout_keywords: str = ""  # comma list replacing campaigns.optout.DEFAULT_KEYWORDS; "" = the default
    # Redis broker: a message unacked this long is delivered again (the claim makes that a no-op).
    # Keep it above the longest send and above workers.dispatch.MAX_COUNTDOWN.
    visibility_timeout: float = 900
    # Failover circuits (README, "Failover"): transient failures in a row that open an account's circuit, and
    # seconds an open circuit waits before one probe send may try it again.
    circuit_failures: int = 5
    circuit_cooldown: float = 60.0
    # Signs webhooks: each API key's webhook secret is derived from it (workers/webhooks.py). Never stored.
    webhook_secret: Secret | None = None
    # Webhook hosts exempt from the public-address rule (workers/webhook_targets.py), lower case.
    webhook_allow_hosts: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DispatchSettings:
        env = os.environ if env is None else env
        broker = env_get(env, PREFIX + "BROKER_URL")
        redis_default = broker if broker.startswith(("redis://", "rediss://")) else ""

        def num(name: str, default: float) -> float:
            text = env_get(env, PREFIX + name, str(default))
            try:
                return float(text)
            except ValueError:
                raise ConfigurationError(f"{PREFIX}{name}={text!r} is not a number") from None

        intervals_text = env_get(env, PREFIX + "POLL_INTERVALS")
        intervals = cls.poll_intervals
        if intervals_text:
            try:
                intervals = tuple(float(x) for x in intervals_text.split(",") if x.strip())
            except ValueError:
                raise ConfigurationError(
                    f"{PREFIX}POLL_INTERVALS={intervals_text!r}: write seconds separated by commas, like 60,120,300"
                ) from None
        return cls(
            database_url=env_get(env, PREFIX + "DATABASE_URL", cls.database_url),
            broker_url=broker,
            redis_url=env_get(env, PREFIX + "REDIS_URL", redis_default),
            max_attempts=int(num("MAX_ATTEMPTS", cls.max_attempts)),
            backoff_base=num("BACKOFF_BASE", cls.backoff_base),
            backoff_cap=num("BACKOFF_CAP", cls.backoff_cap),
            lease_margin=num("LEASE_MARGIN", cls.lease_margin),
            poll_intervals=intervals or cls.poll_intervals,
            poll_max_age=num("POLL_MAX_AGE", cls.poll_max_age),
            status_retry_base=num("STATUS_RETRY_BASE", cls.status_retry_base),
            status_retry_cap=num("STATUS_RETRY_CAP", cls.status_retry_cap),
            reconcile_max_age=num("RECONCILE_MAX_AGE", cls.reconcile_max_age),
            queued_grace=num("QUEUED_GRACE", cls.queued_grace),
            chunks_per_message=max(1, int(num("CHUNKS_PER_MESSAGE", cls.chunks_per_message))),
            send_window=env_get(env, PREFIX + "SEND_WINDOW"),
            optout_every=num("OPTOUT_EVERY", cls.optout_every),
            optout_keywords=env_get(env, PREFIX + "OPTOUT_KEYWORDS"),
            visibility_timeout=num("VISIBILITY_TIMEOUT", cls.visibility_timeout),
            circuit_failures=max(1, int(num("CIRCUIT_FAILURES", cls.circuit_failures))),
            circuit_cooldown=num("CIRCUIT_COOLDOWN", cls.circuit_cooldown),
            webhook_secret=Secret(env_get(env, PREFIX + "WEBHOOK_SECRET")) or None,
            webhook_allow_hosts=frozenset(  # "[::1]" read as "::1", as a URL's hostname is
                h.strip().strip("[]").lower()
                for h in env_get(env, PREFIX + "WEBHOOK_ALLOW_HOSTS").split(",")
                if h.strip()
            ),
        )
