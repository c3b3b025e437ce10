"""The `Store` methods of the send path's hot side: the quick claim and recording a send's results. A mixin of
`Store`, kept apart so the facade stays small.

On PostgreSQL each is one statement on an autocommit connection (`campaigns.store.quick`): one round trip, no
BEGIN or COMMIT of its own, and no ROLLBACK at the connection's return (which makes psycopg drop the
connection's prepared statements, so the hot statements were planned again at every chunk).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from campaigns.clock import utcnow
from campaigns.records import ChunkPeek, ClaimedChunk, RecipientUpdate
from campaigns.store import quick, sending


class SendMethods:
    """Mixed into `Store`, which provides `engine` and `_write(fn, *args)`."""

    _write: Any
    engine: Engine

    def _autocommit(self, fn: Any, *args: Any) -> Any:
        """`fn(conn, *args)` on a pooled DBAPI connection (`campaigns.store.raw.run` takes it) in autocommit,
        each statement its own transaction; it goes back to the pool as it came (psycopg's autocommit is a
        client-side switch, allowed while no transaction is open)."""
        conn = self.engine.raw_connection()
        try:
            raw = conn.driver_connection
            raw.autocommit = True
            try:
                return fn(conn, *args)
            finally:
                if not raw.closed:
                    raw.autocommit = False
        finally:
            conn.close()

    @property
    def _postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def claim_quick(
        self,
        chunk_id: int,
        attempt: int,
        lease: timedelta,
        providers: Sequence[str],
        now: datetime | None = None,
    ) -> ClaimedChunk | ChunkPeek | None:
        """The peek and, when the chunk needs nothing the peek is for (no send window, no failover route, no
        daily cap, a provider in `providers`: sent to without a rate limit), its claim: the same compare-and-set
        as `claim_chunk`, with the budget's charge and the counters, in ONE statement on PostgreSQL
        (`quick.quick_claim_stmt`), one transaction on SQLite (`quick.quick_claim_sqlite`). Returns the claimed
        chunk; or the peek (`chunk_cost`'s facts), when nothing was claimed, for the caller's usual path; or
        None when there is no such chunk."""
        now = now or utcnow()
        if self._postgres:
            return self._autocommit(quick.quick_claim, chunk_id, attempt, now + lease, providers, now)
        return self._write(quick.quick_claim_sqlite, chunk_id, attempt, lease, providers, now)

    def record_send(
        self,
        chunk: ClaimedChunk,
        updates: Sequence[RecipientUpdate],
        *,
        requeue: bool,
        now: datetime | None = None,
    ) -> bool:
        """Write what the provider said per recipient and close the chunk, atomically.

        `requeue` (some recipients are known not to have gone out) puts the chunk back in the queue,
        where the next claim sends only its still-pending recipients; otherwise it is accepted (on
        PostgreSQL in one statement, `quick.quick_record_stmt`; else one transaction).
        """
        now = now or utcnow()
        one = not requeue and bool(updates) and self._postgres
        for tries_left in (2, 1, 0):
            try:
                if one:
                    return self._autocommit(quick.quick_record, chunk, updates, now)
                return self._write(sending.record_send, chunk, updates, requeue, now)
            except DBAPIError as exc:
                # The provider's reply exists only in this process: when the connection was lost (the
                # server ended a session that sat frozen in this transaction, a restart), the whole
                # transaction rolled back, and every statement in it is conditional, so write it again.
                if not exc.connection_invalidated or not tries_left:
                    raise
        raise AssertionError("unreachable")
