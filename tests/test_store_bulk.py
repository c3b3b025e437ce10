"""Storing a campaign from a messy file: the planned and bulk-inserted rows against a reference computed
row by row, on both backends (the `store` fixture also recounts the maintained counters afterwards).

Planning works per distinct text and the store inserts whole columns (campaigns/rendered.py,
campaigns/plan.py, campaigns/store/bulk.py); the reference here is the per-row path: `render_one`,
`count_parts`, `json.loads` of the fields, prices looked up per recipient, chunks cut by file order.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from campaigns.load import RecipientLoader
from campaigns.operators import Operator, operator_of
from campaigns.plan import plan
from campaigns.prices import PriceTable
from campaigns.states import ChunkState, RecipientState
from campaigns.store import CampaignSpec, Store
from campaigns.text import Alphabet, Template, count_parts, encoding
from dispatcher.demo.messy import write

ROWS = 20_000
COLUMNS = ["name", "city", "amount"]
LONG = "مشتری گرامی، " * 6  # 72 characters: with a name the text needs two UCS-2 parts

PRICES = PriceTable(
    prices={(Operator.MCI, Alphabet.UCS2): 950.5, (None, Alphabet.GSM7): 400.0, (None, None): 1000.0},
    source="test",
)


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    return write(tmp_path_factory.mktemp("bulk") / "messy.csv", ROWS, seed=7)


def _load(path: Path, rejects: Path) -> tuple[RecipientLoader, list[pd.DataFrame]]:
    loader = RecipientLoader(path, rejects_path=rejects, block_rows=3_000)  # several blocks, a carry
    return loader, list(loader.blocks())


def _stored(store: Store, campaign_id: int) -> list[dict]:
    query = text(
        "SELECT r.id, r.row, r.phone, r.fields, r.text, r.parts, r.state, r.attempts, r.polls, "
        "c.seq, c.size, c.parts AS chunk_parts, c.cost_rial, c.state AS chunk_state "
        "FROM recipients r JOIN chunks c ON c.id = r.chunk_id WHERE r.campaign_id = :c ORDER BY r.id"
    )
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query, {"c": campaign_id})]


@pytest.mark.parametrize(
    "message",
    [
        "سلام {name}، تخفیف ویژه. لغو11",  # one placeholder, few distinct texts
        "{name} از {city}: {amount} تومان. لغو11",  # three placeholders, most rows differ
        "Code {phone} [{city}]",  # the phone: every row differs (rendered row by row)
        LONG + "{name}",  # two parts
        "Static text {{not a placeholder}}",  # no placeholder: text NULL, the campaign's one text
    ],
)
def test_stored_rows_match_a_row_by_row_reference(store: Store, messy: Path, tmp_path: Path, message: str):
    batch = 7
    loader, blocks = _load(messy, tmp_path / "rejects.csv")
    template = Template(message)
    spec = CampaignSpec(
        name="bulk",
        provider="ghasedak",
        account="acct",
        sender="1000",
        message=template.static_text if template.is_static else template.text,
        personalised=not template.is_static,
        columns=COLUMNS,
        prices=PRICES,
    )
    cid = store.create_campaign(
        spec, plan(iter(blocks), template, batch, COLUMNS), rejected=lambda: loader.stats.rejected
    )
    stored = _stored(store, cid)
    kept = pd.concat(blocks, ignore_index=True)

    # The same recipients, in file order, ids ascending with it; every data row stored or rejected.
    assert [r["row"] for r in stored] == kept["row"].tolist()
    assert [r["phone"] for r in stored] == kept["phone"].tolist()
    with (tmp_path / "rejects.csv").open(encoding="utf-8-sig", newline="") as fh:
        rejected = [int(r["row"]) for r in csv.DictReader(fh)]
    assert len(rejected) == loader.stats.rejected > 0
    assert sorted(rejected + kept["row"].tolist()) == list(range(2, ROWS + 2))

    costs: dict[int, float] = {}
    for i, (row, rec) in enumerate(zip(kept.to_dict("records"), stored, strict=True)):
        values = {c: ("" if pd.isna(row[c]) else str(row[c])) for c in COLUMNS}
        assert json.loads(rec["fields"]) == values
        expected = template.static_text if template.is_static else template.render_one(row)
        assert rec["text"] == (None if template.is_static else expected)
        assert rec["parts"] == count_parts(expected)
        assert (rec["state"], rec["attempts"], rec["polls"]) == (RecipientState.PENDING, 0, 0)
        assert rec["seq"] == i // batch  # chunks cut in file order
        price = PRICES.per_part(operator_of(row["phone"]), encoding(expected))
        costs[rec["seq"]] = costs.get(rec["seq"], 0.0) + rec["parts"] * price

    chunks = {r["seq"]: r for r in stored}
    assert len(chunks) == math.ceil(len(kept) / batch)
    for seq, chunk in chunks.items():
        members = [r for r in stored if r["seq"] == seq]
        assert chunk["size"] == len(members)
        assert chunk["chunk_parts"] == sum(r["parts"] for r in members)
        assert chunk["cost_rial"] == math.ceil(costs[seq] - 1e-9)
        assert chunk["chunk_state"] == ChunkState.QUEUED

    view = store.campaign(cid)
    assert (view.recipients, view.chunks, view.rejected) == (len(kept), len(chunks), loader.stats.rejected)
    assert view.parts == sum(r["parts"] for r in stored)
    assert view.counts == {RecipientState.PENDING: len(kept)}
    if template.placeholders == ("name",) and not message.startswith(LONG):
        assert len({r["text"] for r in stored}) < 200  # few distinct texts: planned once each


def test_awkward_values_round_trip_through_the_bulk_paths(store: Store) -> None:
    """Values the JSON and CSV writers must escape, missing values, and texts that render alike."""
    awkward = ['a "quoted", comma', "line\nbreak", "back\\slash", "", None, "tab\tand\rreturn", "علی", "علی"]
    df = pd.DataFrame(
        {
            "row": range(2, 2 + len(awkward)),
            "phone": [f"+98912{i:07d}" for i in range(len(awkward))],
            "note": awkward,
            "n": [1, 1.0, "1", None, 2, 2, 3, 3],
        }
    )
    template = Template("x{note}y{n}")
    spec = CampaignSpec(
        name="t", provider="ghasedak", account="a", sender="", message=template.text, personalised=True
    )
    cid = store.create_campaign(replace_columns(spec, ["note", "n"]), plan([df], template, 3, ["note", "n"]))
    stored = _stored(store, cid)
    for row, rec in zip(df.to_dict("records"), stored, strict=True):
        assert rec["text"] == template.render_one(row)
        assert json.loads(rec["fields"])["note"] == ("" if pd.isna(row["note"]) else row["note"])
    assert [json.loads(r["fields"])["n"] for r in stored] == ["1", "1.0", "1", "", "2", "2", "3", "3"]


def replace_columns(spec: CampaignSpec, columns: list[str]) -> CampaignSpec:
    from dataclasses import replace

    return replace(spec, columns=columns)
