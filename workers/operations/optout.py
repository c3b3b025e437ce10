"""collect_optouts: read each configured provider account's inbox from its stored cursor, suppress the
numbers whose reply is an opt-out (campaigns.optout), and move the cursor in the same transaction.

A provider that is down, unconfigured or without an inbox never stops the others: it is logged and
skipped, its cursor stays where it was, and the next pass reads the same replies again. Running twice
is harmless: a number already listed keeps its first reason, and the cursor moves by compare-and-set
(`Store.record_optouts`), so of two passes racing from the same cursor only one writes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from campaigns.clock import utcnow
from campaigns.optout import opt_out_keyword, parse_keywords
from campaigns.store import Store
from workers.deps import WorkerDeps
from workers.errors import ConfigurationError, ProviderError
from workers.providers import NAMES, client_class
from workers.providers.base import ProviderClient
from workers.status import InboundMessage

log = logging.getLogger("workers.optout")

QUOTE_CHARS = 40  # how much of the reply the reason quotes


def optout_reason(message: InboundMessage, read_at: datetime) -> str:
    """`opted out: replied 'لغو ۱۱' via ghasedak on <the provider's date>` (or the day we read it)."""
    quoted = " ".join(message.text.split())[:QUOTE_CHARS]
    when = f"on {message.received_at}" if message.received_at else f"read on {read_at:%Y-%m-%d}"
    return f"opted out: replied '{quoted}' via {message.provider} {when}"


def optouts_from(
    messages: Iterable[InboundMessage], keywords: frozenset[str], read_at: datetime
) -> dict[str, str]:
    """phone -> reason for every reply that is an opt-out from an Iranian mobile; the first reply wins. Pure."""
    found: dict[str, str] = {}
    for m in messages:
        if m.phone and m.phone not in found and opt_out_keyword(m.text, keywords) is not None:
            found[m.phone] = optout_reason(m, read_at)
    return found


def inbox_account(client: ProviderClient) -> str:
    """The cursor's key: the account (which reveals no secret) and the line whose inbox is read."""
    return f"{client.settings.account_key}:{client.settings.sender}"[:64]


def collect_account(client: ProviderClient, store: Store, keywords: frozenset[str]) -> int:
    """One account's pass; raises what the provider raised (nothing is written then)."""
    account = inbox_account(client)
    previous = store.inbox_cursor(account)
    messages, cursor = client.inbox(previous)
    optouts = optouts_from(messages, keywords, utcnow())
    added = store.record_optouts(account, client.name, optouts, cursor, previous=previous)
    if added is None:
        log.info("opt-outs: %s: another pass moved the cursor first; nothing written", client.name)
        return 0
    if optouts:
        log.info(
            "opt-outs: %s: %d replies, %d opt-outs, %d new", client.name, len(messages), len(optouts), added
        )
    return added


def inbox_clients(deps: WorkerDeps) -> list[ProviderClient]:
    """The configured accounts whose provider has an inbox (capabilities.inbox)."""
    clients = []
    for name in NAMES:
        if not client_class(name).capabilities.inbox:
            continue
        try:
            clients.append(deps.providers.get(name))
        except ConfigurationError:
            log.debug("opt-outs: %s is not configured", name)
    return clients


def collect_optouts(deps: WorkerDeps) -> int:
    """Every configured account with an inbox, one after the other; returns how many numbers were newly suppressed."""
    keywords = parse_keywords(deps.settings.optout_keywords)
    added = 0
    for client in inbox_clients(deps):
        try:
            added += collect_account(client, deps.store, keywords)
        except (ProviderError, ConfigurationError) as exc:
            log.warning("opt-outs: %s inbox not read, will try again: %s", client.name, exc)
        except Exception:  # noqa: BLE001 - one provider's bug must not keep the others' opt-outs unread
            log.exception("opt-outs: %s inbox pass failed", client.name)
    return added
