"""Reading a provider's received messages in time windows, for providers whose ids are not known to grow.

The cursor is a window of our own clock: `{"until": <Unix seconds read up to>, "seen": [ids of that
pass]}`. The next pass reads from `until - overlap` to now and skips the ids already seen, so a reply
that arrives late or under clock skew is still read, and one already handled is not handled again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from workers.providers.transport import inbound_messages
from workers.providers.values import field, to_int
from workers.providers.values import rows as dict_rows
from workers.status import InboundMessage

log = logging.getLogger("workers.providers")

# (window start, window end, page from 0) -> (messages of that page, total count if the reply gives one)
Page = tuple[list[InboundMessage], int | None]
PageReader = Callable[[int, int, int], Page]


def parse_inbox_cursor(cursor: str | None) -> tuple[int | None, frozenset[str]]:
    """(Unix seconds read up to, ids seen in that pass); (None, {}) for no or unreadable cursor."""
    try:
        data = json.loads(cursor or "")
        return int(data["until"]), frozenset(str(i) for i in data.get("seen") or ())
    except (ValueError, TypeError, KeyError, AttributeError):
        return None, frozenset()


def format_inbox_cursor(until: int, seen: set[str]) -> str:
    return json.dumps({"until": until, "seen": sorted(i for i in seen if i)}, separators=(",", ":"))


def read_window(
    cursor: str | None,
    readers: Sequence[PageReader],
    *,
    overlap: int,
    lookback: int,
    page_size: int,
    max_pages: int,
    provider: str,
) -> tuple[list[InboundMessage], str]:
    """Every page of every reader over the cursor's window to now -> (new messages, next cursor).

    `overlap` and `lookback` are seconds; a reader's pages end at a short page or at its total. When
    a reader has more than `max_pages` pages the old cursor is kept, so the next pass reads the window
    again (re-adding a message is harmless)."""
    until, seen = parse_inbox_cursor(cursor)
    now = int(time.time())
    start = now - lookback if until is None else min(until - overlap, now)
    out: list[InboundMessage] = []
    ids: set[str] = set()
    complete = True
    for read in readers:
        for page in range(max_pages):
            rows, total = read(start, now, page)
            out += [
                m for m in rows if not m.message_id or (m.message_id not in seen and m.message_id not in ids)
            ]
            ids.update(m.message_id for m in rows)
            if len(rows) < page_size or (total is not None and (page + 1) * page_size >= total):
                break
        else:
            complete = False
    if not complete:
        log.warning("%s: over %d replies in one inbox window; cursor kept", provider, max_pages * page_size)
        return out, cursor or ""
    return out, format_inbox_cursor(now, ids)


def inbound_rows(provider: str, rows: Any, keys: tuple[str, str, str, str]) -> list[InboundMessage]:
    """Inbox rows (dicts) -> InboundMessage; `keys` name the id, sender, text and received-at fields,
    read case-insensitively. A missing id is ""; a missing time is None (kept as the provider wrote it)."""
    out = []
    for row in dict_rows(rows):
        mid, sender, text, at = (field(row, k) for k in keys)
        out.append(
            (
                "" if mid is None else str(mid),
                str(sender or ""),
                str(text or ""),
                None if at is None else str(at),
            )
        )
    return inbound_messages(provider, out)


def newer_than(messages: Sequence[InboundMessage], last: int) -> list[InboundMessage]:
    """Messages above the cursor; one without a numeric id cannot be placed, so it is kept (re-adding is harmless)."""
    return [m for m in messages if (to_int(m.message_id) or 0) > last or to_int(m.message_id) is None]


def read_newer(
    cursor: str | None,
    readers: Sequence[Callable[[int], tuple[list[InboundMessage], int]]],
    *,
    page_size: int,
    max_pages: int,
    newest_first: bool,
    provider: str,
) -> tuple[list[InboundMessage], str]:
    """For providers whose message ids grow with arrival: the cursor is the highest id handled, and a
    pass keeps only messages above it. Each reader (e.g. one per read state) maps a page from 0 to
    (messages, rows on that page) and is read to its short page. With `newest_first` a reader stops at
    the first page that reaches a message already handled. With more than `max_pages` pages the cursor
    is kept, so nothing past them is skipped."""
    last = to_int(cursor) or 0
    out: list[InboundMessage] = []
    seen: set[str] = set()
    top = last
    for read_page in readers:
        for page in range(max_pages):
            messages, count = read_page(page)
            fresh = [m for m in newer_than(messages, last) if not m.message_id or m.message_id not in seen]
            seen.update(m.message_id for m in fresh)
            out += fresh
            top = max([top, *(to_int(m.message_id) or 0 for m in fresh)])
            if count < page_size or (newest_first and len(fresh) < len(messages)):
                break
        else:
            log.warning("%s: inbox longer than %d rows; cursor kept", provider, max_pages * page_size)
            return out, str(last) if last else (cursor or "")
    return out, str(top) if top else (cursor or "")
