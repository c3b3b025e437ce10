"""Campaign creation and bulk load: the campaign, its chunks and recipients in the caller's ONE
transaction, with their counters (`campaigns.store.tally`, summed from the planned blocks), then queued
or scheduled.

Recipients go in bulk (`campaigns.store.bulk`): one executemany on SQLite, one COPY on PostgreSQL
(docs/benchmarks.md, "Storing a campaign").
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.engine import Engine

from campaigns.plan import PlannedBlock
from campaigns.prices import UnpricedError, recipient_costs
from campaigns.records import CampaignSpec, EmptyCampaign
from campaigns.states import CampaignState, ChunkState, RecipientState
from campaigns.store.audit import SYSTEM, record_created, started_by
from campaigns.store.bulk import postgres_chunks, postgres_copy, sqlite_insert
from campaigns.store.lifecycle import launch
from campaigns.store.preflight import refuse_duplicate
from campaigns.store.sql import campaigns_t, chunks_t
from campaigns.store.tally import CountKind, literal_deltas, upsert


def create_campaign(
    conn: Connection,
    spec: CampaignSpec,
    blocks: Iterable[PlannedBlock],
    now: datetime,
    *,
    rejected: int | Callable[[], int],
    start: bool,
) -> int:
    """Insert the campaign (draft), its chunks and recipients, then launch it when `start`; its id.

    Raises DuplicateCampaign when a campaign with the same fingerprint was stored after the preflight
    checked (`spec.duplicate_since`), EmptyCampaign when the blocks hold no recipient, UnpricedError (bad input, exit 2) when the spec
    has a rial budget and some part has no price; the caller's transaction then rolls back. `rejected` is
    a count, or a function called after the blocks are consumed (the loader counts as it reads).
    Each chunk gets its estimated rial (`chunk_costs`) when `spec.prices` prices every part.
    """
    if spec.fingerprint and spec.duplicate_since is not None and not spec.test:
        refuse_duplicate(conn, spec.fingerprint, spec.duplicate_since)  # stored meanwhile: DuplicateCampaign
    rial_capped = spec.budget_rial is not None or spec.needs_prices  # a budget, or a daily cap in rial
    if rial_capped and not spec.prices:
        raise UnpricedError(_budget_needs_price(spec, "no price table"))
    campaign_id = conn.execute(
        insert(campaigns_t)
        .values(
            name=spec.name,
            provider=spec.provider,
            account=spec.account,
            sender=spec.sender,
            message=spec.message,
            personalised=spec.personalised,
            state=CampaignState.DRAFT,
            on_unknown=spec.on_unknown,
            ref_prefix=str(secrets.randbelow(900_000) + 100_000),
            recipients=0,
            rejected=0,
            chunks=0,
            parts=0,
            source_file=spec.source_file,
            rejects_file=spec.rejects_file,
            columns=json.dumps(list(spec.columns), ensure_ascii=False),
            send_at=spec.send_at,
            window=spec.window,
            fingerprint=spec.fingerprint,
            test=spec.test,
            budget_rial=spec.budget_rial,
            max_parts=spec.max_parts,
            spent_rial=0,
            spent_parts=0,
            route=json.dumps(list(spec.route)) if len(spec.route) > 1 else None,
            callback_url=spec.callback_url,
            callback_key_id=spec.callback_key_id,
            campaign_type=spec.campaign_type,
            route_prices=_prices_json(spec),
            **started_by(spec, now),
            created_at=now,
            updated_at=now,
        )
        .returning(campaigns_t.c.id)
    ).scalar_one()
    n_recipients = n_chunks = n_parts = recipient_parts = chunk_cost = 0
    estimated: int | None = 0 if spec.prices else None
    for block in blocks:
        costs = None
        if estimated is not None:
            try:
                costs = chunk_costs(block, spec)
                estimated += int(costs.sum())
            except UnpricedError as exc:
                if rial_capped:
                    raise UnpricedError(_budget_needs_price(spec, str(exc))) from None
                estimated = None  # no estimate; the chunks cost 0 and no rial budget can be set later
        chunk_ids = insert_chunks(conn, campaign_id, block, now, costs)
        insert_recipients(conn, campaign_id, block, chunk_ids)
        n_recipients += len(block.recipients)
        n_chunks += len(block.chunks)
        n_parts += int(block.chunks["parts"].sum())
        recipient_parts += int(block.recipients["parts"].sum())
        chunk_cost += int(costs.sum()) if costs is not None else 0
    n_rejected = rejected() if callable(rejected) else rejected
    if n_recipients == 0:
        raise EmptyCampaign(
            f"no valid recipients ({n_rejected} rows rejected); the reasons are in {spec.rejects_file or 'the rejects file'}"
        )
    conn.execute(
        update(campaigns_t)
        .where(campaigns_t.c.id == campaign_id)
        .values(
            recipients=n_recipients,
            chunks=n_chunks,
            parts=n_parts,
            rejected=n_rejected,
            estimated_rial=estimated,
        )
    )
    counts = [
        {
            "kind": CountKind.RECIPIENT,
            "state": RecipientState.PENDING,
            "n": n_recipients,
            "parts": recipient_parts,
            # their estimate: each at its chunk's rial per part, and a chunk's parts are its recipients'
            "value": chunk_cost,
        },
        {
            "kind": CountKind.CHUNK,
            "state": ChunkState.PLANNED,
            "n": n_chunks,
            "parts": n_parts,
            "cost": chunk_cost,
        },
    ]
    sqlite = conn.dialect.name == "sqlite"
    conn.execute(upsert(literal_deltas({"campaign_id": campaign_id, **c} for c in counts), sqlite))
    record_created(conn, campaign_id, spec, n_recipients, now)
    if start:
        launch(conn, campaign_id, spec.send_at, now, spec.created_by or SYSTEM)
    return campaign_id


def set_rejects_file(engine: Engine, campaign_id: int, path: str) -> bool:
    """Record where the campaign's rejects file is, once it has its own name (the campaign's id is in it,
    so a second campaign from the same file keeps the first one's). True when the campaign exists."""
    with engine.begin() as conn:
        done = conn.execute(
            update(campaigns_t).where(campaigns_t.c.id == campaign_id).values(rejects_file=path)
        )
    return bool(done.rowcount)


def _prices_json(spec: CampaignSpec) -> str | None:
    """The route's price tables as stored (`campaigns.route_prices`); None when none is known."""
    tables = {name: table.as_json() for name, table in spec.route_prices.items() if table}
    return json.dumps(tables, ensure_ascii=False) if tables else None


def _budget_needs_price(spec: CampaignSpec, why: str) -> str:
    from campaigns.preflight.checks import price_hint

    return f"a budget in rial needs the price of every SMS part ({why}); {price_hint(spec.provider)}"


def chunk_costs(block: PlannedBlock, spec: CampaignSpec) -> np.ndarray:
    """Estimated rial of each of the block's chunks (in `block.chunks` order): the sum over its recipients of
    parts x price (`campaigns.prices.recipient_costs`), rounded up to whole rial. Raises UnpricedError."""
    assert spec.prices is not None
    df = block.recipients
    alphabets = df.get("alphabet")
    per_recipient = recipient_costs(
        df["phone"], df["text"], df["parts"], spec.prices, spec.message, alphabets=alphabets
    )
    by_seq = pd.Series(per_recipient, index=df["seq"].to_numpy()).groupby(level=0).sum()
    sums = by_seq.reindex(block.chunks["seq"].to_numpy(), fill_value=0.0).to_numpy(dtype=np.float64)
    return np.ceil(sums - 1e-9).astype(np.int64)


def insert_chunks(
    conn: Connection, campaign_id: int, block: PlannedBlock, now: datetime, costs: np.ndarray | None = None
) -> dict[int, int]:
    """The block's chunks, planned, with their estimated rial (`costs`, else 0); returns seq -> chunk id."""
    if not len(block.chunks):
        return {}
    chunks = block.chunks
    cost_of = costs if costs is not None else np.zeros(len(chunks), dtype=np.int64)
    if conn.dialect.name == "postgresql":
        postgres_chunks(conn, campaign_id, chunks, cost_of, now)  # one INSERT … SELECT FROM unnest
    else:
        rows = [
            {
                "campaign_id": campaign_id,
                "seq": int(seq),
                "state": ChunkState.PLANNED,
                "attempt": 0,
                "size": int(size),
                "parts": int(parts),
                "cost_rial": int(cost),
                "updated_at": now,
            }
            for seq, size, parts, cost in zip(
                chunks["seq"], chunks["size"], chunks["parts"], cost_of, strict=True
            )
        ]
        conn.execute(insert(chunks_t), rows)  # an executemany; RETURNING per row cost ~0.1 ms a chunk
    c = chunks_t.c
    seqs = block.chunks["seq"]
    result = conn.execute(
        select(c.id, c.seq).where(
            c.campaign_id == campaign_id, c.seq.between(int(seqs.min()), int(seqs.max()))
        )
    )  # this transaction made the campaign: its chunks are the block's
    return {seq: cid for cid, seq in result.all()}


def insert_recipients(
    conn: Connection, campaign_id: int, block: PlannedBlock, chunk_ids: dict[int, int]
) -> None:
    """The block's recipients, pending, each in its chunk (`chunk_ids`: seq -> chunk id): one executemany
    on SQLite, one COPY on PostgreSQL (`campaigns.store.bulk`)."""
    df = block.recipients
    seqs = block.chunks["seq"].to_numpy(dtype=np.int64)
    ids = np.array([chunk_ids[int(seq)] for seq in seqs], dtype=np.int64)
    chunk_col = ids[np.searchsorted(seqs, df["seq"].to_numpy(dtype=np.int64))]  # seqs ascend (plan)
    if conn.dialect.name == "sqlite":
        sqlite_insert(conn, campaign_id, df, chunk_col)
    else:
        postgres_copy(conn, campaign_id, df, chunk_col)
