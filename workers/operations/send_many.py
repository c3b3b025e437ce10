"""send_chunks: one broker message naming several chunks, sent in turn, each chunk's record beside the next
chunk's provider call.

A slot that records a chunk before it claims the next waits on the database for every chunk besides the
provider's latency (docs/benchmarks.md, "Where a chunk's time goes at 50 ms"). Here a chunk every recipient of
which was accepted hands its record to one thread of the message's own, and the slot goes on to the next
chunk; the message is done (and acknowledged) only once every record is written. A chunk is claimed, then
called, then recorded, as always: what runs beside the next call is only the record, whose chunk stays
claimed until it is written (a crash before then is a chunk claimed and maybe sent, reconciled as when a
worker dies after the call). A chunk that asks to be re-published is recorded before its follow-up, so the
message that re-publishes it never finds it still claimed.

The next chunk's claim runs beside this chunk's call too (`ClaimAhead`, where the next chunk may be claimed
in one statement: `Store.claim_quick`), with a lease longer by one call (`lease.ahead_terms`). A chunk claimed
ahead is not yet handed to the provider: before its call its campaign is read once more, and a campaign
paused or cancelled meanwhile gets the claim back (`Store.keep_claim`), so a pause or cancel still takes effect
at the next chunk. A crash while it waits is a chunk claimed and not sent, reconciled as when a worker dies
between its claim and its call.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from campaigns.store import ChunkPeek, ClaimedChunk
from workers.deps import WorkerDeps
from workers.operations.lease import ahead_terms
from workers.operations.send import Outcome, send_chunk

log = logging.getLogger("workers.send")


class Records:
    """The records handed on by one message's chunks, written in order by one thread of their own."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list[tuple[int, Future[object]]] = []

    def later(self, chunk_id: int) -> Callable[[Callable[[], object]], None]:
        """The `record_later` of one chunk's send."""

        def take(record: Callable[[], object]) -> None:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="record")
            context = contextvars.copy_context()  # the chunk's log fields go with its record
            self._pending.append((chunk_id, self._pool.submit(context.run, record)))

        return take

    def wait(self) -> Exception | None:
        """Wait for every record; the first that raised (each logged), or None."""
        error: Exception | None = None
        for chunk_id, future in self._pending:
            exc = future.exception()
            if isinstance(exc, Exception):
                log.error("chunk %s: its record raised", chunk_id, exc_info=exc)
                error = error or exc
        if self._pool is not None:
            self._pool.shutdown()
        return error


class ClaimAhead:
    """The next chunk's quick claim, made by one thread of the message's own while the slot's thread sends."""

    def __init__(self, deps: WorkerDeps) -> None:
        self._deps = deps
        self._pool: ThreadPoolExecutor | None = None

    def start(
        self, chunk_id: int, attempt: int | None
    ) -> tuple[Future[ClaimedChunk | ChunkPeek | None], float] | None:
        """Claim `chunk_id` at `attempt` in the background, with the seconds its lease allows it to wait for its
        call besides the margin (`lease.ahead_terms`); None where it cannot be claimed in one go (no attempt
        named, no provider sent to without a peek that can be asked whether a send went out)."""
        providers, lease, wait = ahead_terms(self._deps)
        if attempt is None or not providers:
            return None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="claim-ahead")
        context = contextvars.copy_context()
        store = self._deps.store
        return self._pool.submit(context.run, store.claim_quick, chunk_id, attempt, lease, providers), wait

    @staticmethod
    def result(
        started: tuple[Future[ClaimedChunk | ChunkPeek | None], float] | None,
    ) -> tuple[ClaimedChunk | ChunkPeek | None, float]:
        """What the claim found and its wait; None (the usual path then claims) when it was not made or
        raised. A claim that committed and then raised leaves the chunk claimed and unsent: its lease runs out
        and it is reconciled, as any claim that raised."""
        if started is None:
            return None, 0.0
        future, wait = started
        try:
            return future.result(), wait
        except Exception:  # noqa: BLE001 - the usual path tries again and says what is wrong
            log.warning("a claim ahead raised", exc_info=True)
            return None, 0.0

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()


def send_chunks(
    chunks: Sequence[tuple[int, int | None]],
    deps: WorkerDeps,
    *,
    reserved: bool = False,
    reserve_within: float = 0.0,
    then: Callable[[Outcome], object] | None = None,
) -> list[Outcome]:
    """`send_chunk` for each (chunk id, attempt) in turn, `then(outcome)` after each (the follow-up), for one
    message that names several chunks; `reserved` applies to the first (a re-published chunk comes alone).
    Returns once every chunk's record is written.

    A chunk whose send or record raised (a bug, a database that went away) does not keep the others from
    being sent: it is logged and the first such error is raised once all were tried (the chunk stays
    claimable, or its lease runs out, as when it came alone).
    """
    records, claims = Records(), ClaimAhead(deps)
    outcomes: list[Outcome] = []
    error: Exception | None = None
    last = len(chunks) - 1
    coming: tuple[Future[ClaimedChunk | ChunkPeek | None], float] | None = None
    for i, (chunk_id, attempt) in enumerate(chunks):
        ahead, wait = ClaimAhead.result(coming)
        coming = claims.start(*chunks[i + 1]) if i < last else None  # beside this chunk's call
        try:
            outcome = send_chunk(
                chunk_id,
                attempt,
                deps,
                reserved=reserved and i == 0,
                reserve_within=reserve_within,
                record_later=records.later(chunk_id) if i < last else None,  # the last: no next call
                ahead=ahead,
                ahead_wait=wait,
            )
        except Exception as exc:  # noqa: BLE001 - re-raised below, after the rest of the message
            log.exception("chunk %s: send raised", chunk_id)
            error = error or exc
            continue
        outcomes.append(outcome)
        if then is not None:
            then(outcome)
    claims.close()
    unrecorded = records.wait()
    error = error or unrecorded
    if error is not None:
        raise error
    return outcomes
