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
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from workers.deps import WorkerDeps
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
    Returns, or raises, once every chunk's record handed on is written.

    A chunk whose send or record raised (a bug, a database that went away) does not keep the others from
    being sent: it is logged and the first such error is raised once all were tried (the chunk stays
    claimable, or its lease runs out, as when it came alone).
    """
    records = Records()
    outcomes: list[Outcome] = []
    error: Exception | None = None
    last = len(chunks) - 1
    try:
        for i, (chunk_id, attempt) in enumerate(chunks):
            try:
                outcome = send_chunk(
                    chunk_id,
                    attempt,
                    deps,
                    reserved=reserved and i == 0,
                    reserve_within=reserve_within,
                    record_later=records.later(chunk_id) if i < last else None,  # the last: no next call
                )
            except Exception as exc:  # noqa: BLE001 - re-raised below, after the rest of the message
                log.exception("chunk %s: send raised", chunk_id)
                error = error or exc
                continue
            outcomes.append(outcome)
            if then is not None:
                then(outcome)
    finally:  # whatever raised (a follow-up's publish, a time limit), the message ends after its records
        unrecorded = records.wait()
    error = error or unrecorded
    if error is not None:
        raise error
    return outcomes
