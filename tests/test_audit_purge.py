"""The audit trail (who changed what, and when) and the purge of finished campaigns' personal data, on
both stores, through the application layer the CLI and the API call."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select, update

from campaigns.clock import utcnow
from campaigns.plan import plan
from campaigns.prices import PriceTable
from campaigns.states import CampaignState
from campaigns.store import CampaignSpec, RecipientUpdate, Store, campaigns_t, recipients_t
from campaigns.text import Template
from dispatcher import app
from dispatcher.app import Control
from dispatcher.app import identity as idn
from dispatcher.app.actors import started_by
from dispatcher.cli import main
from dispatcher.config import AppSettings

PASSWORD = "correct horse battery"


@pytest.fixture
def settings(database_url) -> AppSettings:
    return AppSettings.from_env({"SMSDISPATCH_DATABASE_URL": database_url})


def make(store: Store, actor: idn.Actor | None, n: int = 6, tmp: Path | None = None) -> int:
    spec = CampaignSpec(
        name="audited",
        provider="ghasedak",
        account="ghasedak:x",
        sender="",
        message="Hi {name}",
        personalised=True,
        columns=["name"],
        rejects_file=str(tmp / "list.rejects.csv") if tmp else "",
        prices=PriceTable({(None, None): 1000.0}, "test"),
    )
    df = pd.DataFrame(
        {
            "row": range(2, n + 2),
            "phone": [f"+98912{i:07d}" for i in range(n)],
            "name": [f"Ali{i}" for i in range(n)],
        }
    )
    return store.create_campaign(
        started_by(store, spec, actor), plan([df], Template("Hi {name}"), 2, ["name"])
    )


def test_every_change_is_recorded_with_who_and_when(settings, capsys):
    store = idn.identity_store(settings)
    idn.add_user(settings, "alice", "sender", PASSWORD)
    alice = idn.login(settings, "alice", PASSWORD)
    viewer = idn.authenticate_key(settings, idn.create_key(settings, "ro", "viewer").key)
    cid = make(store, alice)
    with pytest.raises(idn.Forbidden):
        app.control(settings, cid, Control.PAUSE, actor=viewer)
    app.control(settings, cid, Control.PAUSE, actor=alice)
    app.control(settings, cid, Control.RESUME)  # the command line
    crm = idn.authenticate_key(settings, idn.create_key(settings, "crm", "sender").key)
    app.control(settings, cid, Control.CANCEL, actor=crm)
    status = app.status(settings, cid).as_json()
    assert status["created_by"] == "alice"
    steps = [(e["who"], e["action"], e["detail"]) for e in status["events"]]
    cli = idn.cli_actor().who
    assert steps == [
        ("alice", "created", "6 recipients via ghasedak"),
        ("alice", "started", ""),
        ("alice", "paused", "paused by the user"),
        (cli, "resumed", ""),
        ("key:crm", "cancelled", "cancelled by the user"),
    ]
    assert all(e["at"].endswith("+00:00") for e in status["events"])
    # opt-outs and users/keys changes: not about one campaign
    with pytest.raises(idn.Forbidden):
        app.unsuppress(settings, ["09121234567"], actor=crm)  # an admin's
    app.suppress(settings, ["09121234567"], "asked by phone", actor=alice)
    app.unsuppress(settings, ["09121234567"])
    idn.disable_user(settings, "alice")
    idn.revoke_key(settings, "crm")
    recent = [(e["who"], e["action"]) for e in store.events(limit=6)]
    assert recent[:4] == [
        (cli, "key revoked"),
        (cli, "user disabled"),
        (cli, "opt-out removed"),
        ("alice", "opt-out added"),
    ]
    # the CLI prints the same status keys
    assert main_json(["status", str(cid), "--json"], settings, capsys)["events"] == status["events"]


def main_json(argv: list[str], settings: AppSettings, capsys) -> dict:
    import os

    old = os.environ.get("SMSDISPATCH_DATABASE_URL")
    os.environ["SMSDISPATCH_DATABASE_URL"] = settings.dispatch.database_url
    try:
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 0
    finally:
        if old is None:
            del os.environ["SMSDISPATCH_DATABASE_URL"]
        else:
            os.environ["SMSDISPATCH_DATABASE_URL"] = old
    return json.loads(capsys.readouterr().out)


def test_purge_removes_numbers_and_columns_of_old_finished_campaigns_only(settings, tmp_path):
    store = idn.identity_store(settings)
    old = make(store, None, tmp=tmp_path)
    (tmp_path / "list.rejects.csv").write_text("row,phone,reason\n9,0912 bad,not a mobile\n")
    for chunk_id, attempt in store.claimable_chunks(campaign_id=old):
        chunk = store.claim_chunk(chunk_id, attempt, timedelta(seconds=60))
        store.record_send(
            chunk, [RecipientUpdate(m.recipient_id, "delivered", "m") for m in chunk.messages], requeue=False
        )
    assert store.complete_finished() == [old]
    with store.engine.begin() as conn:  # finished 40 days ago
        conn.execute(
            update(campaigns_t)
            .where(campaigns_t.c.id == old)
            .values(finished_at=utcnow() - timedelta(days=40))
        )
    running = make(store, None)
    store.suppress(["+989121111111"], "opted out: STOP")
    before = app.status(settings, old).as_json()
    assert idn.purge(settings, 60).campaigns == []  # not old enough
    done = idn.purge(settings, 30)
    assert done.campaigns == [old] and done.recipients == 6
    assert (
        done.files_removed == [str(tmp_path / "list.rejects.csv")]
        and not (tmp_path / "list.rejects.csv").exists()
    )
    with store.engine.connect() as conn:
        rows = [
            r._mapping for r in conn.execute(select(recipients_t).where(recipients_t.c.campaign_id == old))
        ]
    assert all(r["phone"].startswith("#") and r["fields"] == "{}" and r["text"] is None for r in rows)
    assert all(r["state"] == "delivered" and r["provider_message_id"] == "m" for r in rows)
    after = app.status(settings, old).as_json()
    for key in ("counts", "recipients", "cost", "budget", "state", "created_by"):
        assert after[key] == before[key], key
    assert after["events"][-1]["action"] == "purged"
    assert all(not r["phone"].startswith("#") for r in store.recipients_rows(running))
    assert store.suppressed() == {"+989121111111": "opted out: STOP"}
    assert store.campaign(running).state == CampaignState.RUNNING
    assert idn.purge(settings, 30).campaigns == []  # once
