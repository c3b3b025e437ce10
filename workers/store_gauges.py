"""The store gauges: what every process did, read from the store at scrape time (`web`, `serve`, `beat`).

A prometheus_client custom collector. A scrape reads the store at most every `every` seconds (the
last reading is served in between), so several Prometheus servers or a fast scrape interval cost
one set of queries (`campaigns/store/gauges.py`). A store that cannot be read gives
`smsdispatch_store_up 0` and no store gauge (a stale number would mislead). The providers' credit
comes from their balance calls, made by a background thread at most every `credit_every` seconds,
never inside a scrape.

    smsdispatch_store_recipients{provider,state}        recipients in the store
    smsdispatch_store_cost_rial{provider}               rial the providers reported
    smsdispatch_campaigns{state}                        campaigns
    smsdispatch_recipients_pending                      not sent yet
    smsdispatch_recipients_awaiting_report              sent, no final delivery report yet
    smsdispatch_oldest_queued_chunk_age_seconds         the longest a claimable chunk has waited (0: none)
    smsdispatch_campaigns_unattended                    running campaigns nothing is sending
    smsdispatch_circuit_open{provider,account}          1 when the account's circuit is open or half-open
    smsdispatch_scheduled_cost_next_24h{provider,unit}  what running campaigns and those due within a day
                                                        still need, in rial and in SMS parts ("sms")
    smsdispatch_provider_credit{provider,unit}          the balance call's credit, in its unit
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from campaigns.circuit import CircuitState
from campaigns.clock import utcnow
from campaigns.liveness import HeartbeatSettings
from campaigns.states import AWAITING_REPORT, RecipientState
from campaigns.store import gauges
from campaigns.store.health import all_health
from campaigns.store.heartbeats import read_liveness
from campaigns.store.queue import running_windows
from campaigns.windows import parse_window
from workers.errors import ConfigurationError, ProviderError
from workers.providers import NAMES, build_client
from workers.providers.base import ProviderClient
from workers.status import Balance

log = logging.getLogger("workers.metrics")
P = "smsdispatch_"
# s: the first scrape waits this long at most for the first balance calls (a provider slow to answer is shown
# at the next scrape; a scrape that waited longer could pass its scraper's timeout)
CREDIT_FIRST_WAIT = 3.0


@dataclass(frozen=True)
class Reading:
    """One reading of the store, as the gauges show it."""

    totals: gauges.RecipientTotals
    campaigns: dict[str, int]
    oldest_age: float
    unattended: int
    circuits: list[tuple[str, str, bool]]  # (provider, account label, open)
    need: dict[str, tuple[int, int]]  # provider -> (parts, rial)


def configured_clients(env: Mapping[str, str] | None = None) -> list[ProviderClient]:
    """A client for every provider whose credentials are set (the others are left out silently)."""
    clients = []
    for name in NAMES:
        try:
            clients.append(build_client(name, env))
        except ConfigurationError:
            continue
    return clients


class StoreGauges(Collector):
    """Register once per process: `REGISTRY.register(StoreGauges(engine, distributed=...))`."""

    def __init__(
        self,
        engine: Engine,
        *,
        distributed: bool,
        env: Mapping[str, str] | None = None,
        every: float = 5.0,
        credit_every: float = 300.0,
        heartbeat: HeartbeatSettings | None = None,
    ) -> None:
        self.engine = engine
        self.distributed = distributed
        self.every = every
        self.credit_every = credit_every
        self.heartbeat = heartbeat or HeartbeatSettings.from_env(os.environ if env is None else env)
        self.clients = configured_clients(env)
        self._labels = {c.settings.account_key: (c.name, c.settings.account_label) for c in self.clients}
        self._lock = threading.Lock()
        self._reading: Reading | None = None
        self._read_at = -1e9
        self._credit: dict[str, Balance] = {}
        self._credit_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._credit_read = threading.Event()  # set once the first round of balance calls is over

    def describe(self) -> list[Metric]:
        return []  # registering must not read the store

    # ---- the credit, refreshed in the background ----------------------------------------------------
    def start_credit(self, wait: float = 0.0) -> None:
        """Start the balance calls' thread (once); each provider is asked at most every credit_every s. A
        call that starts it waits up to `wait` seconds for the first round of balance calls, so the scrape
        that started it shows the credit (it read an empty credit while the first calls were on the way)."""
        if self._credit_thread is None and self.clients and self.credit_every > 0:
            self._credit_thread = threading.Thread(target=self._credit_loop, name="credit", daemon=True)
            self._credit_thread.start()
            self._credit_read.wait(wait)

    def stop(self) -> None:
        self._stop.set()

    def _credit_loop(self) -> None:
        while not self._stop.is_set():
            self.refresh_credit()
            self._credit_read.set()
            self._stop.wait(self.credit_every)

    def refresh_credit(self) -> None:
        for client in self.clients:
            if not client.capabilities.balance:
                continue
            try:
                self._credit[client.name] = client.balance()
            except (ProviderError, ConfigurationError) as exc:
                log.warning("credit of %s not read: %s", client.name, exc)

    # ---- the store, read at most every `every` seconds ----------------------------------------------
    def read(self) -> Reading:
        now = utcnow()
        with self.engine.connect() as conn:
            totals = gauges.recipient_totals(conn)
            campaigns = gauges.campaigns_by_state(conn)
            running = gauges.running_campaigns(conn)
            since = gauges.claimable_since(conn, now)
            windows = running_windows(conn)
            health = all_health(conn)
            need = gauges.scheduled_need(conn, now)
        held = {cid for cid, w in windows.items() if parse_window(w).seconds_until_open(now) > 0}
        waiting = [(now - at).total_seconds() for cid, at in since.items() if cid not in held]
        unattended = sum(
            read_liveness(
                self.engine,
                c.id,
                "running",
                now,
                distributed=self.distributed,
                queued_chunks=c.queued_chunks,
                started_at=c.started_at,
                settings=self.heartbeat,
                pending=c.pending,
            ).unattended
            for c in running
        )
        opened = {h.account for h in health if h.state != CircuitState.CLOSED}
        circuits = [(p, label, key in opened) for key, (p, label) in self._labels.items()]
        return Reading(totals, campaigns, max(waiting, default=0.0), unattended, circuits, need)

    def reading(self) -> Reading | None:
        with self._lock:
            if time.monotonic() - self._read_at >= self.every:
                try:
                    self._reading = self.read()
                except Exception as exc:  # noqa: BLE001 - a scrape never fails for the store
                    log.warning("store gauges not read: %s: %s", type(exc).__name__, exc)
                    self._reading = None
                self._read_at = time.monotonic()
            return self._reading

    def collect(self) -> Iterator[Metric]:
        self.start_credit(wait=CREDIT_FIRST_WAIT)
        reading = self.reading()
        yield GaugeMetricFamily(
            f"{P}store_up", "1 when the store could be read for these gauges", reading is not None
        )
        yield from self._credit_families(reading)
        if reading is None:
            return
        recipients = GaugeMetricFamily(
            f"{P}store_recipients",
            "Recipients in the store by provider and state",
            labels=["provider", "state"],
        )
        for (provider, state), n in sorted(reading.totals.counts.items()):
            recipients.add_metric([provider, state], n)
        yield recipients
        cost = GaugeMetricFamily(f"{P}store_cost_rial", "Rial the providers reported", labels=["provider"])
        for provider, rial in sorted(reading.totals.cost.items()):
            cost.add_metric([provider], rial)
        yield cost
        campaigns = GaugeMetricFamily(f"{P}campaigns", "Campaigns by state", labels=["state"])
        for state, n in sorted(reading.campaigns.items()):
            campaigns.add_metric([state], n)
        yield campaigns
        pending = reading.totals.in_states([RecipientState.PENDING])
        yield GaugeMetricFamily(f"{P}recipients_pending", "Recipients not sent yet", pending)
        awaiting = reading.totals.in_states(AWAITING_REPORT)
        yield GaugeMetricFamily(
            f"{P}recipients_awaiting_report", "Recipients sent, with no final delivery report yet", awaiting
        )
        yield GaugeMetricFamily(
            f"{P}oldest_queued_chunk_age_seconds",
            "Seconds the oldest claimable chunk (of a running campaign, inside its window) has waited",
            reading.oldest_age,
        )
        yield GaugeMetricFamily(
            f"{P}campaigns_unattended", "Running campaigns nothing is sending", reading.unattended
        )
        circuits = GaugeMetricFamily(
            f"{P}circuit_open",
            "1 when the account's circuit is open or half-open",
            labels=["provider", "account"],
        )
        for provider, account, is_open in sorted(reading.circuits):
            circuits.add_metric([provider, account], int(is_open))
        yield circuits

    def _credit_families(self, reading: Reading | None) -> Iterator[Metric]:
        credit = GaugeMetricFamily(
            f"{P}provider_credit", "Credit from the provider's balance call", labels=["provider", "unit"]
        )
        for provider, balance in sorted(self._credit.items()):
            credit.add_metric([provider, balance.unit.lower()], balance.amount)
        yield credit
        if reading is None:
            return
        need = GaugeMetricFamily(
            f"{P}scheduled_cost_next_24h",
            "What running campaigns and those due within 24 h still need, in rial and SMS parts",
            labels=["provider", "unit"],
        )
        for provider, (parts, rial) in sorted(reading.need.items()):
            need.add_metric([provider, "sms"], parts)
            need.add_metric([provider, "rial"], rial)
            unit = self._credit.get(provider)
            if unit is not None and unit.unit.lower() == "toman":
                need.add_metric([provider, "toman"], rial / 10)
        yield need
