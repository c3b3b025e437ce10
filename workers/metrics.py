"""Every Prometheus metric a process counts itself, defined once (docs/monitoring.md lists them).

Names follow Prometheus' conventions (base units, `_total` for counters, `_seconds` for durations).
Labels are of bounded cardinality only: provider, method, outcome, kind, state, verdict. Never a
campaign id, a phone number, a user or a key: per-campaign numbers stay in `status` and the console,
and what every process did (a CLI `send` included) is read from the store at scrape time by the
collector in `workers/store_gauges.py`.

These are what THIS process did (a worker, `serve`, `web`); they live in prometheus_client's default
registry (with the multiprocess collector in front of it when a prefork worker sets
PROMETHEUS_MULTIPROC_DIR, see `workers/metrics_server.py`). The helpers below are what the operations
call: one increment per chunk or per call, never one per recipient where a count can be added at once.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import Counter, Gauge, Histogram

from workers.errors import (
    AccountError,
    AmbiguousSendError,
    ProviderError,
    RecipientRefusedError,
    RequestError,
    TransientError,
)

PREFIX = "smsdispatch_"

RECIPIENTS_SENT = Counter(
    f"{PREFIX}recipients_sent",
    "Recipients a provider accepted (a send, or a reconciliation that found them).",
    ["provider"],
)
PARTS_SENT = Counter(
    f"{PREFIX}sms_parts_sent", "SMS parts of the recipients a provider accepted.", ["provider"]
)
COST = Counter(
    f"{PREFIX}cost_rial",
    "Rial the providers reported for accepted messages (only where they report it).",
    ["provider"],
)
RECIPIENTS_FINAL = Counter(
    f"{PREFIX}recipients_final",
    "Final recipient outcomes this process recorded (delivered, undelivered, failed, blacklisted, "
    "expired, rejected, cancelled, unknown).",
    ["provider", "state"],
)
DELIVERY_REPORTS = Counter(
    f"{PREFIX}delivery_reports",
    "Final delivery reports read from a provider's status call, by the state they gave.",
    ["provider", "state"],
)
DELIVERY_LATENCY = Histogram(
    f"{PREFIX}delivery_latency_seconds",
    "From the provider's acceptance to the poll that read 'delivered' (an upper bound: polls are spaced).",
    ["provider"],
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 30 * 3600),
)
PROVIDER_REQUESTS = Counter(
    f"{PREFIX}provider_requests",
    "HTTP exchanges with a provider, by method (send, status, balance, reconcile, inbox, contacts) and "
    "outcome (ok, or the kind of error).",
    ["provider", "method", "outcome"],
)
PROVIDER_DURATION = Histogram(
    f"{PREFIX}provider_request_duration_seconds",
    "Duration of one HTTP exchange with a provider, connect retries included.",
    ["provider", "method"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
PROVIDER_ERRORS = Counter(
    f"{PREFIX}provider_errors",
    "Provider call failures by kind: transient, account, request, ambiguous, refused.",
    ["provider", "kind"],
)
CHUNKS = Counter(f"{PREFIX}chunks", "send_chunk calls by what became of the chunk.", ["outcome"])
REPUBLISHED = Counter(
    f"{PREFIX}chunks_republished",
    "Chunks the housekeeping pass published again: queued ones whose message may be lost, due retries.",
)
RECONCILIATIONS = Counter(
    f"{PREFIX}reconciliations", "Reconciliations of `unknown` chunks, by verdict.", ["verdict"]
)
RATE_LIMIT_WAIT = Counter(
    f"{PREFIX}rate_limit_wait_seconds",
    "Seconds sends were told to wait by an account's rate limit (summed over throttled chunks).",
    ["provider"],
)
BUILD_INFO = Gauge(
    f"{PREFIX}build_info", "1, labelled with the running version.", ["version"], multiprocess_mode="max"
)


class ErrorKind:
    """The `kind` label of a provider error (the error tree of workers/errors.py, one word each)."""

    TRANSIENT = "transient"
    ACCOUNT = "account"
    REQUEST = "request"
    AMBIGUOUS = "ambiguous"
    REFUSED = "refused"


def error_kind(exc: BaseException) -> str:
    """The `kind` label of a provider error; 'request' for anything else a call raised."""
    if isinstance(exc, RecipientRefusedError):
        return ErrorKind.REFUSED
    if isinstance(exc, AmbiguousSendError):
        return ErrorKind.AMBIGUOUS
    if isinstance(exc, TransientError):
        return ErrorKind.TRANSIENT
    if isinstance(exc, AccountError):
        return ErrorKind.ACCOUNT
    if isinstance(exc, RequestError | ProviderError):
        return ErrorKind.REQUEST
    return ErrorKind.REQUEST


def sent(provider: str, recipients: int, parts: int, cost: float | None) -> None:
    """Recipients a provider accepted in one reply (a chunk's send, a reconciliation): three increments."""
    if recipients <= 0:
        return
    RECIPIENTS_SENT.labels(provider).inc(recipients)
    PARTS_SENT.labels(provider).inc(parts)
    if cost:
        COST.labels(provider).inc(cost)


def final(provider: str, state: str, count: int = 1) -> None:
    """`count` recipients reached the final `state` at `provider`."""
    if count > 0:
        RECIPIENTS_FINAL.labels(provider, str(state)).inc(count)


def cancelled(by_provider: Mapping[str, int]) -> None:
    """Recipients a cancel kept from being sent reached the final state `cancelled`, by the provider of
    their chunk (what `Store.cancel` wrote: rows changed, so a cancel that changed nothing counts nothing)."""
    for provider, count in by_provider.items():
        final(provider, "cancelled", count)


def set_build_info() -> None:
    """smsdispatch_build_info{version} = 1 (the version of the installed package). Also turns off the
    `_created` series of counters, which only double what a scrape carries."""
    from importlib.metadata import PackageNotFoundError, version

    from prometheus_client import disable_created_metrics

    disable_created_metrics()
    try:
        v = version("smsdispatch")
    except PackageNotFoundError:
        v = "unknown"
    BUILD_INFO.labels(v).set(1)
