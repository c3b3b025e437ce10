"""Campaigns of any size built straight through the store (no sending), for reports and charts.

`build_campaign` creates a real campaign with `Store.create_campaign`, then writes each recipient's
outcome, provider code and times in one executemany UPDATE: 100,000 recipients in seconds, with
outcomes spread over a chosen span, a pause gap, and the campaign's own times and state set.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import bindparam, update

from campaigns.models import Campaign, Recipient
from campaigns.plan import plan
from campaigns.store import CampaignSpec, Store
from campaigns.text import Template

START = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)  # 11:30 Tehran, 1405/09/05
PREFIXES = ["+98912", "+98935", "+98921", "+98990"]  # MCI, Irancell, Rightel, MCI
OUTCOMES = [("delivered", "1", 0.8), ("undelivered", "2", 0.07), ("blacklisted", "27", 0.05),
            ("failed", "16", 0.04), ("expired", None, 0.02), ("sent_to_operator", "8", 0.02)]  # fmt: skip


def build_campaign(
    store: Store,
    n: int,
    *,
    name: str = "autumn sale",
    message: str = "Hello",
    span: float = 600.0,
    gap: tuple[float, float] | None = None,
    state: str = "completed",
    seed: int = 1,
) -> int:
    """A campaign of `n` recipients sent over `span` seconds from START (none sent in `gap`), final
    outcomes drawn from OUTCOMES with a fixed seed; the campaign ends in `state` at the last event."""
    rng = random.Random(seed)
    df = pd.DataFrame(
        {
            "row": range(2, n + 2),
            "phone": [f"{PREFIXES[i % len(PREFIXES)]}{i:07d}" for i in range(n)],
            "city": ["تهران" if i % 2 else "Shiraz" for i in range(n)],
        }
    )
    spec = CampaignSpec(
        name=name, provider="ghasedak", account="acct", sender="10008566",
        message=message, personalised=False, columns=["city"],
    )  # fmt: skip
    cid = store.create_campaign(spec, plan([df], Template(message), 100, ["city"]))
    with store.engine.connect() as conn:
        ids = [r[0] for r in conn.execute(Recipient.__table__.select().with_only_columns(Recipient.id)
                                          .where(Recipient.campaign_id == cid).order_by(Recipient.id))]  # fmt: skip
    states, weights = [o[0] for o in OUTCOMES], [o[2] for o in OUTCOMES]
    codes = {o[0]: o[1] for o in OUTCOMES}
    rows, last = [], START
    for i, rid in enumerate(ids):
        at = span * i / max(n - 1, 1)
        if gap and gap[0] <= at < gap[1]:
            at = gap[1] + (at - gap[0]) * 0.01
        sent = START + timedelta(seconds=at)
        outcome = rng.choices(states, weights)[0]
        done = sent + timedelta(seconds=rng.uniform(2, 30 + span * 0.05))
        delivered = done if outcome in ("delivered", "undelivered", "blacklisted", "failed") else None
        updated = done if outcome != "sent_to_operator" else sent
        last = max(last, updated)
        rows.append({"rid": rid, "st": outcome, "code": codes[outcome], "mid": str(1000 + i),
                     "sent": sent, "delivered": delivered, "updated": updated})  # fmt: skip
    r = Recipient.__table__
    stmt = (
        update(r)
        .where(r.c.id == bindparam("rid"))
        .values(state=bindparam("st"), provider_status=bindparam("code"), provider_message_id=bindparam("mid"),
                sent_at=bindparam("sent"), delivered_at=bindparam("delivered"), updated_at=bindparam("updated"))
    )  # fmt: skip
    c = Campaign.__table__
    with store.engine.begin() as conn:
        conn.execute(stmt, rows)
        conn.execute(
            update(c).where(c.c.id == cid)
            .values(state=state, created_at=START - timedelta(seconds=30), started_at=START,
                    finished_at=last if state in ("completed", "cancelled") else None)
        )  # fmt: skip
    return cid
