"""The query plans of the hot reads, on both backends: `status`, `summary`, `list`, a campaign's progress and
the store's counts never scan a campaign's recipients or chunks.

Every statement the application layer runs for them is captured and EXPLAINed with its own parameters.
PostgreSQL is asked with sequential scans, bitmap scans and sorts disabled, so what remains is the best plan
the indexes allow (a full scan left in the plan means no index serves it); SQLite plans without statistics,
as a user's database does. Recipients may only be reached through the partial index of next checks (its
first entry) or a chunk's own recipients (the pending check of an unknown chunk); chunks only through the
indexes that stop at a state or a first entry, never through a campaign's whole range.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from campaigns.progress import read_progress
from campaigns.states import RecipientState
from campaigns.store import RecipientUpdate, Store
from dispatcher import app
from dispatcher.config import AppSettings, DispatchSettings
from tests.test_counters import next_chunk, routed

R = RecipientState
# how a plan may reach each big table (index names; PostgreSQL's primary keys are <table>_pkey)
ALLOWED = {
    "recipients": {"ix_recipients_campaign_next_poll", "ix_recipients_due_poll", "ix_recipients_chunk"},
    "chunks": {
        "ix_chunks_campaign_state_next",
        "ix_chunks_campaign_sending",
        "ix_chunks_state_queued",
        "chunks_pkey",
    },
}
PG_NODE = re.compile(
    r"(Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan)(?: Backward)?(?: using (\w+))? on (\w+)"
)
SQLITE_NODE = re.compile(
    r"^(SCAN|SEARCH) (\w+)(?: AS \w+)?(?: USING (?:COVERING )?(?:INDEX (\w+)|INTEGER PRIMARY KEY|PRIMARY KEY))?"
)


def capture(fn: Callable[[], Any]) -> list[tuple[str, Any, str]]:
    """The SELECT statements `fn` runs on any engine: (statement, parameters, dialect)."""
    found: list[tuple[str, Any, str]] = []

    def listen(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            found.append((statement, parameters, conn.dialect.name))

    event.listen(Engine, "before_cursor_execute", listen)
    try:
        fn()
    finally:
        event.remove(Engine, "before_cursor_execute", listen)
    return found


def scans(store: Store, statement: str, parameters: Any) -> list[tuple[str, str | None]]:
    """(table, index or None for a full scan) of every access to recipients or chunks in the plan."""
    out: list[tuple[str, str | None]] = []
    with store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            with conn.begin():
                conn.exec_driver_sql(
                    "SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off"
                )
                lines = [r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters)]
            for line in lines:
                for kind, index, table in PG_NODE.findall(line):
                    if table in ALLOWED:
                        out.append((table, None if kind == "Seq Scan" else index or "bitmap"))
        else:
            for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters):
                match = SQLITE_NODE.match(row[-1])
                if match and match.group(2) in ALLOWED:
                    table, index = match.group(2), match.group(3)
                    if "INTEGER PRIMARY KEY" in row[-1]:
                        index = f"{table}_pkey"
                    out.append((table, None if match.group(1) == "SCAN" else index))
    return out


@pytest.fixture
def busy(store: Store) -> tuple[Store, int]:
    """A running campaign with every kind of chunk and recipient the reads look at, and another beside it."""
    cid = routed(store, 40, batch=4)
    routed(store, 12, batch=4, start=500)
    now = datetime.now(UTC)
    sent = next_chunk(store, cid)
    store.record_send(
        sent,
        [
            RecipientUpdate(m.recipient_id, R.SENT, "x", next_poll_at=now + timedelta(seconds=30))
            for m in sent.messages
        ],
        requeue=False,
    )
    store.chunk_retry(next_chunk(store, cid), "code 10", delay=60, max_attempts=5)
    store.chunk_unknown(next_chunk(store, cid), "timeout")
    store.record_statuses(
        [RecipientUpdate(sent.messages[0].recipient_id, R.DELIVERED, None, "1", None, cost=9.0)]
    )
    return store, cid


def test_status_summary_list_and_counts_never_scan_a_campaigns_rows(busy: tuple[Store, int]) -> None:
    store, cid = busy
    settings = AppSettings(
        DispatchSettings(database_url=str(store.engine.url.render_as_string(hide_password=False)))
    )
    reads: dict[str, Callable[[], Any]] = {
        "status": lambda: app.status(settings, cid).as_json(),
        "summary": lambda: app.summary(settings),
        "summary of one": lambda: app.summary(settings, [cid]),
        "list": lambda: app.list_campaigns(settings),
        "progress": lambda: read_progress(store, cid, datetime.now(UTC)),
        "store counts": store.store_counts,
    }
    wrong = {}
    for name, read in reads.items():
        statements = capture(read)
        assert statements, name
        for statement, parameters, _ in statements:
            bad = [(t, i) for t, i in scans(store, statement, parameters) if i not in ALLOWED[t]]
            if bad:
                wrong.setdefault(name, []).append((bad, " ".join(statement.split())[:200]))
    assert not wrong, wrong


def test_the_plans_check_would_catch_the_old_reads(busy: tuple[Store, int]) -> None:
    """The scans the reads did before the counters are caught by the same rules (the test can fail)."""
    from campaigns.store.counts import recount

    store, cid = busy

    def old() -> None:
        with store.engine.connect() as conn:
            recount(conn, cid)
            conn.exec_driver_sql(
                "SELECT count(*) FROM recipients WHERE campaign_id = %(c)s AND state IN ('sent', 'sent_to_operator')"
                if conn.dialect.name == "postgresql"
                else "SELECT count(*) FROM recipients WHERE campaign_id = ? AND state IN ('sent', 'sent_to_operator')",
                {"c": cid} if conn.dialect.name == "postgresql" else (cid,),
            )

    found = [(t, i) for s, p, _ in capture(old) for t, i in scans(store, s, p) if i not in ALLOWED[t]]
    assert any(table == "recipients" for table, _ in found), found  # a range over the campaign's rows
