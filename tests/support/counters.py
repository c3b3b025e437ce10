"""The maintained counters agree with a recount from the rows (`campaigns.store.counts.recount`).

`assert_counts_agree` is called by the `store` fixture's teardown (every store-level test, both backends)
and by `assert_witnessed` / the failover cluster's witness (every real-process fault test): whatever a test
did (workers killed, retries, reconciliation, cancel, failover, pause and resume), the counters the reads
use must equal a GROUP BY over the campaign's recipients and chunks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.engine import Engine

from campaigns.store.counts import CampaignTallies, Tally, recount, tallies
from campaigns.store.sql import campaigns_t


def _nonzero(found: dict[tuple[str, str], Tally]) -> dict[tuple[str, str], Tally]:
    return {
        key: t for key, t in found.items() if (t.n, t.parts, t.costed, t.polled) != (0, 0, 0, 0) or t.cost
    }


def differences(counted: CampaignTallies, recounted: CampaignTallies) -> list[str]:
    """What differs between the counters and the recount, one line each (cost to a millionth of a rial)."""
    out = []
    for kind in ("recipients", "chunks"):
        mine, truth = _nonzero(getattr(counted, kind)), _nonzero(getattr(recounted, kind))
        for key in sorted(set(mine) | set(truth)):
            a, b = mine.get(key, Tally()), truth.get(key, Tally())
            same = (a.n, a.parts, a.costed, a.polled) == (b.n, b.parts, b.costed, b.polled)
            if not same or not math.isclose(a.cost, b.cost, rel_tol=1e-9, abs_tol=1e-6):
                out.append(f"{kind} {key}: counters {a}, rows {b}")
    return out


def assert_counts_agree(engine: Engine, campaign_ids: Iterable[int] | None = None) -> None:
    """The counters of these campaigns (all when None) equal the recount, read in one snapshot."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            ids = (
                list(campaign_ids)
                if campaign_ids is not None
                else list(conn.execute(select(campaigns_t.c.id)).scalars())
            )
            wrong = {cid: d for cid in ids if (d := differences(tallies(conn, cid), recount(conn, cid)))}
    assert not wrong, f"counters disagree with the rows: {wrong}"
