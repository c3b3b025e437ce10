"""Engines for the two stores: SQLite (embedded default) and PostgreSQL (distributed).

SQLite runs in WAL mode with a busy timeout, and every transaction starts with BEGIN IMMEDIATE:
a deferred transaction that reads first and writes later fails at once with "database is locked"
when another writer committed meanwhile, and no busy timeout helps (shared/research/celery.md §5.2).
"""

from __future__ import annotations

import os
import time

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.engine import create_engine as _create_engine

DEFAULT_URL = "sqlite:///smsdispatch.db"
# A process frozen inside a transaction (SIGSTOP, a paused VM, swapping) would hold its row locks for
# ever, and every worker and beat's sweep would queue behind them. PostgreSQL ends such a session
# after this long idle in a transaction: its transaction rolls back (nothing half-written) and, when it
# wakes, it finds its connection gone. No transaction of ours waits on anything slow (never on HTTP).
IDLE_TX_TIMEOUT_ENV = "SMSDISPATCH_DB_IDLE_TX_TIMEOUT"
IDLE_TX_TIMEOUT_DEFAULT = 30.0  # seconds


def normalise_url(url: str) -> str:
    """Accept the plain `postgresql://` spelling users write and use psycopg 3 for it."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str = DEFAULT_URL, *, pool_size: int = 10) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = _create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=20,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            # 64 MiB page cache (default 2 MiB): random inserts into the (campaign, phone) index of a
            # million-row campaign otherwise spill pages to the WAL again and again.
            cur.execute("PRAGMA cache_size=-65536")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn) -> None:  # noqa: ANN001
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    cache_long_statements()
    idle = float(os.environ.get(IDLE_TX_TIMEOUT_ENV) or IDLE_TX_TIMEOUT_DEFAULT)
    engine = _create_engine(
        url,
        pool_size=pool_size,
        max_overflow=20,
        connect_args={"options": f"-c idle_in_transaction_session_timeout={int(idle * 1000)}"},
    )
    ping_idle(engine)
    return engine


# psycopg converts a statement's `%(name)s` placeholders to `$n` again at every execution unless its text is
# at most psycopg._queries.MAX_CACHED_STATEMENT_LENGTH (4,096) characters. The counted set-based UPDATE of a
# send's or a poll's result batch (`tally_stmts.results_stmts`) is ~5,800: 0.43 ms of CPU per batch of 100,
# 4 us a recipient (bench/poll.py). Our statements are a fixed, small set: they may all be cached.
LONGEST_CACHED_STATEMENT = 16_384


def cache_long_statements() -> None:
    """Let psycopg cache the conversion of statements up to LONGEST_CACHED_STATEMENT characters. The limit
    is a module constant of psycopg 3 (3.1-3.3); where a version has none, this does nothing."""
    from psycopg import _queries

    if getattr(_queries, "MAX_CACHED_STATEMENT_LENGTH", LONGEST_CACHED_STATEMENT) < LONGEST_CACHED_STATEMENT:
        _queries.MAX_CACHED_STATEMENT_LENGTH = LONGEST_CACHED_STATEMENT


# seconds: a pooled connection idle longer than this is pinged before it is handed out
PING_AFTER_IDLE = 1.0


def ping_idle(engine: Engine, after: float = PING_AFTER_IDLE) -> None:
    """SQLAlchemy's pre-ping, for connections that sat in the pool longer than `after` seconds only.

    `pool_pre_ping` costs a round trip (`SELECT 1`) at every checkout: three of the eleven a chunk's send
    made (docs/benchmarks.md). A connection handed back a moment ago was alive a moment ago; one that sat
    idle (a server restarted meanwhile, a network cut) is pinged, and one that fails its ping is replaced
    (`DisconnectionError`: the pool discards it and connects anew, SQLAlchemy's documented recipe). A
    server lost within `after` seconds of a connection's last use fails that connection's next statement
    instead, which every caller already survives: a lost claim is a chunk still queued (housekeeping
    publishes it again), a lost record is written again (`Store.record_send`).
    """

    @event.listens_for(engine, "checkin")
    def _checked_in(dbapi_conn, record) -> None:  # noqa: ANN001
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, proxy) -> None:  # noqa: ANN001
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since <= after:
            return  # new (just connected) or in use a moment ago
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as err:
            raise exc.DisconnectionError(f"the pooled connection did not answer its ping: {err}") from err


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
