"""Engines for the two stores: SQLite (embedded default) and PostgreSQL (distributed).

SQLite runs in WAL mode with a busy timeout, and every transaction starts with BEGIN IMMEDIATE:
a deferred transaction that reads first and writes later fails at once with "database is locked"
when another writer committed meanwhile, and no busy timeout helps (shared/research/celery.md §5.2).
"""

from __future__ import annotations

import os

from sqlalchemy import event
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
    idle = float(os.environ.get(IDLE_TX_TIMEOUT_ENV) or IDLE_TX_TIMEOUT_DEFAULT)
    return _create_engine(
        url,
        pool_size=pool_size,
        max_overflow=20,
        pool_pre_ping=True,
        connect_args={"options": f"-c idle_in_transaction_session_timeout={int(idle * 1000)}"},
    )


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
